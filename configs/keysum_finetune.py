# The old default (keysum, before the late-key parity default): its finetuning phase. results/README.md has its command.
# The model's shape and vocab come from the pretrained checkpoint.
task = "keysum"
n_train = 20000
batch_size = 64
max_iters = 1000
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 50
eval_interval = 500
