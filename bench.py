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

  python bench.py --suite=repro   # what makes CPU runs differ between machines (about 2 minutes)

The repro suite runs, in a fresh process per setting, each kernel of a training step on fixed inputs
and a short pretraining run (the default's configs/pretrain.py, repro_steps steps), and hashes the
results. It compares this machine with itself (a second process), with one thread instead of all, and
with the other instruction sets torch can be told to use: ATen's kernels at AVX2 or without SIMD, and
oneDNN's and MKL's at AVX2 -- what a machine of the same name but another CPU generation runs.
"""
import json
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch

from common import commit, machine, parse_config, pick_device, run_cli
from model import GPT, GPTConfig
from pause import insert_pauses


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
    suite: str = "speed"         # "speed" (the measures above) or "repro" (what changes the bits on CPU)
    repro_steps: int = 150       # training steps per setting in the repro suite
    out: str = ""                # repro suite: also write <out>.md and <out>.json


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
    if argv[:1] == ["_repro_worker"]:  # one setting of the repro suite, in its own process
        return repro_worker(int(argv[1]), argv[2])

    def body():
        cfg = parse_config(argv, BenchConfig)
        return repro(cfg) if cfg.suite == "repro" else bench(cfg)
    return run_cli("bench.py", body)


# settings of the repro suite: environment variables read when torch starts, so each runs in a new process
REPRO_SETTINGS = {
    "this machine": {},
    "this machine, again": {},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "ATen kernels at AVX2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATen kernels without SIMD": {"ATEN_CPU_CAPABILITY": "default"},
    "oneDNN at AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "MKL at AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "AVX2 machine (ATen + oneDNN + MKL)": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                           "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def repro_worker(steps, out_dir):
    """Hash every kernel of a training step on fixed inputs, then train briefly; print one JSON line."""
    import hashlib
    import os

    import torch.nn.functional as F

    from common import fingerprint
    from train import Config, train
    torch.manual_seed(0)
    B, T, C, H, V = 64, 64, 64, 4, 70  # the default's shapes
    x, w, head = torch.randn(B, T, C), torch.randn(3 * C, C) * 0.02, torch.randn(V, C) * 0.02
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in F.linear(x, w).split(C, 2))
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
    gain, bias = torch.ones(C, requires_grad=True), torch.zeros(C, requires_grad=True)
    F.linear(F.layer_norm(xg, (C,), gain, bias), wg).square().sum().backward()
    ops = {"linear (matmul)": F.linear(x, w), "output head (matmul)": x @ head.t(),
           "layer norm": F.layer_norm(x, (C,)),
           "attention (SDPA)": F.scaled_dot_product_attention(q, k, v, is_causal=True),
           "GELU": F.gelu(x), "softmax": torch.softmax(x, -1),
           "cross-entropy": F.cross_entropy((x @ head.t()).view(-1, V), torch.arange(B * T) % V),
           "sum": x.sum(), "linear and layer norm backward (inputs)": torch.cat([xg.grad.ravel(), wg.grad.ravel()]),
           "layer norm backward (gain and bias)": torch.cat([gain.grad, bias.grad])}
    hashes = {name: hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:12]
              for name, t in ops.items()}
    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "pretrain.py")
    cfg = parse_config([config, f"--max_iters={steps}", f"--eval_interval={steps}", "--progress=False",
                        f"--out_dir={out_dir}"], Config)
    out = train(cfg)
    state = torch.load(out["ckpt"], weights_only=True)["model"]
    print(json.dumps({"ops": hashes, "weights": fingerprint(state), "val_loss": out["val_loss"],
                      "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}))
    return 0


def repro(cfg):
    """Run repro_worker under each setting and report which results differ from this machine's."""
    import os
    import subprocess
    import tempfile
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, env) in enumerate(REPRO_SETTINGS.items()):
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "_repro_worker", str(cfg.repro_steps),
                                os.path.join(tmp, str(i))], capture_output=True, text=True,
                               env={**os.environ, **env})
            if p.returncode:
                raise RuntimeError(f"repro setting {name!r} failed: {p.stderr.strip().splitlines()[-1:]}")
            results[name] = {**json.loads(p.stdout.strip().splitlines()[-1]), "env": env}
            print(f"  {name}: done", flush=True)
    base = results["this machine"]
    lines = [f"| setting | environment | kernels whose output differs from this machine's | weights after "
             f"{cfg.repro_steps} steps | val loss |", "|---|---|---|---|---|"]
    for name, r in results.items():
        differ = [op for op, h in r["ops"].items() if h != base["ops"][op]]
        r["ops_differ"], r["weights_equal"] = differ, r["weights"] == base["weights"]
        env = " ".join(f"{k}={v}" for k, v in r["env"].items()) or "-"
        lines.append(f"| {name} | {env} | {', '.join(differ) or 'none'} | "
                     f"{'identical' if r['weights_equal'] else 'differ'} | {r['val_loss']:.6f} |")
    out = {"suite": "repro", "command": " ".join(["python"] + sys.argv), "commit": commit(),
           "config": asdict(cfg), "machine": machine(), "settings": results}
    m = out["machine"]
    head = (f"`{out['command']}` at commit {out['commit']} on {m['cpu']} family {m['cpu_family']} model "
            f"{m['cpu_model']} ({'AVX-512' if m['avx512'] else 'no AVX-512'}; "
            f"torch kernels {m['torch_cpu_capability']}, "
            f"{m['threads']} threads)")
    print("\n" + head + "\n\n" + "\n".join(lines))
    if cfg.out:
        import os
        os.makedirs(os.path.dirname(cfg.out) or ".", exist_ok=True)
        with open(cfg.out + ".md", "w") as f:
            f.write(head + "\n\n" + "\n".join(lines) + "\n")
        with open(cfg.out + ".json", "w") as f:
            json.dump(out, f, indent=2)
    print(json.dumps(out))
    return out


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
