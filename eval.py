"""
The paper's comparison on the embedded task: StdPT/PausePT pretraining x StdFT/PauseFT finetuning, and
the other ways to spend the same compute, scored by exact match on a held-out test set against the
StdPT_StdFT baseline, the test set's majority answer and the pretrained model.

  python eval.py                                   # the default comparison (minutes on 2 CPU cores)
  python eval.py --variants=controls               # pauses against chain of thought, loops, depth, ...
  python eval.py --n_pause=4 --variants=PausePT_PauseFT   # another M_ft; reuses the pretrained models
  python eval.py --placement=prepend --filler=dot  # the paper's ablations: pauses first; '.' at inference
  python eval.py --ckpt=out/default/seed1337/ft_PausePT_PauseFT_M8/ckpt.pt --n_inf=0   # one model

Each run lives in <out_dir>/seed<seed>/<name>-<hash of its settings>, reused only while its settings,
starting weights, data files, training code (common.TRAINING_CODE) and torch version are unchanged (else
one line says why and it is retrained, in place of the old run once complete). The table goes to stdout
and, with the command, commit, seeds and machine, to <out_dir>/results.md, .json and .png
(results_<settings>.* for other settings than the defaults).
"""
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

import downstream
from common import (REPO, ConfigError, check_writable, commit, made_by, map_jobs, parse_config, pick_device,
                    read_checkpoint, replace_run, run_cli, seed_stats, write_results)
from data import get_encoding
from report import (costs, curve_markdown, learning_curve, plateaued, plot, plot_curves, plot_flops, report_header,
                    summarize_curve, table_markdown)
from tasks import make_examples
from train import (NOT_RUN_SETTINGS, Config, accuracy, check_config, init_fingerprint, load_checkpoint, made_changed,
                   provenance, settings_changed, train)

@dataclass(frozen=True)
class Variant:
    pause_pt: bool          # pretraining with random pauses (PausePT)
    pause_ft: bool          # finetuning with M_ft pauses after each prompt (PauseFT)
    hints: bool = False     # the pause slots trained on the task's hints (not in the paper)
    matched: bool = False   # no pauses, finetuned for as many positions x steps as PauseFT (a control)
    # the alternatives to pauses (controls): each a setting of train.Config, its rule in pause.py or model.py
    filler: str = "pause"   # "dot": '.' in the M_ft slots, in finetuning and at inference (trained filler)
    repeat: bool = False    # the prompt written twice where the pauses would go
    cot: bool = False       # chain of thought: the hints emitted as tokens and read back, then the answer
    model: tuple = ()       # the model's shape where it differs, e.g. (("n_loop", 2),): pretrained so too


VARIANTS = {
    "StdPT_StdFT": Variant(False, False),  # the baseline
    "StdPT_PauseFT": Variant(False, True),
    "PausePT_StdFT": Variant(True, False),
    "PausePT_PauseFT": Variant(True, True),
    "StdPT_HintFT": Variant(False, True, hints=True),
    "PausePT_HintFT": Variant(True, True, hints=True),
    "StdPT_StdFT_matched": Variant(False, False, matched=True),  # the baseline given PauseFT's compute
    "StdPT_CoTFT": Variant(False, False, cot=True),              # the hints' supervision, emitted
    "StdPT_DotFT": Variant(False, True, filler="dot"),           # '.' trained in place of the pause
    "StdPT_RepeatFT": Variant(False, False, repeat=True),        # the prompt again in place of the pauses
    "Loop2_StdFT": Variant(False, False, model=(("n_loop", 2),)),  # every block run twice
    "Deep5_StdFT": Variant(False, False, model=(("n_layer", 5),)),  # a bigger model: 5 layers, not 3
}
SETS = {"default": "StdPT_StdFT,StdPT_PauseFT,StdPT_HintFT,StdPT_StdFT_matched",
        "controls": "StdPT_StdFT,StdPT_PauseFT,StdPT_HintFT,StdPT_StdFT_matched,StdPT_CoTFT,StdPT_DotFT,"
                    "StdPT_RepeatFT,Loop2_StdFT,Deep5_StdFT",
        "paper": "StdPT_StdFT,StdPT_PauseFT,PausePT_StdFT,PausePT_PauseFT", "all": ",".join(VARIANTS)}


