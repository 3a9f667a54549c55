# 16-bit parity (tasks.parity), pretraining phase: the default's model and schedule on parity instances.
#   python eval.py --pretrain_config=configs/parity_pretrain.py --finetune_config=configs/parity_finetune.py \
#       --variants=StdPT_StdFT,StdPT_PauseFT --n_pause=17 --sweep=False --out_dir=out/parity --seeds=3
task = "parity"
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
