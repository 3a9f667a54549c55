# The serial-steps task's pretraining phase (eval.py sets phase, seed, pause_frac and out_dir): language
# modelling on hops3 instances (two chains of three variables, the query two hops from its digit) written
# out with their answers. As configs/pretrain.py but for the task and a window that holds a whole instance
# (26 prompt tokens; the repeated-prompt control needs 54 positions).
task = "hops3"
n_pretrain = 50000
n_layer = 3
n_head = 4
n_embd = 64
block_size = 64
batch_size = 32
max_iters = 300
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 150
