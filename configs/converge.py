# The convergence study: the default's finetuning phase (configs/finetune.py) trained 10x as long, on 15x as
# many distinct training prompts, with the learning curve drawn every 1,000 steps. CPU-hours, not minutes:
#   python eval.py --finetune_config=configs/converge.py --out_dir=out/converge --seeds=3
task = "keyparity"
n_train = 300000
batch_size = 64
max_iters = 30000
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 1000
