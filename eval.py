"""
The paper's comparison on the embedded task: StdPT/PausePT pretraining x StdFT/PauseFT finetuning,
scored by exact match on a held-out test set, against the StdPT_StdFT baseline.

  python eval.py                                   # the default comparison (minutes on 2 CPU cores)
  python eval.py --seeds=5                         # mean ± std and 95% intervals over 5 seeds
  python eval.py --n_pause=4 --variants=PausePT_PauseFT   # another M_ft; reuses the pretrained models
  python eval.py --placement=prepend               # pauses before the prompt (the paper's ablation)
  python eval.py --filler=dot                      # also give the baseline M '.' tokens at inference
  python eval.py --ckpt=out/default/seed1337/ft_PausePT_PauseFT_M8/ckpt.pt --n_inf=0   # one model

It trains what is missing and reuses finished runs whose config matches. PauseFT variants are scored
at M_inf = 0, M_ft/2, M_ft and 2*M_ft (--sweep=False: M_ft and 0). The table goes to stdout and, with
the command, commit, seeds and machine, to <out_dir>/results.md and results.json (and a plot of
accuracy vs M_inf when matplotlib is installed).
"""
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

import downstream
from data import format_example, get_encoding, make_examples
from model import GPT, answer
from train import (ConfigError, check_config, fingerprint, fit_prefix, load_checkpoint, parse_config, pick_device,
                   read_checkpoint, run_cli, train)

REPO = os.path.dirname(os.path.abspath(__file__))

# the paper's four variants: (pause pretraining?, pause finetuning?)
VARIANTS = {
    "StdPT_StdFT": (False, False),  # the baseline
    "StdPT_PauseFT": (False, True),
    "PausePT_StdFT": (True, False),
    "PausePT_PauseFT": (True, True),
}


@dataclass
class EvalConfig:
    out_dir: str = "out/default"
    pretrain_config: str = "configs/pretrain.py"  # phase settings (relative paths: cwd, then the repo)
    finetune_config: str = "configs/finetune.py"
    seed: int = 1337
    seeds: int = 2               # model seeds seed, seed+1, ...; mean ± std over them (2 fit 15 min)
    n_pause: int = 8             # M_ft of the PauseFT variants
    pause_frac: float = 0.1      # pauses per token in PausePT (the paper's 10%)
    variants: str = "all"        # "all" or a comma-separated subset of the four names
    sweep: bool = True           # PauseFT variants at M_inf = 0, M_ft/2, M_ft, 2*M_ft (else M_ft and 0)
    placement: str = "append"    # where PauseFT puts its pauses: "append" (the paper) or "prepend"
    filler: str = "pause"        # "dot": also score the baseline with M_ft '.' tokens at inference
    plot: bool = True            # write accuracy_vs_minf.png when matplotlib is installed
    ckpt: str = ""               # score this one checkpoint instead of running the comparison
    n_inf: int = -1              # with ckpt: M_inf (-1: the checkpoint's own n_pause)
    test_file: str = ""          # with ckpt of a downstream task: the file to score (else its test_file)
    progress: bool = True


def _config_path(path):
    return path if os.path.exists(path) or os.path.isabs(path) else os.path.join(REPO, path)


def phase_config(ecfg, phase, seed, **overrides):
    path = _config_path(ecfg.pretrain_config if phase == "pretrain" else ecfg.finetune_config)
    cfg = parse_config([path])
    return dataclasses.replace(cfg, phase=phase, seed=seed, progress=ecfg.progress, **overrides)


def ensure_trained(cfg):
    """Train cfg unless out_dir already holds a finished run of exactly this config that started from
    exactly the weights cfg.init_from holds now (a finetune of an older pretrained model is stale).
    Returns the checkpoint path."""
    path = os.path.join(cfg.out_dir, "ckpt.pt")
    if os.path.exists(path):
        saved = read_checkpoint(path)
        same = {**saved["config"], "progress": cfg.progress} == dataclasses.asdict(cfg)
        if same and saved["step"] == cfg.max_iters and saved.get("init_fingerprint") == init_fingerprint(cfg):
            print(f"  reusing {path}")
            return path
    print(f"  training {cfg.out_dir}", flush=True)
    out = train(cfg)
    print(f"    val loss {out['val_loss']:.4f} in {out['seconds']:.0f}s")
    return out["ckpt"]


