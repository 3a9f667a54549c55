"""
Speed of nanopause on whatever device this runs on (CUDA if present, else CPU); the last line of
stdout is one JSON object with every number.

  python bench.py                                  # 4 layers, 256 wide, block 256, full 50304 vocab
  python bench.py --n_layer=12 --n_head=12 --n_embd=768 --block_size=1024 --batch_size=16   # GPT-2 small

What it measures (timings exclude warm-up; the median of several repeats where it is cheap to repeat):
  train_tok_s     training tokens/s (forward, backward, AdamW step); on CUDA with bf16 autocast, with
                  and without torch.compile, and MFU against peak_flops
  ttft_ms         time to the first answer token after a prompt_len-token prompt, with M_inf = 0 and
                  M_inf = n_pause pauses (the pauses ride in the one parallel prefill)
  decode_tok_s    greedy decode of decode_len tokens after the prompt, with and without the KV cache
  pause_insert_tok_s   data.insert_pauses throughput on (batch_size, block_size + 1) windows
"""
import json
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch

from data import insert_pauses
from eval import machine
from model import GPT, GPTConfig
from train import parse_config, pick_device, run_cli


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
    peak_flops: float = 989e12   # bf16 dense peak of an H100/H200 SXM, for MFU
    device: str = "auto"


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


def bench_train(cfg, device, compile_model):
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
                          n_head=cfg.n_head, n_embd=cfg.n_embd, bias=False)).to(device)
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device_type)
    step_model = torch.compile(model) if compile_model else model
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if device_type == "cuda" else nullcontext()
    x = torch.randint(0, 50257, (cfg.batch_size, cfg.block_size), device=device)
    y = torch.randint(0, 50257, (cfg.batch_size, cfg.block_size), device=device)

    def step():
        with ctx:
            _, loss = step_model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(2):  # warm-up (and compilation)
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(cfg.train_steps):
        step()
    sync(device)
    tok_s = cfg.batch_size * cfg.block_size * cfg.train_steps / (time.perf_counter() - t)
    return tok_s, model.flops_per_token(cfg.block_size) * tok_s


def main(argv):
    return run_cli("bench.py", lambda: bench(parse_config(argv, BenchConfig)))


def bench(cfg):
    device = pick_device(cfg.device)
    cuda = device.startswith("cuda")
    out = {"config": asdict(cfg), "device": device, "machine": machine()}
    print(f"device {device}: {out['machine']['gpu'] or out['machine']['cpu']}", flush=True)

    for compile_model in ([False, True] if cuda else [False]):
        tok_s, flops = bench_train(cfg, device, compile_model)
        key = "compiled" if compile_model else "eager"
        out[f"train_tok_s_{key}"] = tok_s
        line = f"train ({key}): {tok_s:,.0f} tokens/s"
        if cuda:
            out[f"mfu_{key}"] = flops / cfg.peak_flops
            line += f", MFU {100 * out[f'mfu_{key}']:.1f}% of {cfg.peak_flops:.3g} FLOP/s"
        print(line, flush=True)

    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
                          n_head=cfg.n_head, n_embd=cfg.n_embd, bias=False)).to(device).eval()
    if cuda:
        model = model.to(torch.bfloat16)
    prompt = torch.randint(0, 50257, (1, cfg.prompt_len), device=device)
    pauses = torch.full((1, cfg.n_pause), 50257, device=device)
    with torch.no_grad():
        # paired, alternating rounds, so drift in machine speed hits both sides alike
        with_pauses = torch.cat([prompt, pauses], 1)
        ttft = {0: [], cfg.n_pause: []}
        for _ in range(4 * cfg.repeats):
            for m, idx in ((0, prompt), (cfg.n_pause, with_pauses)):
                ttft[m].append(timed(lambda: model.generate(idx, 1), device, 1))
        for m, times in ttft.items():
            out[f"ttft_ms_M{m}"] = 1000 * statistics.median(times)
        out["ttft_ratio"] = out[f"ttft_ms_M{cfg.n_pause}"] / out["ttft_ms_M0"]
        print(f"time to first token: {out['ttft_ms_M0']:.1f} ms with M_inf=0, "
              f"{out[f'ttft_ms_M{cfg.n_pause}']:.1f} ms with M_inf={cfg.n_pause} "
              f"(ratio {out['ttft_ratio']:.3f})", flush=True)
        for use_cache in (True, False):
            s = timed(lambda: model.generate(prompt, cfg.decode_len, use_cache=use_cache), device,
                      cfg.repeats if use_cache else 1)
            out[f"decode_tok_s_{'cache' if use_cache else 'recompute'}"] = cfg.decode_len / s
        out["cache_speedup"] = out["decode_tok_s_cache"] / out["decode_tok_s_recompute"]
        print(f"decode {cfg.decode_len} tokens after {cfg.prompt_len}: {out['decode_tok_s_cache']:,.1f} "
              f"tokens/s with KV cache, {out['decode_tok_s_recompute']:,.1f} recomputing "
              f"({out['cache_speedup']:.1f}x)", flush=True)

    rng = np.random.default_rng(0)
    windows = rng.integers(0, 50257, (cfg.batch_size * 8, cfg.block_size + 1))
    s = timed(lambda: insert_pauses(windows, 0.1, 50257, rng), "cpu", 20)
    out["pause_insert_tok_s"] = windows.size / s
    print(f"pause insertion: {out['pause_insert_tok_s'] / 1e6:,.1f}M tokens/s on {windows.shape} windows")
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
