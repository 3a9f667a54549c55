# The default's pretraining phase (eval.py sets phase, seed, pause_frac and out_dir): language modelling on
# keyparity instances written out with their answers (it learns the digits, not the answer: the finetuning
# val loss starts at chance either way, so a short phase is enough). Only train.Config fields may appear.
task = "keyparity"
n_pretrain = 50000
n_layer = 3
n_head = 4
n_embd = 64
block_size = 40
batch_size = 32
max_iters = 300
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 150