def init_fingerprint(cfg):
    """The fingerprint of the weights a run of cfg starts from (None from scratch)."""
    if cfg.init_from == "scratch":
        return None
    if cfg.init_from.startswith("gpt2:"):
        return fingerprint(GPT.from_pretrained(cfg.init_from[len("gpt2:"):]).state_dict())
    return fingerprint(read_checkpoint(cfg.init_from)["model"])


def accuracy(model, vocab, pairs, n_inf, progress=False, filler="pause", placement="append"):
    """Exact match of the decoded greedy answer (after n_inf pauses, or '.' with filler="dot"; before
    the prompt with placement="prepend") with the target text."""
    # targets are only compared as text, never encoded: a test answer may use a token the training
    # text never did (it then simply cannot be produced)
    max_new = max(len(get_encoding().encode_ordinary(t)) for _, t in pairs) + 1  # + the end token
    prompts = vocab.encode_batch([p for p, _ in pairs])
    outs = answer(model, prompts, n_inf, vocab.pause_id, vocab.eot_id, max_new, progress=progress,
                  filler_id=vocab.dot_id if filler == "dot" else None, placement=placement,
                  ban_ids=vocab.unused_ids)
    return float(np.mean([vocab.decode(o) == t for o, (_, t) in zip(outs, pairs)]))


def test_pairs(cfg):
    return make_examples(cfg.task, cfg.n_test, "test", cfg.data_seed)


