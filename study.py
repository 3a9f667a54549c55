"""
The study: on which embedded task, at which size, with how many pauses and with which supervision does
thinking time help a small GPT? Every cell finetunes from scratch (no pretraining) with M pauses after
every prompt, the same optimizer steps and batch for every M, and scores exact match on a fixed test set.

  python study.py --help                  # the grid's keys
  python study.py --tasks=keyparity,keyparity_first --arms=plain,hints,input_hints,matched --pauses=0,10 \
      --seeds=3 --max_iters=2500 --n_head=8 --learning_rate=3e-3 --out=results/study_supervision
  python study.py --tasks=keysum --layers=2 --pauses=0,8 --seeds=1 --max_iters=200 --out=/tmp/s  # a look

Arms (what a cell trains):
  plain        M pauses whose outputs are ignored: the paper's pause finetuning (M = 0: standard)
  hints        M pauses, the pause slots trained on the task's hints (pause j: a job of its own)
  input_hints  M pauses, and the prompt positions trained on the task's input hints (the control that
               puts the same kind of supervision where the input is, with no pauses when M = 0)
  mixed        hints, with each example's M_ft drawn from [M/2, M] (for graceful M_inf)
  mixed_plain  plain pauses, with each example's M_ft drawn from [M/2, M]
  matched      no pauses, max_iters scaled so that positions x steps equal the M-pause cells' (a control)
The commands of the committed result files are in results/README.md.
"""
import dataclasses
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from common import ConfigError, commit, map_jobs, parse_config, run_cli, seed_stats, write_results
from eval import compute_ratio
from tasks import SPACE, TASKS, make_examples
from train import Config, accuracy, load_checkpoint, train

ARMS = ("plain", "hints", "input_hints", "mixed", "mixed_plain", "matched")


@dataclass
class StudyConfig:
    tasks: str = "keysum,summod,mult,hops"
    layers: str = "2,4"             # depths
    widths: str = "64"              # n_embd values
    n_head: int = 4
    arms: str = "plain"             # a comma list of ARMS (see the docstring)
    pauses: str = "0,8"             # M values
    m_inf: str = ""                 # M_inf values to score every cell at ("": at its own M)
    seeds: int = 2
    max_iters: int = 1500
    batch_size: int = 64
    learning_rate: float = 1e-3
    n_train: int = 20000
    n_test: int = 2000
    out: str = "results/study"      # writes <out>.md, <out>.json and (with matplotlib) <out>.png
    work_dir: str = "out/study"     # checkpoints
    plot: bool = True
    progress: bool = False
    workers: int = 0                # runs at once in worker processes (0: one per CPU core), one thread each


def ints(s):
    return [int(x) for x in s.split(",") if x]


def cells_of(scfg):
    """Every (task, layers, width, arm, M) of the grid that means something."""
    for task in scfg.tasks.split(","):
        for n_layer in ints(scfg.layers):
            for width in ints(scfg.widths):
                for arm in scfg.arms.split(","):
                    for m in ints(scfg.pauses):
                        if (arm in ("hints", "mixed") and m < 2) or (arm in ("matched", "mixed_plain") and m == 0):
                            continue  # a hint needs a pause besides the one that answers; matched needs an M
                        yield task, n_layer, width, arm, m


def run_one(scfg, task, n_layer, width, arm, m, seed):
    """Train one cell's model for one seed; returns ({M_inf: accuracy}, val loss, seconds)."""
    max_iters = scfg.max_iters
    if arm == "matched":
        max_iters = round(max_iters * compute_ratio(task, m))
    cfg = Config(phase="finetune", task=task, n_layer=n_layer, n_head=scfg.n_head, n_embd=width, block_size=64,
                 n_pause=0 if arm == "matched" else m, n_pause_min=m // 2 if arm.startswith("mixed") else -1,
                 hints=arm in ("hints", "mixed"), input_hints=arm == "input_hints", seed=seed,
                 batch_size=scfg.batch_size, max_iters=max_iters, learning_rate=scfg.learning_rate,
                 min_lr=scfg.learning_rate / 10, warmup_iters=100, n_train=scfg.n_train, n_test=scfg.n_test,
                 eval_interval=max_iters, eval_iters=10, progress=scfg.progress,
                 out_dir=os.path.join(scfg.work_dir, f"{task}_L{n_layer}_W{width}_{arm}_M{m}_s{seed}"),
                 overwrite=True)  # the study trains every cell anew: its work_dir is scratch space
    out = train(cfg)
    model, vocab, _ = load_checkpoint(out["ckpt"])
    model.eval()
    test = make_examples(task, scfg.n_test, "test", cfg.data_seed)
    m_infs = ints(scfg.m_inf) or [cfg.n_pause]
    accs = {mi: accuracy(model, vocab, test, mi) for mi in m_infs}
    print(f"  {task} L{n_layer} W{width} {arm} M{m} seed {seed}: {out['seconds']:.0f}s, "
          + ", ".join(f"M_inf={mi} {100 * a:.1f}%" for mi, a in accs.items()), flush=True)
    return accs, out["val_loss"], out["seconds"]