@dataclass
class EvalConfig:
    out_dir: str = "out/default"
    pretrain_config: str = "configs/pretrain.py"  # phase settings (relative paths: cwd, then the repo)
    finetune_config: str = "configs/finetune.py"
    seed: int = 1337
    seeds: int = 4               # model seeds seed, seed+1, ...; mean ± std over them
    n_pause: int = 10            # M_ft of the PauseFT variants (keyparity: n + 2 = 10, one per hint + the answer)
    pause_frac: float = 0.1      # pauses per token in PausePT (the paper's 10%)
    variants: str = "default"    # names from VARIANTS, comma-separated, or a set: default, paper, all
    sweep: bool = True           # PauseFT variants at M_inf = 0, M_ft/2, M_ft, 2*M_ft (else M_ft and 0)
    placement: str = "append"    # where PauseFT puts its pauses: "append" (the paper) or "prepend"
    filler: str = "pause"        # "dot": also score the baseline with M_ft '.' tokens at inference
    plot: bool = True            # write accuracy_vs_minf.png when matplotlib is installed
    ckpt: str = ""               # score this one checkpoint instead of running the comparison
    n_inf: int = -1              # with ckpt: M_inf (-1: the checkpoint's own n_pause)
    test_file: str = ""          # with ckpt of a downstream task: the file to score (else its test_file)
    mistakes: int = 3            # with ckpt: print this many wrong answers
    workers: int = 0             # seeds trained at once in worker processes (0: one per CPU core, up to seeds)
    threads: int = 1             # torch CPU threads per training process (the bits depend on it; see README)
    device: str = "auto"         # where every run trains and is scored: auto (cuda, then mps, then cpu), cpu, cuda
    progress: bool = True


def compare(ecfg):
    """The comparison: every variant for every seed, then the table over seeds."""
    names = check_eval_config(ecfg)
    check_writable(ecfg.out_dir)  # before training, not after
    t0, code = time.time(), commit()  # stamp the code as it is when the run starts
    seeds = [ecfg.seed + i for i in range(ecfg.seeds)]
    done, made, pt = run_all(ecfg, seeds, names)  # {(seed, variant): (scores, plateau, curve)}, who trained what
    per_seed = [{k: a for n in names for k, a in done[(s, n)][0].items()} for s in seeds]
    plateaus = [{n: done[(s, n)][1] for n in names} for s in seeds]
    ft = phase_config(ecfg, "finetune", seeds[0])
    pairs = [(e["prefix"], e["target"]) for e in test_examples(ft)]
    rows = summarize(per_seed, plateaus, ecfg, pairs) + references(ecfg, seeds, pt, pairs, per_seed)
    header = report_header(ft.task, len(pairs), seeds, made, ecfg.threads)
    base = [done[(s, "StdPT_StdFT")][2] for s in seeds] if "StdPT_StdFT" in names else None
    curves = [summarize_curve(n, [done[(s, n)][2] for s in seeds], base, VARIANTS[n].pause_ft) for n in names]
    curves = [c for c in curves if c]
    table = table_markdown(rows) + (curve_markdown(curves) if curves else "")
    stem = os.path.join(ecfg.out_dir, results_name(ecfg))
    pngs = [plot(rows, stem + ".png"), plot_flops(rows, stem + "_flops.png"),
            plot_curves(curves, stem + "_curve.png") if curves else None] if ecfg.plot else []
    pngs = [p for p in pngs if p]
    result = write_results(stem,
                           {"seeds": seeds, "eval_config": dataclasses.asdict(ecfg), "task": ft.task,
                            "n_test": len(pairs), "rows": rows, "curves": curves, "plots": pngs, "trained": made},
                           f"{header}\n\n{table}", code, t0)
    print(f"\n{header}\n\n{table}\n\n{result['seconds']:.0f}s; written to {stem}.json"
          + "".join(f" and {p}" for p in pngs))
    return result