def conditions(name, ecfg):
    """The (M_inf, filler) pairs a variant is scored at."""
    m = ecfg.n_pause
    if VARIANTS[name][1]:
        return [(mi, "pause") for mi in (sorted({0, m // 2, m, 2 * m}) if ecfg.sweep else [m, 0])]
    if ecfg.filler == "dot" and name == "StdPT_StdFT":
        return [(0, "pause"), (m, "dot")]
    return [(0, "pause")]


def run_seed(ecfg, seed, names):
    """Train (or reuse) what the variants need for one seed; returns {(variant, M_inf, filler): acc}."""
    root = os.path.join(ecfg.out_dir, f"seed{seed}")
    pt_ckpts = {}
    for pause_pt in sorted({VARIANTS[n][0] for n in names}):
        cfg = phase_config(ecfg, "pretrain", seed, pause_frac=ecfg.pause_frac if pause_pt else 0.0,
                           out_dir=os.path.join(root, "pt_pause" if pause_pt else "pt_std"))
        pt_ckpts[pause_pt] = ensure_trained(cfg)
    scores = {}
    for name in names:
        pause_pt, pause_ft = VARIANTS[name]
        m_ft = ecfg.n_pause if pause_ft else 0
        placement = ecfg.placement if pause_ft else "append"
        suffix = "_prepend" if placement == "prepend" else ""
        cfg = phase_config(ecfg, "finetune", seed, n_pause=m_ft, init_from=pt_ckpts[pause_pt],
                           placement=placement, out_dir=os.path.join(root, f"ft_{name}_M{m_ft}{suffix}"))
        path = ensure_trained(cfg)
        model, vocab, _ = load_checkpoint(path, pick_device(cfg.device))
        model.eval()
        real = cfg.task in downstream.LOADERS  # one of the paper's tasks, scored with its own metric
        examples = downstream_examples(dataclasses.asdict(cfg))[0] if real else test_pairs(cfg)
        for m_inf, filler in conditions(name, ecfg):
            if real:
                acc = downstream_score(model, vocab, dataclasses.asdict(cfg), examples, m_inf, ecfg.progress,
                                       filler, placement)["score"]
            else:
                acc = accuracy(model, vocab, examples, m_inf, ecfg.progress, filler, placement)
            scores[(name, m_inf, filler)] = acc
            print(f"  {name} M_inf={m_inf}{' dots' if filler == 'dot' else ''}: {100 * acc:.1f}%")
    return scores


# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (no scipy needed)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def interval95(x, lo=-1.0, hi=1.0):
    """95% confidence interval of the mean of x (t-interval over seeds), clipped to [lo, hi] (an
    accuracy or a difference of accuracies cannot leave it); a point for one value."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return float(x.mean()), float(x.mean())
    t = T975[len(x) - 2] if len(x) - 1 <= len(T975) else 1.96
    half = t * x.std(ddof=1) / np.sqrt(len(x))
    return float(max(lo, x.mean() - half)), float(min(hi, x.mean() + half))


def summarize(per_seed, ecfg, lengths):
    """Rows of the result table: mean, std and 95% interval over seeds; the delta vs the baseline is
    paired by seed (same seed, same data order); compute = positions the model runs per test example
    (prompt + fillers + answer) and their ratio to the baseline's (FLOPs grow about linearly with it)."""
    base_key = ("StdPT_StdFT", 0, "pause")
    base = np.array([s[base_key] for s in per_seed]) if base_key in per_seed[0] else None
    prompt_len, answer_len = lengths
    rows = []
    for name, m_inf, filler in per_seed[0]:
        accs = np.array([s[(name, m_inf, filler)] for s in per_seed])
        row = {"variant": name, "M_ft": ecfg.n_pause if VARIANTS[name][1] else 0, "M_inf": m_inf,
               "filler": filler, "placement": ecfg.placement if VARIANTS[name][1] else "append",
               "accuracy": float(accs.mean()), "std": float(accs.std(ddof=1)) if len(accs) > 1 else None,
               "ci95": interval95(accs, 0.0, 1.0), "per_seed": accs.tolist(), "delta": None, "delta_ci95": None,
               "positions": prompt_len + m_inf + answer_len,
               "flops_ratio": (prompt_len + m_inf + answer_len) / (prompt_len + answer_len)}
        if base is not None:
            row["delta"] = float((accs - base).mean())
            row["delta_ci95"] = interval95(accs - base)
        rows.append(row)
    return rows


def table_markdown(rows):
    lines = ["| variant | M_ft | M_inf | accuracy (%) | 95% interval | delta vs baseline (pp), 95% interval "
             "| positions | compute |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{100 * r['accuracy']:.1f}" + (f" ± {100 * r['std']:.1f}" if r["std"] is not None else "")
        ci = f"[{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]"
        delta = "" if r["delta"] is None else f"{100 * r['delta']:+.1f}"
        if r["delta_ci95"] is not None and r["std"] is not None:
            delta += f" [{100 * r['delta_ci95'][0]:+.1f}, {100 * r['delta_ci95'][1]:+.1f}]"
        label = r["variant"] + (" (prepend)" if r["placement"] == "prepend" else "")
        m_inf = f"{r['M_inf']}" + (" dots" if r["filler"] == "dot" else "")
        lines.append(f"| {label} | {r['M_ft']} | {m_inf} | {acc} | {ci} | {delta} | {r['positions']:.1f} "
                     f"| {r['flops_ratio']:.2f}x |")
    return "\n".join(lines)


def plot(rows, path):
    """Accuracy vs M_inf per variant, error bars = std over seeds; None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in VARIANTS:
        pts = sorted((r["M_inf"], r["accuracy"], r["std"] or 0) for r in rows
                     if r["variant"] == name and r["filler"] == "pause")
        if pts:
            m, a, e = zip(*pts)
            ax.errorbar(m, [100 * x for x in a], yerr=[100 * x for x in e], marker="o", capsize=3, label=name)
    ax.set_xlabel("pauses at inference (M_inf)")
    ax.set_ylabel("exact match (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS")


def machine():
    """What a result was computed on. CPU results depend on the instruction set torch's kernels use
    (AVX-512 or AVX2: `python bench.py --suite=repro`), so the CPU's family/model, its AVX-512 support,
    torch's chosen capability and the thread count are recorded with the name."""
    info = {"cpu": platform.processor(), "cpu_family": None, "cpu_model": None, "avx512": None}
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info.update(cpu=fields.get("model name", info["cpu"]), cpu_family=fields.get("cpu family"),
                    cpu_model=fields.get("model"), avx512="avx512f" in fields.get("flags", "").split())
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    env = {k: os.environ[k] for k in KERNEL_ENV if k in os.environ}  # settings that change CPU results
    return {**info, "env": env, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}


def commit():
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def compare(ecfg):
    names = list(VARIANTS) if ecfg.variants == "all" else ecfg.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    if ecfg.filler not in ("pause", "dot"):
        raise ConfigError(f"filler must be 'pause' or 'dot', got {ecfg.filler!r}")
    for phase in ("pretrain", "finetune"):  # fail on a bad config before any training starts
        check_config(phase_config(ecfg, phase, ecfg.seed, n_pause=ecfg.n_pause, pause_frac=ecfg.pause_frac,
                                  placement=ecfg.placement))
    t0, code = time.time(), commit()  # stamp the code as it is when the run starts
    seeds = [ecfg.seed + i for i in range(ecfg.seeds)]
    per_seed = []
    for s in seeds:
        print(f"seed {s}", flush=True)
        per_seed.append(run_seed(ecfg, s, names))
    ft = phase_config(ecfg, "finetune", seeds[0])
    if ft.task in downstream.LOADERS:
        pairs = [(e["prefix"], e["target"]) for e in downstream_examples(dataclasses.asdict(ft))[0]]
    else:
        pairs = test_pairs(ft)
    enc = get_encoding()
    lengths = (np.mean([len(enc.encode_ordinary(p)) for p, _ in pairs]),
               np.mean([len(enc.encode_ordinary(t)) + 1 for _, t in pairs]))  # answer + end token
    rows = summarize(per_seed, ecfg, lengths)
    header = (f"task {ft.task}, {len(pairs)} test examples, {len(seeds)} seed(s) {seeds}; accuracy = exact "
              f"match, mean" + (" ± std over seeds, 95% t-interval" if len(seeds) > 1 else " (one seed: no "
              "spread; run --seeds=N)") + "; positions = prompt + fillers + answer tokens per example, "
              "compute = that over the baseline's")
    table = table_markdown(rows)
    os.makedirs(ecfg.out_dir, exist_ok=True)
    png = plot(rows, os.path.join(ecfg.out_dir, "accuracy_vs_minf.png")) if ecfg.plot else None
    result = {"command": " ".join(["python"] + sys.argv), "commit": code, "seeds": seeds,
              "machine": machine(), "seconds": time.time() - t0, "eval_config": dataclasses.asdict(ecfg),
              "task": ft.task, "n_test": len(pairs), "rows": rows, "plot": png}
    with open(os.path.join(ecfg.out_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(ecfg.out_dir, "results.md"), "w") as f:
        f.write(f"`{result['command']}` at commit {result['commit']} on {result['machine']['cpu']} "
                f"({result['machine']['cores']} cores, gpu: {result['machine']['gpu']}), "
                f"{result['seconds']:.0f}s\n\n{header}\n\n{table}\n")
    print(f"\n{header}\n\n{table}\n\n{result['seconds']:.0f}s; written to {ecfg.out_dir}/results.json"
          + (f" and {png}" if png else ""))
    return result


def score_one(ecfg):
    """Score one checkpoint with the pause placement it was finetuned with (its config says), at
    M_inf = n_inf (default: its own n_pause), with pauses or (--filler=dot) '.' tokens in the slots."""
    device = pick_device("auto")
    model, vocab, ckpt = load_checkpoint(ecfg.ckpt, device)
    model.eval()
    cfg = ckpt["config"]
    m_inf = cfg["n_pause"] if ecfg.n_inf < 0 else ecfg.n_inf
    placement = cfg.get("placement", "append")
    how = f"M_inf={m_inf}" + (f" {placement}ed" if placement != "append" else "") + (" dots" if ecfg.filler == "dot" else "")
    if cfg["task"] in downstream.LOADERS:
        examples, path = downstream_examples(cfg, ecfg.test_file)
        res = downstream_score(model, vocab, cfg, examples, m_inf, ecfg.progress, ecfg.filler, placement)
        also = "".join(f", {k} {100 * v:.1f}%" for k, v in res.get("also", {}).items())
        print(f"{ecfg.ckpt}: {cfg['task']}, {how}, {res['metric']} {100 * res['score']:.1f}%{also} on "
              f"{len(examples)} examples of {path}")
        return res["score"]
    pairs = make_examples(cfg["task"], cfg["n_test"], "test", cfg["data_seed"])
    acc = accuracy(model, vocab, pairs, m_inf, ecfg.progress, ecfg.filler, placement)
    print(f"{ecfg.ckpt}: {how}, exact match {100 * acc:.1f}% on {len(pairs)} test examples")
    return acc


@torch.no_grad()
def choice_logprob(model, prefix, choice, n_pause, fill_id, eot_id, placement="append"):
    """log P(choice | prefix with n_pause fillers, placed as in finetuning): the finetuning format of
    (prefix, choice) from format_example, summed over the choice's tokens (not its end token)."""
    x, y = format_example(prefix, choice, n_pause, fill_id, eot_id, placement)
    y[-1] = -1  # the end token's prediction is not part of the choice
    device = next(model.parameters()).device
    x, y = torch.from_numpy(x)[None].to(device), torch.from_numpy(y)[None].to(device)
    logits, _ = model(x, y)  # logits at the choice positions only
    return torch.log_softmax(logits.float(), -1).gather(1, y[y != -1][:, None]).sum().item()


def rank_accuracy(model, vocab, examples, m_inf, filler="pause", placement="append"):
    """HellaSwag/PIQA: the choice with the highest likelihood after the pauses must be the label.
    Returns (accuracy by the raw sum of log-probabilities, accuracy by that sum divided by the choice's
    length in characters). The length-normalised one is the headline: the choices differ in length,
    and a raw sum favours short ones whatever they say (lm-evaluation-harness's acc_norm, as GPT-3's
    paper reports HellaSwag and PIQA with a length normalisation)."""
    fill = vocab.dot_id if filler == "dot" else vocab.pause_id
    raw, norm = [], []
    for e in examples:
        choices = vocab.encode_batch(e["choices"])
        prefix = fit_prefix(vocab.encode(e["prefix"]), model.config.block_size - m_inf - max(map(len, choices)))
        scores = np.array([choice_logprob(model, prefix, c, m_inf, fill, vocab.eot_id, placement) for c in choices])
        raw.append(int(np.argmax(scores)) == e["label"])
        norm.append(int(np.argmax(scores / np.array([len(c) for c in e["choices"]]))) == e["label"])
    return float(np.mean(raw)), float(np.mean(norm))


def downstream_examples(cfg, path=""):
    path = path or cfg["test_file"]
    if not os.path.isfile(path):
        raise ConfigError(f"test_file not found: {path!r}")
    return downstream.load(cfg["task"], path), path


def downstream_score(model, vocab, cfg, examples, m_inf, progress=False, filler="pause", placement="append"):
    """A real task: greedy answers after m_inf pauses (or '.' fillers; placed as in finetuning) scored
    with the task's own metric, or, for HellaSwag and PIQA, the choices ranked by likelihood.
    Returns {"score", "metric"} and, for the ranked tasks, "also": the other ranking accuracy."""
    if cfg["task"] in downstream.RANKED:
        acc, acc_norm = rank_accuracy(model, vocab, examples, m_inf, filler, placement)
        return {"score": acc_norm, "metric": "ranking accuracy (length-normalised)",
                "also": {"ranking accuracy (raw sum)": acc}}
    n_new = cfg["max_answer_tokens"]
    room = model.config.block_size - m_inf - n_new + 1
    prompts = [fit_prefix(p, room) for p in vocab.encode_batch([e["prefix"] for e in examples])]
    outs = answer(model, prompts, m_inf, vocab.pause_id, vocab.eot_id, n_new, progress=progress,
                  filler_id=vocab.dot_id if filler == "dot" else None, placement=placement,
                  ban_ids=vocab.unused_ids)
    metric = downstream.METRICS[cfg["task"]]
    return {"score": downstream.score(cfg["task"], [vocab.decode(o) for o in outs], examples),
            "metric": metric.__name__}


def main(argv):
    def body():
        ecfg = parse_config(argv, EvalConfig)
        if ecfg.seeds < 1 or ecfg.n_pause < 0 or not 0 <= ecfg.pause_frac <= 1:
            raise ConfigError("seeds must be >= 1, n_pause >= 0, pause_frac in [0, 1]")
        if ecfg.placement not in ("append", "prepend"):
            raise ConfigError(f"placement must be 'append' or 'prepend', got {ecfg.placement!r}")
        score_one(ecfg) if ecfg.ckpt else compare(ecfg)
    return run_cli("eval.py", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