def majority(task, scfg):
    """Exact match of always answering the most common training answer: the floor to beat."""
    answers = [t for _, t in make_examples(task, scfg.n_train, "train", 0)]
    top = max(set(answers), key=answers.count)
    return float(np.mean([t == top for _, t in make_examples(task, scfg.n_test, "test", 0)]))


def main(argv):
    return run_cli("study.py", lambda: study(parse_config(argv, StudyConfig)))


def study(scfg):
    for arm in scfg.arms.split(","):
        if arm not in ARMS:
            raise ConfigError(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
    for task in scfg.tasks.split(","):
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    t0, rows, code = time.time(), [], commit()  # stamp the code as it is when the run starts
    seeds = [1337 + s for s in range(scfg.seeds)]
    cells = list(cells_of(scfg))
    jobs = [(scfg, *cell, seed) for cell in cells for seed in seeds]
    workers = scfg.workers or min(os.cpu_count() or 1, len(jobs))
    done = map_jobs(run_one, jobs, workers, 1)  # one thread per job, as in eval.py
    for i, (task, n_layer, width, arm, m) in enumerate(cells):
        runs = done[i * len(seeds):(i + 1) * len(seeds)]
        for m_inf in runs[0][0]:
            stats = seed_stats([r[0][m_inf] for r in runs])
            rows.append({"task": task, "n_layer": n_layer, "n_embd": width, "arm": arm, "M": m, "M_inf": m_inf,
                         "majority": majority(task, scfg), **stats, "val_loss": [r[1] for r in runs],
                         "seconds": [r[2] for r in runs]})
            print(f"{task} L{n_layer} W{width} {arm} M{m} M_inf{m_inf}: {100 * stats['accuracy']:.1f}% "
                  f"{[round(100 * a, 1) for a in stats['per_seed']]}", flush=True)
    tasks = scfg.tasks.split(",")
    cover = {t: (None if SPACE.get(t) is None else scfg.n_train / (0.8 * SPACE[t])) for t in tasks}
    lines = [f"Finetuning from scratch, {scfg.max_iters} steps x {scfg.batch_size} examples (matched: more steps), "
             f"{scfg.n_head} heads, lr {scfg.learning_rate}; exact match on {scfg.n_test} test prompts (hash-disjoint "
             f"from training), seeds {seeds}. Training covers "
             + ", ".join(f"{t}: {'n/a' if c is None else f'{100 * c:.2g}%'}" for t, c in cover.items())
             + " of the train part of the prompt space.", "",
             "| task | layers | width | arm | M | M_inf | accuracy (%) mean ± std | 95% interval | per seed | "
             "majority answer (%) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        std = "" if r["std"] is None else f" ± {100 * r['std']:.1f}"
        lines.append(f"| {r['task']} | {r['n_layer']} | {r['n_embd']} | {r['arm']} | {r['M']} | {r['M_inf']} | "
                     f"{100 * r['accuracy']:.1f}{std} | [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}] | "
                     f"{', '.join(f'{100 * a:.1f}' for a in r['per_seed'])} | {100 * r['majority']:.1f} |")
    png = plot(rows, scfg.out + ".png", by_m_inf=bool(scfg.m_inf)) if scfg.plot else None
    write_results(scfg.out, {"config": dataclasses.asdict(scfg), "seeds": seeds, "train_coverage": cover,
                             "cells": rows, "plot": png}, "\n".join(lines), code, t0)
    print("\n".join(lines))


def plot(rows, path, by_m_inf):
    """Accuracy vs M_inf (with m_inf), vs M (with three M values or more), else one bar per cell; error
    bars = std over seeds. None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves = by_m_inf or len({r["M"] for r in rows}) >= 3
    if curves:
        lines = {}
        for r in rows:
            lines.setdefault((r["task"], r["n_layer"], r["n_embd"], r["arm"]), []).append(
                (r["M_inf"] if by_m_inf else r["M"], r["accuracy"], r["std"] or 0))
        for (task, n_layer, width, arm), pts in lines.items():
            x, a, e = zip(*sorted(pts))
            ax.errorbar(x, [100 * v for v in a], yerr=[100 * v for v in e], marker="o", capsize=3,
                        label=f"{task} {n_layer}x{width} {arm}")
        ax.set_xlabel("pauses at inference (M_inf)" if by_m_inf else "pauses (M)")
        ax.legend(fontsize=7)
    else:
        labels = [f"{r['task']} {r['n_layer']}x{r['n_embd']} {r['arm']} M={r['M']}" for r in rows]
        ax.barh(range(len(rows)), [100 * r["accuracy"] for r in rows], xerr=[100 * (r["std"] or 0) for r in rows],
                capsize=3, color="tab:blue")
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(100 * rows[0]["majority"], color="gray", linestyle=":", label="majority answer")
        ax.legend(fontsize=7)
    ax.set_xlabel(ax.get_xlabel() or "exact match (%)")
    if curves:
        ax.set_ylabel("exact match (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
