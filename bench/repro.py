"""
What makes CPU runs differ between machines (about 2 minutes on 2 cores):

  python bench/repro.py --out=results/repro/this_machine

It runs, in a fresh process per setting, each kernel of a training step on fixed inputs and a short
pretraining run (the default's configs/pretrain.py, `steps` steps), and hashes the results. It compares
this machine with itself (a second process), with one thread instead of all, and with the other
instruction sets torch can be told to use: ATen's kernels at AVX2 or without SIMD, and oneDNN's and
MKL's at AVX2 -- what a machine of the same name but another CPU generation runs.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's own files
from bench.shared import cli, stamp  # noqa: E402
from common import fingerprint, parse_config  # noqa: E402
from train import Config, train  # noqa: E402


@dataclass
class ReproConfig:
    steps: int = 150  # training steps per setting
    out: str = ""     # also write <out>.md and <out>.json


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
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "pretrain.py")
    cfg = parse_config([config, f"--max_iters={steps}", f"--eval_interval={steps}", "--progress=False",
                        f"--out_dir={out_dir}"], Config)
    out = train(cfg)
    state = torch.load(out["ckpt"], weights_only=True)["model"]
    print(json.dumps({"ops": hashes, "weights": fingerprint(state), "val_loss": out["val_loss"],
                      "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}))
    return 0


def repro(cfg):
    """Run repro_worker under each setting and report which results differ from this machine's."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, env) in enumerate(REPRO_SETTINGS.items()):
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "_worker", str(cfg.steps),
                                os.path.join(tmp, str(i))], capture_output=True, text=True,
                               env={**os.environ, **env})
            if p.returncode:
                raise RuntimeError(f"repro setting {name!r} failed: {p.stderr.strip().splitlines()[-1:]}")
            results[name] = {**json.loads(p.stdout.strip().splitlines()[-1]), "env": env}
            print(f"  {name}: done", flush=True)
    base = results["this machine"]
    lines = [f"| setting | environment | kernels whose output differs from this machine's | weights after "
             f"{cfg.steps} steps | val loss |", "|---|---|---|---|---|"]
    for name, r in results.items():
        differ = [op for op, h in r["ops"].items() if h != base["ops"][op]]
        r["ops_differ"], r["weights_equal"] = differ, r["weights"] == base["weights"]
        env = " ".join(f"{k}={v}" for k, v in r["env"].items()) or "-"
        lines.append(f"| {name} | {env} | {', '.join(differ) or 'none'} | "
                     f"{'identical' if r['weights_equal'] else 'differ'} | {r['val_loss']:.6f} |")
    out = {**stamp("repro"), "config": asdict(cfg), "settings": results}
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


def main(argv):
    if argv[:1] == ["_worker"]:  # one setting, in its own process
        return repro_worker(int(argv[1]), argv[2])
    return cli("bench/repro.py", ReproConfig, repro, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