def run_all(ecfg, seeds, names):
    """Pretrain what the variants need, then finetune and score every (seed, variant), in worker
    processes when the machine has several CPU cores (common.map_jobs), each job on ecfg.threads threads.
    Returns the scores, what made each run (made_by) and the pretrained models' paths."""
    pretrains = sorted({(s, VARIANTS[n].pause_pt, VARIANTS[n].model) for s in seeds for n in names})
    cost = lambda job: finetune_config(ecfg, job[0], job[1], "scratch").max_iters * (  # noqa: E731
        1 + VARIANTS[job[1]].pause_ft + VARIANTS[job[1]].repeat + len(VARIANTS[job[1]].model))
    finetunes = sorted(((s, n) for s in seeds for n in names), key=lambda job: -cost(job))  # longest first
    workers = ecfg.workers or min(os.cpu_count() or 1, len(finetunes))
    if workers > 1 and pick_device(ecfg.device) == "cpu":
        ecfg = dataclasses.replace(ecfg, progress=False)  # workers print plain lines, no bars
    else:
        workers = 1
    pt = dict(zip(pretrains, map_jobs(pretrain, [(ecfg, *job) for job in pretrains], workers, ecfg.threads)))
    jobs = [(ecfg, s, n, pt[(s, VARIANTS[n].pause_pt, VARIANTS[n].model)][0]) for s, n in finetunes]
    ft = dict(zip(finetunes, map_jobs(finetune_and_score, jobs, workers, ecfg.threads)))
    made = [made_by(p, r) for p, r in pt.values()] + [v[3] for v in ft.values()]
    return {k: v[:3] for k, v in ft.items()}, made, {k: p for k, (p, _) in pt.items()}


def pretrain(ecfg, seed, pause_pt, model=()):
    """The pretrained model of one seed, with random pauses (PausePT) or without, of the pretraining
    config's shape or the variant's (model): (its path, reused)."""
    cfg = phase_config(ecfg, "pretrain", seed, pause_frac=ecfg.pause_frac if pause_pt else 0.0, **dict(model))
    name = ("pt_pause" if pause_pt else "pt_std") + "".join(f"_{k}{v}" for k, v in model)
    return ensure_trained(run_dir(ecfg, cfg, name))


def finetune_config(ecfg, seed, name, init_from):
    v = VARIANTS[name]
    m_ft = ecfg.n_pause if v.pause_ft else 0
    placement = ecfg.placement if v.pause_ft else "append"
    suffix = "_prepend" if placement == "prepend" else ""
    cfg = phase_config(ecfg, "finetune", seed, n_pause=m_ft, init_from=init_from, placement=placement,
                       hints=v.hints, filler=v.filler, repeat=v.repeat, cot=v.cot)
    if v.matched:  # as many positions x steps as the pause variants: more steps for shorter examples
        cfg = dataclasses.replace(cfg, max_iters=round(cfg.max_iters * compute_ratio(cfg.task, ecfg.n_pause)))
    cfg = dataclasses.replace(cfg, snapshot_at=3 * cfg.max_iters // 4)  # keep the model at 3/4: the plateau check
    return run_dir(ecfg, cfg, f"ft_{name}_M{m_ft}{suffix}")


def run_dir(ecfg, cfg, name):
    """cfg in its own folder, <out_dir>/seed<seed>/<name>-<hash>: the hash covers every setting that
    changes the run (the path of the model it starts from relative to out_dir, so the folder can move),
    so switching a setting back and forth trains each version once and replaces none."""
    key = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_RUN_SETTINGS}
    if os.path.isfile(cfg.init_from):
        key["init_from"] = os.path.relpath(cfg.init_from, ecfg.out_dir)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    return dataclasses.replace(cfg, out_dir=os.path.join(ecfg.out_dir, f"seed{cfg.seed}", f"{name}-{digest}"))


