"""
What the instruments in bench/ share: the model-shape settings, timing on any device, a training-step
throughput measure, GPUs' peak FLOP/s for MFU, and a random GPT-2-shaped folder for offline checks.
"""
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's own files
from common import commit, machine, parse_config, precision, run_cli  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402


@dataclass
class BenchConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    block_size: int = 256
    vocab_size: int = 50304
    batch_size: int = 8          # training sequences per step
    train_steps: int = 5         # timed training steps (after 2 warm-up steps)
    prompt_len: int = 128
    n_pause: int = 16            # M_inf for the time-to-first-token comparison
    decode_len: int = 64
    repeats: int = 5
    peak_flops: float = 0.0      # FLOP/s for MFU; 0: this GPU's dense bf16 peak (GPU_PEAK_FLOPS)
    device: str = "auto"
    eval_prompts: int = 2000     # prompts of the eval-throughput measure


def cli(name, cls, suite, argv):
    """Run suite(parse_config(argv, cls)) as script `name`: bad input is one line and exit code 2."""
    return run_cli(name, lambda: suite(parse_config(argv, cls)))


def stamp(suite):
    """The provenance every instrument's output starts with: command, commit, machine."""
    return {"suite": suite, "command": " ".join(["python"] + sys.argv), "commit": commit(), "machine": machine()}


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device, repeats):
    """Median seconds of fn() over repeats, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_train(cfg, device, compile_model, pause_frac=0.0):
    """(training tokens/s, FLOP/s): forward, backward and AdamW on (batch_size, block_size) batches, in
    the precision train.py picks for the device. pause_frac > 0: a new pause-pretraining batch every step
    (random pauses, the targets of the positions before them -1), so the number of supervised targets
    changes from step to step, as in PausePT; a compiled model must not recompile for it."""
    from data import Batcher, Vocab
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
                          n_head=cfg.n_head, n_embd=cfg.n_embd, bias=False)).to(device)
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device_type)
    step_model = torch.compile(model) if compile_model else model
    ctx, _, scaler = precision("auto", device_type)
    rng, n = np.random.default_rng(0), cfg.train_steps + 2
    if pause_frac > 0:
        batcher = Batcher(Vocab(None), tokens=rng.integers(0, 50257, 200_000), block_size=cfg.block_size,
                          pause_frac=pause_frac)
        batches = [batcher.get(cfg.batch_size, rng)[:2] for _ in range(n)]
    else:
        batches = [rng.integers(0, 50257, (2, cfg.batch_size, cfg.block_size))] * n
    batches = [tuple(torch.from_numpy(a).to(device) for a in b) for b in batches]

    def step(x, y):
        with ctx:
            _, loss = step_model(x, y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    for x, y in batches[:2]:  # warm-up (and compilation)
        step(x, y)
    sync(device)
    t = time.perf_counter()
    for x, y in batches[2:]:
        step(x, y)
    sync(device)
    tok_s = cfg.batch_size * cfg.block_size * cfg.train_steps / (time.perf_counter() - t)
    return tok_s, model.flops_per_token(cfg.block_size) * tok_s


# dense bf16 (fp16 where a GPU has no bf16) tensor-core peaks from NVIDIA's datasheets, FLOP/s, for MFU;
# matched against torch.cuda.get_device_name(), the longest name first; --peak_flops overrides
GPU_PEAK_FLOPS = {"B200": 2250e12, "H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "GH200": 989e12,
                  "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12, "RTX 4090": 165e12,
                  "V100": 125e12, "T4": 65e12}


def peak_flops(cfg, device):
    """The peak MFU is measured against: --peak_flops if given, else the table's entry for this GPU
    (None for a GPU not in the table, or a CPU: no MFU then)."""
    if cfg.peak_flops > 0:
        return cfg.peak_flops
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((GPU_PEAK_FLOPS[k] for k in sorted(GPU_PEAK_FLOPS, key=len, reverse=True) if k in name), None)


def random_gpt2_folder(path, n_layer, n_head, n_embd, n_positions, vocab_size=50257):
    """A GPT-2-shaped model with random weights in the Hugging Face layout (config.json +
    model.safetensors), as GPT.from_pretrained reads it: for checks that must not download anything."""

    from safetensors.torch import save_file
    os.makedirs(path, exist_ok=True)
    g, C = torch.Generator().manual_seed(0), n_embd

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.02
    sd = {"wte.weight": r(vocab_size, C), "wpe.weight": r(n_positions, C), "ln_f.weight": torch.ones(C),
          "ln_f.bias": torch.zeros(C)}
    for i in range(n_layer):
        h = f"h.{i}."
        sd.update({h + "ln_1.weight": torch.ones(C), h + "ln_1.bias": torch.zeros(C), h + "ln_2.weight": torch.ones(C),
                   h + "ln_2.bias": torch.zeros(C), h + "attn.c_attn.weight": r(C, 3 * C),
                   h + "attn.c_attn.bias": torch.zeros(3 * C), h + "attn.c_proj.weight": r(C, C),
                   h + "attn.c_proj.bias": torch.zeros(C), h + "mlp.c_fc.weight": r(C, 4 * C),
                   h + "mlp.c_fc.bias": torch.zeros(4 * C), h + "mlp.c_proj.weight": r(4 * C, C),
                   h + "mlp.c_proj.bias": torch.zeros(C)})
    save_file(sd, os.path.join(path, "model.safetensors"))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "n_positions": n_positions,
                   "vocab_size": vocab_size}, f)
