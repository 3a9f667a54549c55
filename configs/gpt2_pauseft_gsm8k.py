# Pause finetuning of GPT-2 small on GSM8k, one GPU (the paper's M_ft = 10 for GSM8k):
#   python train.py configs/gpt2_pauseft_gsm8k.py                  # PauseFT (StdPT_PauseFT from GPT-2)
#   python train.py configs/gpt2_pauseft_gsm8k.py --n_pause=0 --out_dir=out/gsm8k_std   # the baseline
#   python eval.py --ckpt=out/gsm8k_pause/ckpt.pt                   # GSM8k accuracy on test_file
# models/gpt2: a Hugging Face GPT-2 folder (config.json + model.safetensors or pytorch_model.bin);
# data/gsm8k: GSM8k's train.jsonl and test.jsonl as published. Nothing is downloaded by this code.
phase = "finetune"
vocab = "full"
init_from = "gpt2:models/gpt2"
task = "gsm8k"
train_file = "data/gsm8k/train.jsonl"
test_file = "data/gsm8k/test.jsonl"
n_pause = 10
n_val = 200
max_answer_tokens = 8
batch_size = 8
grad_accum = 4
max_iters = 2000
learning_rate = 3e-5
min_lr = 3e-6
warmup_iters = 100
eval_interval = 250
eval_iters = 25
out_dir = "out/gsm8k_pause"