def results_name(ecfg):
    """"results" for the default comparison; "results_<setting=value,...>" for one with other settings
    (those that change its numbers), so two comparisons in one out_dir never overwrite each other's."""
    ignore = {"out_dir", "progress", "plot", "workers", "ckpt", "n_inf", "test_file", "mistakes"}
    default = EvalConfig()
    diff = ",".join(f"{f.name}={getattr(ecfg, f.name)}" for f in dataclasses.fields(ecfg)
                    if f.name not in ignore and getattr(ecfg, f.name) != getattr(default, f.name))
    name = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", diff)
    if len(name) > 80:
        name = name[:60] + "_" + hashlib.sha256(diff.encode()).hexdigest()[:8]
    return "results_" + name if name else "results"


def finetune_and_score(ecfg, seed, name, init_from):
    """Finetune (or reuse) one variant of one seed and score it at each of its conditions. Returns
    ({(variant, M_inf, filler): accuracy}, (plateaued, change of validation exact match over the
    last quarter, in points), learning curve, reused)."""
    cfg = finetune_config(ecfg, seed, name, init_from)
    path, reused = ensure_trained(cfg)
    model, vocab, ckpt = load_checkpoint(path, pick_device(cfg.device))  # read on the CPU, then moved
    model.eval()
    curve = learning_curve(ckpt)
    plateau = plateaued(curve, cfg.snapshot_at)
    if curve:  # a downstream task has no val split to draw one on
        print(f"  seed {seed} {name}: validation exact match {plateau[1]:+.1f} points over the last quarter "
              f"({'plateau' if plateau[0] else 'still changing'})", flush=True)
    examples, scores = test_examples(cfg), {}
    for m_inf, filler in conditions(name, ecfg):
        scores[(name, m_inf, filler)] = score(model, vocab, cfg, examples, m_inf, filler, cfg.placement,
                                              ecfg.progress)["score"]
        print(f"  seed {seed} {name} M_inf={m_inf}{' dots' if filler == 'dot' else ''}: "
              f"{100 * scores[(name, m_inf, filler)]:.1f}%", flush=True)
    return scores, plateau, curve, made_by(path, reused, ckpt)


def compute_ratio(task, n_pause):
    """Positions per finetuning example with n_pause pauses over those without (prompt + answer + end)."""
    enc = get_encoding()
    plain = np.mean([len(enc.encode_ordinary(p)) + len(enc.encode_ordinary(t)) + 1
                     for p, t in make_examples(task, 200, "train", 0)])
    return (plain + n_pause) / plain


def ensure_trained(cfg):
    """Train cfg unless out_dir holds a finished run that cfg would make again (stale() is None);
    returns (checkpoint path, reused). A stale or unfinished run is replaced only by a complete one:
    the new run trains in <out_dir>.partial, then takes the old one's place."""
    path = os.path.join(cfg.out_dir, "ckpt.pt")
    why = stale(cfg, path) if os.path.exists(path) else None
    if os.path.exists(path) and why is None:
        print(f"  reusing {path}")
        return path, True
    print(f"  retraining {cfg.out_dir}: {why}" if why else f"  training {cfg.out_dir}", flush=True)
    out = train(dataclasses.replace(cfg, out_dir=os.path.normpath(cfg.out_dir) + ".partial", overwrite=True))
    replace_run(os.path.dirname(out["ckpt"]), cfg.out_dir)
    print(f"    val loss {out['val_loss']:.4f} in {out['seconds']:.0f}s")
    return path, False


def stale(cfg, path):
    """Why the run saved in path is not what cfg would train now (None: it is): everything that made
    its weights must be unchanged: the settings (not where it lies, nor the spelling of the checkpoint it
    starts from), the training code, the bytes of its data files, the torch version, and the weights it
    started from (a finetune of an older pretrained model is stale, a moved one is not)."""
    saved = read_checkpoint(path)
    changed = settings_changed(saved["config"], cfg, skip=("init_from",) if os.path.isfile(cfg.init_from) else ())
    if changed:
        return f"its settings differ ({', '.join(changed)})"
    if saved["step"] != cfg.max_iters:
        return f"it stopped at step {saved['step']} of {cfg.max_iters}"
    why = made_changed(saved, provenance(cfg))
    if why is None and saved.get("init_fingerprint") != init_fingerprint(cfg):
        why = f"{cfg.init_from} holds other weights than the ones it started from"
    return why


