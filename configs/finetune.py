# The default's finetuning phase (eval.py sets phase, seed, n_pause, hints, init_from and out_dir); the model's
# shape and vocab come from the pretrained checkpoint. eval.py also evaluates at 3/4 of the run (and keeps that
# model): its plateau check reads the learning curve there (validation exact match over the last quarter).
task = "keyparity"
n_train = 20000
batch_size = 64
max_iters = 3000
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 750
