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
import os
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch

from common import ConfigError, commit, machine, parse_config, pick_device, precision, run_cli
from model import GPT, GPTConfig, KVCache, num_threads
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
    peak_flops: float = 0.0      # FLOP/s for MFU; 0: this GPU's dense bf16 peak (GPU_PEAK_FLOPS)
    device: str = "auto"
    suite: str = "speed"         # "speed" (the measures above), "repro" (what changes the bits on CPU), "gpu",
                                 # or "head" (a finetuning step: the head at every position vs the supervised ones)
    repro_steps: int = 150       # training steps per setting in the repro suite
    eval_prompts: int = 2000     # prompts of the eval-throughput measure
    out: str = ""                # repro and gpu suites: also write <out>.md and <out>.json
    tiny: bool = False           # gpu suite: the same steps at toy sizes (what CI runs on a CPU)


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


def main(argv):
    if argv[:1] == ["_repro_worker"]:  # one setting of the repro suite, in its own process
        return repro_worker(int(argv[1]), argv[2])
    if argv[:1] == ["_gpu_step"]:  # one step of the GPU check, in its own process
        return gpu_step(argv[1], argv[2] == "True", float(argv[3]), argv[4])

    def body():
        cfg = parse_config(argv, BenchConfig)
        suites = {"speed": bench, "repro": repro, "gpu": gpu_check, "head": head_cost}
        if cfg.suite not in suites:
            raise ConfigError(f"suite must be one of {', '.join(suites)}, got {cfg.suite!r}")
        return suites[cfg.suite](cfg)
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
    out = {"command": " ".join(["python"] + sys.argv), "commit": commit(), "config": asdict(cfg), "device": device,
           "machine": machine()}
    print(f"`{out['command']}` at commit {out['commit']}; device {device}: "
          f"{out['machine']['gpu'] or out['machine']['cpu']}", flush=True)

    peak = peak_flops(cfg, device)
    for compile_model in ([False, True] if cuda else [False]):
        tok_s, flops = bench_train(cfg, device, compile_model)
        key = "compiled" if compile_model else "eager"
        out[f"train_tok_s_{key}"] = tok_s
        line = f"train ({key}): {tok_s:,.0f} tokens/s"
        if peak:
            out[f"mfu_{key}"] = flops / peak
            line += f", MFU {100 * out[f'mfu_{key}']:.1f}% of {peak:.3g} FLOP/s"
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
        # the decode against its memory-bound ceiling (every weight a step multiplies by, read once), in
        # rounds that measure the machine's read bandwidth right beside each decode: on a shared machine
        # it moves between runs (44 to 88 GB/s seen on ours), so each round is its own fraction
        out["decode_bytes"] = decode_bytes(model, cfg.prompt_len + cfg.decode_len // 2)
        rounds, one_thread = [], []
        for _ in range(cfg.repeats):
            gb_s = read_bandwidth(device, repeats=2)
            tok_s = cfg.decode_len / timed(lambda: model.generate(prompt, cfg.decode_len), device, 1)
            rounds.append((gb_s, tok_s, tok_s * out["decode_bytes"] / (gb_s * 1e9)))
            if not cuda:  # what one core reads: most of a one-row step cannot use a second one
                with num_threads(1):
                    one_thread.append(read_bandwidth(device, repeats=2))
        out["decode_rounds"] = [{"read_gb_s": g, "tok_s": t, "fraction": f} for g, t, f in rounds]
        if one_thread:
            out["read_gb_s_one_thread"] = statistics.median(one_thread)
        out["read_gb_s"] = statistics.median(g for g, _, _ in rounds)
        out["decode_tok_s_cache"] = statistics.median(t for _, t, _ in rounds)
        out["decode_ceiling_tok_s"] = out["read_gb_s"] * 1e9 / out["decode_bytes"]
        out["decode_fraction_of_ceiling"] = statistics.median(f for _, _, f in rounds)
        out["decode_fraction_range"] = [min(f for _, _, f in rounds), max(f for _, _, f in rounds)]
        s = timed(lambda: model.generate(prompt, cfg.decode_len, use_cache=False), device, 1)
        out["decode_tok_s_recompute"] = cfg.decode_len / s
        out["cache_speedup"] = out["decode_tok_s_cache"] / out["decode_tok_s_recompute"]
        dec = model.decoder()
        if dec is not None:  # paired rounds: the Decoder with its int8 argmax, with an fp32 one, and no Decoder
            pair = {"int8": [], "fp32": [], "modules": []}
            q8 = dec.q8
            for _ in range(cfg.repeats):
                for key in pair:
                    dec.q8 = q8 if key == "int8" else None
                    with without_decoder(model) if key == "modules" else nullcontext():
                        pair[key].append(cfg.decode_len / timed(lambda: model.generate(prompt, cfg.decode_len), device, 1))
            dec.q8 = q8
            tokens = model.generate(prompt, cfg.decode_len)
            with without_decoder(model):
                out["decode_same_tokens"] = bool(torch.equal(tokens, model.generate(prompt, cfg.decode_len)))
            for key, runs in pair.items():
                out[f"decode_tok_s_{key}"] = statistics.median(runs)
            print(f"decode (paired rounds; same tokens with and without the Decoder: {out['decode_same_tokens']}): "
                  f"{out['decode_tok_s_int8']:,.0f} tokens/s with the "
                  f"Decoder{'' if q8 is not None else ' (int8 head not used here: not faster)'}, "
                  f"{out['decode_tok_s_fp32']:,.0f} with its argmax in fp32, "
                  f"{out['decode_tok_s_modules']:,.0f} through the modules", flush=True)
        print(f"decode {cfg.decode_len} tokens after {cfg.prompt_len}: {out['decode_tok_s_cache']:,.1f} "
              f"tokens/s with KV cache, {out['decode_tok_s_recompute']:,.1f} recomputing "
              f"({out['cache_speedup']:.1f}x)", flush=True)
        lo, hi = out["decode_fraction_range"]
        print(f"memory-bound ceiling: {out['decode_bytes'] / 1e6:.1f} MB read per token at "
              f"{out['read_gb_s']:.1f} GB/s (median of {cfg.repeats} rounds) = {out['decode_ceiling_tok_s']:,.0f} "
              f"tokens/s; the KV-cache decode runs at {100 * out['decode_fraction_of_ceiling']:.0f}% of it "
              f"(rounds: {100 * lo:.0f}-{100 * hi:.0f}%)"
              + (f"; one thread reads at {out['read_gb_s_one_thread']:.1f} GB/s" if one_thread else ""), flush=True)
        if dec is not None:  # where a step's time goes: the blocks (one thread, as generate runs them), the head
            head_bytes = 4 * dec.w.numel()
            read_bytes = head_bytes if dec.q8 is None else dec.q8.numel() + 2 * dec.scale.numel()
            out.update(decode_step_parts(model, prompt, dec))
            # why the Decoder keeps weights transposed: one row times the head, in each layout (paired)
            x, layouts = torch.randn(1, model.config.n_embd), {"linear": [], "transposed": []}
            for _ in range(4 * cfg.repeats):
                layouts["linear"].append(timed(lambda: torch.nn.functional.linear(x, model.lm_head.weight), device, 1))
                layouts["transposed"].append(timed(lambda: x @ dec.wt, device, 1))
            for key, times in layouts.items():
                out[f"head_ms_{key}"] = 1e3 * statistics.median(times)
            print(f"one row times the fp32 head: {out['head_ms_linear']:.2f} ms as F.linear reads it (V, C), "
                  f"{out['head_ms_transposed']:.2f} ms as x @ W laid out (C, V)", flush=True)
            print(f"one decode step: the blocks {out['decode_ms_blocks']:.2f} ms (one thread), the head's argmax "
                  f"{out['decode_ms_head']:.2f} ms; reading their bytes at the measured bandwidth would take "
                  f"{1e3 * (out['decode_bytes'] - head_bytes) / (out['read_gb_s'] * 1e9):.2f} ms and "
                  f"{1e3 * read_bytes / (out['read_gb_s'] * 1e9):.2f} ms", flush=True)
            if dec.q8 is not None:  # the same ceiling for the bytes this layout reads: the argmax reads int8
                out["decode_bytes_layout"] = out["decode_bytes"] - head_bytes + read_bytes
                out["decode_fraction_of_layout_ceiling"] = (out["decode_tok_s_cache"] * out["decode_bytes_layout"]
                                                            / (out["read_gb_s"] * 1e9))
                print(f"with the int8 argmax head a step reads {out['decode_bytes_layout'] / 1e6:.1f} MB: the decode "
                      f"runs at {100 * out['decode_fraction_of_layout_ceiling']:.0f}% of that ceiling", flush=True)
    out.update(eval_throughput(cfg, device))

    rng = np.random.default_rng(0)
    windows = rng.integers(0, 50257, (cfg.batch_size * 8, cfg.block_size + 1))
    s = timed(lambda: insert_pauses(windows, 0.1, 50257, rng), "cpu", 20)
    out["pause_insert_tok_s"] = windows.size / s
    print(f"pause insertion: {out['pause_insert_tok_s'] / 1e6:,.1f}M tokens/s on {windows.shape} windows")
    print(json.dumps(out))


def read_bandwidth(device, mb=256, repeats=5):
    """GB/s at which this device reads memory: the best of a few sums over a buffer far larger than
    the caches (what a memory-bound decode step can at most reach)."""
    buf = torch.ones(mb * 2**20 // 4, device=device)
    return mb * 2**20 / min(timed(lambda: buf.sum(), device, 1) for _ in range(repeats)) / 1e9


def decode_bytes(model, pos):
    """Bytes one decode step must read at position pos: every matrix and vector it multiplies by (the
    output head once, the embedding tables one row each) and the KV cache of pos positions."""
    c = model.config
    size = next(model.parameters()).element_size()
    blocks = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("transformer.wte", "transformer.wpe")))
    head = c.vocab_size * c.n_embd  # tied to the token embedding: named once, read in full by the head
    rows = 2 * c.n_embd  # one token embedding row and one position row
    cache = c.n_layer * 2 * pos * c.n_embd  # keys and values of every layer
    return size * (blocks + head + rows + cache)


