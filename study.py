"""
The task study: on which embedded task, at which depth and with how many pauses, does thinking time
help a small GPT? It finetunes from scratch (no pretraining) with M pauses after every prompt, the same
optimizer steps and batch for every M, and scores exact match at M_inf = M on a fixed test set.

  python study.py                      # the committed study -> results/study.md, results/study.json
  python study.py --tasks=keysum --layers=2 --pauses=0,8 --seeds=1 --max_iters=200 --out=/tmp/s  # a look

Pauses only in finetuning is the StdPT_PauseFT-style question "can the model use extra positions at
all on this task"; the four-variant comparison on the chosen task is eval.py's job.
"""
import dataclasses
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from common import commit, parse_config, run_cli, seed_stats, write_results
from eval import accuracy
from tasks import SPACE, make_examples
from train import Config, load_checkpoint, train


@dataclass
class StudyConfig:
    tasks: str = "keysum,summod,mult,hops"
    layers: str = "2,4"
    pauses: str = "0,8"
    seeds: int = 2
    max_iters: int = 1500
    n_embd: int = 64
    n_head: int = 4
    batch_size: int = 64
    learning_rate: float = 1e-3
    n_train: int = 20000
    n_test: int = 2000
    out: str = "results/study"      # writes <out>.md and <out>.json
    work_dir: str = "out/study"     # checkpoints
    progress: bool = False


def ints(s):
    return [int(x) for x in s.split(",") if x]


def run_one(scfg, task, n_layer, m, seed):
    cfg = Config(phase="finetune", task=task, n_layer=n_layer, n_head=scfg.n_head, n_embd=scfg.n_embd,
                 block_size=64, n_pause=m, seed=seed, batch_size=scfg.batch_size, max_iters=scfg.max_iters,
                 learning_rate=scfg.learning_rate, min_lr=scfg.learning_rate / 10, warmup_iters=100,
                 n_train=scfg.n_train, n_test=scfg.n_test, eval_interval=scfg.max_iters, eval_iters=10,
                 progress=scfg.progress, out_dir=os.path.join(scfg.work_dir, f"{task}_L{n_layer}_M{m}_s{seed}"))
    out = train(cfg)
    model, vocab, _ = load_checkpoint(out["ckpt"])
    model.eval()
    acc = accuracy(model, vocab, make_examples(task, scfg.n_test, "test", cfg.data_seed), m)
    return acc, out["val_loss"], out["seconds"]


def majority(task, scfg):
    """Exact match of always answering the most common training answer: the floor to beat."""
    answers = [t for _, t in make_examples(task, scfg.n_train, "train", 0)]
    top = max(set(answers), key=answers.count)
    return float(np.mean([t == top for _, t in make_examples(task, scfg.n_test, "test", 0)]))


def main(argv):
    return run_cli("study.py", lambda: study(parse_config(argv, StudyConfig)))


def study(scfg):
    t0, cells, code = time.time(), [], commit()  # stamp the code as it is when the run starts
    for task in scfg.tasks.split(","):
        for n_layer in ints(scfg.layers):
            for m in ints(scfg.pauses):
                runs = [run_one(scfg, task, n_layer, m, 1337 + s) for s in range(scfg.seeds)]
                stats = seed_stats([r[0] for r in runs])
                cells.append({"task": task, "n_layer": n_layer, "M": m, "majority": majority(task, scfg), **stats,
                              "val_loss": [r[1] for r in runs], "seconds": [r[2] for r in runs]})
                print(f"{task} L{n_layer} M{m}: {100 * stats['accuracy']:.1f}% "
                      f"{[round(100 * a, 1) for a in stats['per_seed']]}", flush=True)
    cover = {t: (None if SPACE.get(t) is None else scfg.n_train / (0.8 * SPACE[t])) for t in scfg.tasks.split(",")}
    lines = [f"Finetuning from scratch, {scfg.max_iters} steps x {scfg.batch_size} examples, width {scfg.n_embd}; "
             f"exact match on {scfg.n_test} test prompts (hash-disjoint from training) at M_inf = M, seeds "
             f"{[1337 + s for s in range(scfg.seeds)]}. Training covers "
             + ", ".join(f"{t}: {'n/a (space > 1e9)' if c is None else f'{100 * c:.2f}%'}" for t, c in cover.items())
             + " of the train part of the prompt space.",
             "", "| task | layers | M | accuracy (%) mean ± std | 95% interval | per seed | majority answer (%) |",
             "|---|---|---|---|---|---|---|"]
    for c in cells:
        std = "" if c["std"] is None else f" ± {100 * c['std']:.1f}"
        lines.append(f"| {c['task']} | {c['n_layer']} | {c['M']} | {100 * c['accuracy']:.1f}{std} | "
                     f"[{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f}] | "
                     f"{', '.join(f'{100 * a:.1f}' for a in c['per_seed'])} | {100 * c['majority']:.1f} |")
    write_results(scfg.out, {"config": dataclasses.asdict(scfg), "seeds": [1337 + s for s in range(scfg.seeds)],
                             "train_coverage": cover, "cells": cells}, "\n".join(lines), code, t0)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
