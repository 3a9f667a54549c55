# 16-bit parity, finetuning phase, trained long: the label is the only supervision (no hints). The task has
# 2**16 prompts, about 52,000 of them in the train split: n_train takes 50,000 of them.
task = "parity"
n_train = 50000
batch_size = 64
max_iters = 20000
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 1000