@contextmanager
def without_decoder(model):
    """generate through the modules: this instance's decoder() returns None inside the block."""
    model.decoder = lambda: None
    try:
        yield
    finally:
        del model.decoder


def decode_step_parts(model, prompt, dec, steps=60):
    """Median ms of the two parts of a greedy CPU decode step, in alternation, as generate runs them:
    the blocks for one new token (Decoder.hidden, on one thread) and the head's argmax (Decoder.argmax,
    its big read on all threads)."""
    cache = KVCache(model, prompt.size(0))
    model(prompt, cache=cache)
    nxt, blocks, heads = prompt[:, -1:], [], []
    default = torch.get_num_threads()
    with num_threads(1):
        for _ in range(min(steps, model.config.block_size - prompt.size(1))):
            t = time.perf_counter()
            h = dec.hidden(nxt, cache)
            blocks.append(time.perf_counter() - t)
            t = time.perf_counter()
            nxt = dec.argmax(h, threads=default)
            heads.append(time.perf_counter() - t)
    return {"decode_ms_blocks": 1e3 * statistics.median(blocks), "decode_ms_head": 1e3 * statistics.median(heads)}


def eval_throughput(cfg, device):
    """Answers per second of a pause eval (the default's model shape, compact vocab, eval_prompts
    keyparity test prompts, batched by length as answer() does) at M_inf = 0 and 16, in paired rounds;
    pauses should cost their share of positions and no more."""
    import data
    from pause import answer
    from tasks import make_examples
    vocab = data.task_vocab("keyparity")
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=40, vocab_size=vocab.size, n_layer=3, n_head=4, n_embd=64)).to(device).eval()
    prompts = vocab.encode_batch([p for p, _ in make_examples("keyparity", cfg.eval_prompts, "test", 0)])
    times = {0: [], 16: []}
    for _ in range(3):
        for m in times:
            times[m].append(timed(lambda: answer(model, prompts, m, vocab.pause_id, vocab.eot_id, 2), device, 1))
    out = {f"eval_answers_s_M{m}": len(prompts) / statistics.median(t) for m, t in times.items()}
    prompt = len(prompts[0])
    out["eval_cost_ratio_M16"] = out["eval_answers_s_M0"] / out["eval_answers_s_M16"]
    out["eval_positions_ratio_M16"] = (prompt + 16 + 2) / (prompt + 2)
    print(f"pause eval of {len(prompts)} prompts: {out['eval_answers_s_M0']:,.0f} answers/s at M_inf=0, "
          f"{out['eval_answers_s_M16']:,.0f} at M_inf=16: {out['eval_cost_ratio_M16']:.2f}x the time for "
          f"{out['eval_positions_ratio_M16']:.2f}x the positions", flush=True)
    return out


