# The old default (keysum, before the late-key parity default): its pretraining phase. results/README.md has its command.
# Only fields of train.Config may appear here; anything else is an error.
task = "keysum"
n_pretrain = 100000
n_layer = 2
n_head = 4
n_embd = 64
block_size = 64
batch_size = 64
max_iters = 1000
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 250
