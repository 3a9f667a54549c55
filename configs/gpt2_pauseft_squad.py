# Pause finetuning of GPT-2 small on SQuAD v1.1, one GPU (the paper: M_ft = 50 did best on SQuAD):
#   python train.py configs/gpt2_pauseft_squad.py                  # PauseFT (StdPT_PauseFT from GPT-2)
#   python train.py configs/gpt2_pauseft_squad.py --n_pause=0 --out_dir=out/squad_std   # the baseline
#   python eval.py --ckpt=out/squad_pause/ckpt.pt                   # SQuAD exact match on test_file
# models/gpt2: a Hugging Face GPT-2 folder (config.json + model.safetensors or pytorch_model.bin);
# data/squad: SQuAD's train-v1.1.json and dev-v1.1.json as published. Nothing is downloaded by this code.
phase = "finetune"
vocab = "full"
init_from = "gpt2:models/gpt2"
task = "squad"
train_file = "data/squad/train-v1.1.json"
test_file = "data/squad/dev-v1.1.json"
n_pause = 50
n_val = 200
max_answer_tokens = 16
batch_size = 8
grad_accum = 4
max_iters = 2000
learning_rate = 3e-5
min_lr = 3e-6
warmup_iters = 100
eval_interval = 250
eval_iters = 25
out_dir = "out/squad_pause"