# --- the training head: every position, or only the supervised ones -----------------------------------


def head_cost(cfg, rounds=7, steps=20):
    """A finetuning step (forward, backward, AdamW) of the default comparison's model (3 layers, 64 wide,
    keyparity, M_ft = 10, batch 64, one thread as its jobs run), in its compact vocab and at GPT-2's full
    vocab, with the loss computed as GPT.forward does (the head at every position, -1 targets ignored)
    and with the head run only at the supervised positions (x[y != -1], which needs the number of such
    positions on the host). Paired, alternating rounds; the median ms per step.

      python bench.py --suite=head"""
    import torch.nn.functional as F

    import data
    from train import Config
    out = {"suite": "head", "command": " ".join(["python"] + sys.argv), "commit": commit(), "machine": machine()}
    print(f"`{out['command']}` at commit {out['commit']} on {out['machine']['cpu']}, one thread", flush=True)

    def gathered(model, x, y):  # the head at the supervised positions only
        keep = y != -1
        return F.cross_entropy(model.lm_head(model.hidden(x)[keep]).float(), y[keep])
    losses = {"every position": lambda model, x, y: model(x, y)[1], "supervised only": gathered}
    for vocab_name in ("compact", "full"):
        fcfg = Config(phase="finetune", task="keyparity", n_pause=10, n_train=2000, vocab=vocab_name)
        vocab = data.Vocab(None) if vocab_name == "full" else data.task_vocab("keyparity")
        train_set, _ = data.phase_data(fcfg)
        x, y, _ = data.make_batcher(fcfg, train_set, vocab, 40).get(64, np.random.default_rng(0))
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        torch.manual_seed(0)
        model = GPT(GPTConfig(block_size=40, vocab_size=vocab.size, n_layer=3, n_head=4, n_embd=64))
        opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")

        def step(loss_fn):
            loss_fn(model, x, y).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        times = {k: [] for k in losses}
        with num_threads(1):
            for _ in range(rounds):
                for key, fn in losses.items():
                    times[key].append(timed(lambda: step(fn), "cpu", steps) * 1e3)
        for key, t in times.items():
            out[f"{vocab_name}_ms_{key.split()[0]}"] = statistics.median(t)
        print(f"{vocab_name} vocab ({vocab.size}), batch {tuple(x.shape)}, {int((y != -1).sum())} supervised "
              f"positions: {out[f'{vocab_name}_ms_every']:.2f} ms/step with the head at every position, "
              f"{out[f'{vocab_name}_ms_supervised']:.2f} ms at the supervised ones only", flush=True)
    print(json.dumps(out))
    return out

