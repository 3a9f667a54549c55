# Three times the default's finetuning (9,000 steps of 64) on 60,000 distinct training prompts, for the arms
# within 5 points of the best at the default's 3,000 steps (eval.py --variants=StdPT_HintFT,StdPT_CoTFT --seeds=2):
# which learns faster, and which ends higher. The no-pause baseline's long curve is configs/converge.py's.
task = "keyparity"
n_train = 60000
batch_size = 64
max_iters = 9000
learning_rate = 3e-3
min_lr = 3e-4
warmup_iters = 100
eval_interval = 750