def phase_config(ecfg, phase, seed, **overrides):
    """The train.Config of one phase: its config file, then the comparison's settings."""
    path = ecfg.pretrain_config if phase == "pretrain" else ecfg.finetune_config
    path = path if os.path.exists(path) or os.path.isabs(path) else os.path.join(REPO, path)
    return dataclasses.replace(parse_config([path], Config), phase=phase, seed=seed, progress=ecfg.progress,
                               device=ecfg.device, **overrides)


def check_eval_config(ecfg):
    """The comparison's own settings; the phases' settings are checked by train.check_config, once."""
    names = SETS.get(ecfg.variants, ecfg.variants).split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    if ecfg.filler not in ("pause", "dot"):
        raise ConfigError(f"filler must be 'pause' or 'dot', got {ecfg.filler!r}")
    if ecfg.seeds < 1 or ecfg.workers < 0 or ecfg.threads < 1:
        raise ConfigError("seeds and threads must be >= 1, workers >= 0")
    for n in names:  # fail on a bad setting before any training starts
        check_config(phase_config(ecfg, "pretrain", ecfg.seed, pause_frac=ecfg.pause_frac, **dict(VARIANTS[n].model)))
        check_config(finetune_config(ecfg, ecfg.seed, n, "scratch"))
    if any(VARIANTS[n].matched for n in names) and phase_config(ecfg, "finetune", ecfg.seed).task in downstream.LOADERS:
        raise ConfigError("the matched control needs an embedded task (it counts the task's positions)")
    return names