# --- the prepared GPU check ----------------------------------------------------------------------------

# the steps of the GPU check and the seconds each may take: they add up to 8 minutes, so the whole check
# ends within that (plus process starts) whatever happens; a step past its limit is killed and recorded
GPU_STEPS = {"tests": 80, "train_gpt2_small": 80, "pause_pretrain": 80, "decode": 30, "default_comparison": 150,
             "pauseft_smoke": 60}


def gpu_check(cfg, steps=None):
    """One script for a machine with one CUDA GPU, sized to end within 8 minutes, or the same steps at toy
    sizes on a CPU (--tiny=True; what CI runs). Each step runs in its own process under its own time
    limit (GPU_STEPS), and <out>.json and <out>.md are rewritten after every step, so a check cut off at
    any moment keeps what finished. The steps: (1) tests that train and evaluate, on the GPU; (2) GPT-2
    small (124M, block 1024) training tokens/s, MFU against this GPU's peak, and peak memory, eager and
    compiled; (3) the same with pause pretraining (pause_frac 0.1: the number of supervised targets
    changes every step); (4) KV-cached decode tokens/s; (5) the default comparison with one seed, timed,
    and its 4-seed time projected; (6) a PauseFT smoke run from a GPT-2-shaped model on a GSM8k fixture.

      python bench.py --suite=gpu --out=results/gpu_check          # on the GPU machine
      python bench.py --suite=gpu --tiny=True --out=/tmp/gpu_tiny   # anywhere, in about a minute"""
    device = pick_device(cfg.device)
    if not device.startswith("cuda") and not cfg.tiny:
        raise ConfigError("the gpu suite needs a CUDA device; --tiny=True runs its steps at toy sizes anywhere")
    if steps is None:  # (name, command, seconds allowed); each step's last line of output is its JSON
        worker = [sys.executable, os.path.abspath(__file__), "_gpu_step"]
        steps = [(name, worker + [name, str(cfg.tiny), str(cfg.peak_flops), device], limit)
                 for name, limit in GPU_STEPS.items()]
    stem, t_all = cfg.out or "gpu_check", time.time()
    out = {"suite": "gpu", "tiny": cfg.tiny, "device": device, "command": " ".join(["python"] + sys.argv),
           "commit": commit(), "machine": machine(), "limits": {n: lim for n, _, lim in steps}, "steps": {}}
    print(f"gpu check on {device}{' (tiny sizes)' if cfg.tiny else ''}", flush=True)
    for name, command, limit in steps:
        t = time.time()
        out["steps"][name] = run_step(command, limit)
        out["steps"][name]["seconds"] = time.time() - t
        out["seconds"] = time.time() - t_all
        r = out["steps"][name]
        print(f"  {name}: {'ok' if r['ok'] else r['error']} ({r['seconds']:.0f}s)", flush=True)
        write_gpu_check(out, stem)
    print(open(stem + ".md").read())
    return out


