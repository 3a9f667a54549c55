# The serial-steps task's finetuning phase: as configs/finetune.py but for the task and half its steps
# (1,500 of 64: a hops3 sequence is about twice a keyparity one, so the budget in positions is about the
# default's). At the default budget a no-pause baseline answers one of the prompt's two digits (about 50%:
# a 3-layer model does not resolve two hops here), so the arms can part.
task = "hops3"
n_train = 20000
batch_size = 64
max_iters = 1500
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 375