def conditions(name, ecfg):
    """The (M_inf, filler) pairs a variant is scored at."""
    m, v = ecfg.n_pause, VARIANTS[name]
    if v.pause_ft:  # the fillers it was trained with: pauses, or '.' (the trained-filler control)
        return [(mi, v.filler) for mi in (sorted({0, m // 2, m, 2 * m}) if ecfg.sweep else [m, 0])]
    if ecfg.filler == "dot" and name == "StdPT_StdFT":  # the paper's control: '.' instead of pauses
        return [(0, "pause"), (m, "dot")]
    return [(0, "pause")]

# --- scoring ------------------------------------------------------------------------------------------


def test_examples(cfg, path=""):
    """The test set of a finetuning config: the embedded task's test split, or a downstream task's
    test_file (or path), as dicts with "prefix", "target" and "answers"."""
    if cfg.task not in downstream.LOADERS:
        return [{"prefix": p, "target": t, "answers": [t]}
                for p, t in make_examples(cfg.task, cfg.n_test, "test", cfg.data_seed)]
    path = path or cfg.test_file
    if not os.path.isfile(path):
        raise ConfigError(f"test_file not found: {path!r}")
    return downstream.load(cfg.task, path)


def score(model, vocab, cfg, examples, m_inf, filler="pause", placement="append", progress=False, mistakes=0):
    """One model on one test set at M_inf pauses (or '.' fillers), placed as in finetuning: exact match
    on the embedded task, the task's own metric on a downstream one. Returns {"score", "metric", ...}."""
    if cfg.task in downstream.LOADERS:
        return downstream.evaluate(model, vocab, cfg.task, examples, m_inf, cfg.max_answer_tokens, progress,
                                   filler, placement)
    pairs = [(e["prefix"], e["target"]) for e in examples]
    return {"score": accuracy(model, vocab, pairs, m_inf, progress, filler, placement, mistakes, cfg.repeat,
                              cfg.task if cfg.cot else ""), "metric": "exact match"}


def score_one(ecfg):
    """Score one checkpoint with the pause placement it was finetuned with (its config says), at
    M_inf = n_inf (default: its own n_pause), with pauses or (--filler=dot) '.' tokens in the slots."""
    model, vocab, ckpt = load_checkpoint(ecfg.ckpt, pick_device(ecfg.device))
    model.eval()
    cfg = Config(**{k: v for k, v in ckpt["config"].items() if k in {f.name for f in dataclasses.fields(Config)}})
    m_inf = cfg.n_pause if ecfg.n_inf < 0 else ecfg.n_inf
    how = (f"M_inf={m_inf}" + (f" {cfg.placement}ed" if cfg.placement != "append" else "")
           + (" dots" if ecfg.filler == "dot" else ""))
    examples = test_examples(cfg, ecfg.test_file)
    res = score(model, vocab, cfg, examples, m_inf, ecfg.filler, cfg.placement, ecfg.progress, ecfg.mistakes)
    also = "".join(f", {k} {100 * v:.1f}%" for k, v in res.get("also", {}).items())
    source = f" of {ecfg.test_file or cfg.test_file}" if cfg.task in downstream.LOADERS else " (test split)"
    print(f"{ecfg.ckpt}: {cfg.task}, {how}, {res['metric']} {100 * res['score']:.1f}%{also} on "
          f"{len(examples)} examples{source}")
    return res["score"]

# --- the rows of the report (report.py lays them out) ------------------------------------------------


def summarize(per_seed, plateaus, ecfg, pairs):
    """Rows of the result table: mean, std and 95% interval over seeds; the delta vs the baseline is
    paired by seed (same seed, same data order); what each answer costs (report.costs) over the baseline's."""
    base_key = ("StdPT_StdFT", 0, "pause")
    base = [s[base_key] for s in per_seed] if base_key in per_seed[0] else None
    cost = lambda name, m: costs(phase_config(ecfg, "pretrain", ecfg.seed, **dict(VARIANTS[name].model)),  # noqa: E731
                                 finetune_config(ecfg, ecfg.seed, name, "scratch"), m, pairs)
    base_cost, rows = cost("StdPT_StdFT", 0), []
    for name, m_inf, filler in per_seed[0]:
        v, c = VARIANTS[name], cost(name, m_inf)
        rows.append({"variant": name, "M_ft": ecfg.n_pause if v.pause_ft else 0, "M_inf": m_inf, "filler": filler,
                     "placement": ecfg.placement if v.pause_ft else "append", "hints": v.hints,
                     **seed_stats([s[(name, m_inf, filler)] for s in per_seed], base),
                     "plateau": [p[name][0] for p in plateaus], "val_change": [p[name][1] for p in plateaus],
                     "positions": c["positions"], "sequential": c["sequential"],
                     "flops_ratio": c["flops"] / base_cost["flops"], "train_ratio": c["train_flops"] / base_cost["train_flops"]})
    return rows


def references(ecfg, seeds, pt, pairs, per_seed):
    """The rows every accuracy is read against, for an embedded task: always answering the test set's most
    common answer, and the pretrained model (no pauses, not finetuned) answering the test prompts."""
    ft = phase_config(ecfg, "finetune", ecfg.seed)
    if ft.task in downstream.LOADERS:
        return []
    base = [s[("StdPT_StdFT", 0, "pause")] for s in per_seed] if ("StdPT_StdFT", 0, "pause") in per_seed[0] else None
    common = Counter(t for _, t in pairs).most_common(1)[0][1] / len(pairs)
    rows = [("majority answer", [common] * len(seeds))]
    if all((s, False, ()) in pt for s in seeds):
        pretrained = []
        for s in seeds:
            model, vocab, _ = load_checkpoint(pt[(s, False, ())], pick_device(ecfg.device))
            pretrained.append(accuracy(model.eval(), vocab, pairs, 0))
        rows.append(("StdPT, not finetuned", pretrained))
    return [{"variant": name, "reference": True, "M_ft": 0, "M_inf": 0, "filler": "pause", "placement": "append",
             "hints": False, **seed_stats(acc, base), **({"std": None} if name == "majority answer" else {}),
             "plateau": [None], "val_change": [None], "positions": None, "sequential": None, "flops_ratio": None,
             "train_ratio": None} for name, acc in rows]


def main(argv):
    def body():
        ecfg = parse_config(argv, EvalConfig)
        score_one(ecfg) if ecfg.ckpt else compare(ecfg)
    return run_cli("eval.py", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