def run_step(command, limit):
    """Run one step's command in a process group of its own, killed whole after limit seconds (the
    step's own children too); {"ok": True, **its JSON} or {"ok": False, "error": ...}."""
    import signal
    import subprocess
    p = subprocess.Popen(command, cwd=os.path.dirname(os.path.abspath(__file__)), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return {"ok": False, "error": f"timed out after {limit} s"}
    lines = stdout.strip().splitlines()
    if p.returncode or not lines:
        why = (stderr.strip() or stdout.strip() or "failed").splitlines()[-1]
        return {"ok": False, "error": f"exit {p.returncode}: {why[:300]}"}
    try:
        return {"ok": True, **json.loads(lines[-1])}
    except json.JSONDecodeError:
        return {"ok": False, "error": f"no JSON result: {lines[-1][:300]}"}


def write_gpu_check(out, stem):
    """<stem>.json and <stem>.md of the check so far (each written whole, then renamed into place)."""
    lines = ["| step | result | seconds (limit) |", "|---|---|---|"]
    for name, r in out["steps"].items():
        shown = r.get("error") or ", ".join(f"{k} {v:,.3g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in r.items() if k not in ("ok", "seconds"))
        lines.append(f"| {name} | {shown} | {r['seconds']:.0f} ({out['limits'][name]}) |")
    m = out["machine"]
    md = (f"`{out['command']}` at commit {out['commit']} on {m['gpu'] or m['cpu']}, torch {m['torch']}, "
          f"{out['seconds']:.0f} s\n\n" + "\n".join(lines) + "\n")
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    for path, text in ((stem + ".json", json.dumps(out, indent=2)), (stem + ".md", md)):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


def gpu_step(name, tiny, peak, device):
    """One step of the GPU check, in its own process; prints its result as one JSON line."""
    import subprocess
    import tempfile
    cuda, root = device.startswith("cuda"), os.path.dirname(os.path.abspath(__file__))

    def run(argv):
        p = subprocess.run([sys.executable, *argv], cwd=root, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"{argv[0]}: " + ((p.stderr or p.stdout).strip().splitlines() or ["failed"])[-1])
        return p.stdout

    def tests():
        picked = (["tests/test_pause.py::test_answer_appends_pauses_and_reads_after_them"] if tiny else
                  ["tests/test_gpu_path.py", "tests/test_model.py", "tests/test_pause.py", "tests/test_train.py"])
        return {"summary": run(["-m", "pytest", "-q", "-p", "no:cacheprovider", *picked]).strip().splitlines()[-1]}

    def train_speed(pause_frac=0.0):
        shape = (dict(n_layer=2, n_head=2, n_embd=64, block_size=64, batch_size=2, train_steps=2) if tiny else
                 dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=16, train_steps=10))
        c, out = BenchConfig(**shape, peak_flops=peak), {}
        top = peak_flops(c, device)
        for compiled in (False, True) if cuda else (False,):
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            tok_s, flops = bench_train(c, device, compiled, pause_frac)
            key = "compiled" if compiled else "eager"
            out[f"tok_s_{key}"] = tok_s
            if top:
                out[f"mfu_{key}"] = flops / top
            if cuda:
                out[f"peak_mem_gb_{key}"] = torch.cuda.max_memory_allocated() / 2**30
        if cuda:
            out["graphs_compiled"] = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        return out

    def decode_speed():
        shape = dict(n_layer=2, n_head=2, n_embd=64, block_size=128) if tiny else \
            dict(n_layer=12, n_head=12, n_embd=768, block_size=1024)
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=50304, bias=False, **shape)).to(device).eval()
        model = model.to(torch.bfloat16) if cuda else model
        prompt = torch.randint(0, 50257, (1, 64), device=device)
        with torch.no_grad():
            s = timed(lambda: model.generate(prompt, 32), device, 3)
        return {"decode_tok_s": 32 / s}

    def default_comparison():
        with tempfile.TemporaryDirectory() as tmp:
            args = [f"--out_dir={tmp}/default", "--progress=False", "--plot=False", "--seeds=1", f"--device={device}"]
            if tiny:  # the default's variants at toy sizes
                for phase, extra in (("pretrain", "n_pretrain = 400\nmax_iters = 10\n"),
                                     ("finetune", "n_train = 200\nmax_iters = 10\n")):
                    with open(f"{tmp}/{phase}.py", "w") as f:
                        f.write("task = 'keyparity'\nn_layer = 1\nn_head = 2\nn_embd = 16\nblock_size = 40\n"
                                "batch_size = 8\nn_val = 40\nn_test = 60\neval_iters = 2\neval_interval = 5\n" + extra)
                args += [f"--pretrain_config={tmp}/pretrain.py", f"--finetune_config={tmp}/finetune.py"]
            t = time.time()
            run(["eval.py", *args])
            rows = json.load(open(f"{tmp}/default/results.json"))["rows"]
            wall = time.time() - t
            # one seed's jobs run one after another on a GPU, so 4 seeds take about 4 times as long
            return {"wall_seconds_1_seed": wall, "projected_seconds_4_seeds": 4 * wall,
                    **{f"{r['variant']} M_inf={r['M_inf']}": r["accuracy"] for r in rows if r["M_inf"] == r["M_ft"]}}

    def pauseft_smoke():
        with tempfile.TemporaryDirectory() as tmp:
            shape = dict(n_layer=2, n_head=2, n_embd=16, n_positions=64) if tiny else \
                dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024)
            random_gpt2_folder(f"{tmp}/gpt2", **shape)
            with open(f"{tmp}/gsm8k.jsonl", "w") as f:
                for i in range(64):
                    f.write(json.dumps({"question": f"Tom has {i} apples and buys {i + 3}. How many?",
                                        "answer": f"{i} + {i + 3} = {2 * i + 3}\n#### {2 * i + 3}"}) + "\n")
            run(["train.py", f"--init_from=gpt2:{tmp}/gpt2", "--vocab=full", "--phase=finetune", "--task=gsm8k",
                 f"--train_file={tmp}/gsm8k.jsonl", f"--test_file={tmp}/gsm8k.jsonl", "--n_val=8",
                 f"--n_pause={4 if tiny else 10}", "--batch_size=4", f"--max_iters={3 if tiny else 30}",
                 "--eval_iters=1", "--max_answer_tokens=4", "--progress=False", f"--out_dir={tmp}/ft",
                 f"--device={device}", "--compile=False"])  # eager: compiled training is steps 2, 3 and 5
            return {"eval": run(["eval.py", f"--ckpt={tmp}/ft/ckpt.pt", "--progress=False",
                                 f"--device={device}"]).strip().splitlines()[-1]}

    fns = {"tests": tests, "train_gpt2_small": train_speed, "pause_pretrain": lambda: train_speed(0.1),
           "decode": decode_speed, "default_comparison": default_comparison, "pauseft_smoke": pauseft_smoke}
    print(json.dumps(fns[name]()))


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
