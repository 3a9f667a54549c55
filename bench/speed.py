"""
Speed of nanopause on whatever device this runs on (CUDA if present, else CPU); the last line of
stdout is one JSON object with every number.

  python bench/speed.py                          # 4 layers, 256 wide, block 256, full 50304 vocab
  python bench/speed.py --n_layer=12 --n_head=12 --n_embd=768 --block_size=1024 --batch_size=16   # GPT-2 small

What it measures (timings exclude warm-up; the median of several repeats where it is cheap to repeat):
  train_tok_s     training tokens/s (forward, backward, AdamW step); on CUDA with bf16 autocast, with
                  and without torch.compile, and MFU against the GPU's peak
  ttft_ms         time to the first answer token after a prompt_len-token prompt, with M_inf = 0 and
                  M_inf = n_pause pauses (the pauses ride in the one parallel prefill)
  decode_tok_s    greedy decode of decode_len tokens after the prompt: with the KV cache against the
                  memory-bound ceiling, recomputing the context, and with and without decode.py's Decoder
  eval            answers/s of a 2,000-prompt pause eval at M_inf = 0 and 16
  pause_insert_tok_s   pause.insert_pauses throughput on (batch_size, block_size + 1) windows
"""
import json
import os
import statistics
import sys
import time
from dataclasses import asdict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's own files
import data  # noqa: E402
from bench.shared import BenchConfig, bench_train, cli, peak_flops, stamp, timed  # noqa: E402
from common import pick_device  # noqa: E402
from decode import decoder, fast, generate, num_threads  # noqa: E402
from model import GPT, GPTConfig, KVCache  # noqa: E402
from pause import answer, insert_pauses  # noqa: E402
from tasks import make_examples  # noqa: E402


def bench(cfg):
    device = pick_device(cfg.device)
    cuda = device.startswith("cuda")
    out = {**stamp("speed"), "config": asdict(cfg), "device": device}
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
                ttft[m].append(timed(lambda: generate(model, idx, 1), device, 1))
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
            tok_s = cfg.decode_len / timed(lambda: generate(model, prompt, cfg.decode_len), device, 1)
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
        dec = decoder(model)
        if dec is not None:  # paired rounds: the Decoder with its int8 argmax, with an fp32 one, and no Decoder
            pair = {"int8": [], "fp32": [], "modules": []}
            q8 = dec.q8
            for _ in range(cfg.repeats):
                for key in pair:
                    dec.q8 = q8 if key == "int8" else None
                    run = model.generate if key == "modules" else lambda *a: generate(model, *a)
                    pair[key].append(cfg.decode_len / timed(lambda: run(prompt, cfg.decode_len), device, 1))
            dec.q8 = q8
            tokens = generate(model, prompt, cfg.decode_len)
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
    vocab = data.task_vocab("keyparity")
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=40, vocab_size=vocab.size, n_layer=3, n_head=4, n_embd=64)).to(device).eval()
    prompts = vocab.encode_batch([p for p, _ in make_examples("keyparity", cfg.eval_prompts, "test", 0)])
    times = {0: [], 16: []}
    for _ in range(3):
        for m in times:
            times[m].append(timed(lambda: answer(fast(model), prompts, m, vocab.pause_id, vocab.eot_id, 2), device, 1))
    out = {f"eval_answers_s_M{m}": len(prompts) / statistics.median(t) for m, t in times.items()}
    prompt = len(prompts[0])
    out["eval_cost_ratio_M16"] = out["eval_answers_s_M0"] / out["eval_answers_s_M16"]
    out["eval_positions_ratio_M16"] = (prompt + 16 + 2) / (prompt + 2)
    print(f"pause eval of {len(prompts)} prompts: {out['eval_answers_s_M0']:,.0f} answers/s at M_inf=0, "
          f"{out['eval_answers_s_M16']:,.0f} at M_inf=16: {out['eval_cost_ratio_M16']:.2f}x the time for "
          f"{out['eval_positions_ratio_M16']:.2f}x the positions", flush=True)
    return out


def main(argv):
    return cli("bench/speed.py", BenchConfig, bench, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
