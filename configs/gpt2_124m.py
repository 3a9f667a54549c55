# GPT-2 small (124M) pretraining on one GPU, nanoGPT's recipe at a single-GPU batch:
#   python train.py configs/gpt2_124m.py --data_dir=<folder with train.bin, val.bin> [--pause_frac=0.1]
# train.bin / val.bin: uint16 GPT-2 token ids (nanoGPT's format). bf16 autocast, TF32, fused AdamW and
# torch.compile are on by default on CUDA (--compile=False turns compile off).
# ~0.5M tokens per step: 12 sequences x 1024 tokens x 40 micro-batches (or 8 GPUs x 5 with torchrun).
phase = "pretrain"
vocab = "full"
data_dir = "data/openwebtext"
n_layer = 12
n_head = 12
n_embd = 768
block_size = 1024
dropout = 0.0
bias = False
batch_size = 12
grad_accum = 40
max_iters = 600000
learning_rate = 6e-4
min_lr = 6e-5
warmup_iters = 2000
weight_decay = 0.1
beta2 = 0.95
eval_interval = 2000
eval_iters = 200
out_dir = "out/gpt2_124m"
