"""
The report of a comparison: its tables in markdown and its plots. eval.py computes the rows (mean, spread
and intervals over seeds, paired deltas); this file lays them out, counts what each answer costs (costs:
FLOPs from the model's shape) and reads the learning curves train.py records in each checkpoint.
"""
import json
import os
import sys
from collections import Counter

import numpy as np

from common import ConfigError, DataError, commit, interval95, parse_config, run_cli, seed_stats, trained_by, write_atomic
from data import Vocab, get_encoding, task_vocab
from model import GPTConfig, forward_flops
from tasks import TASKS, make_examples
from train import Config


def report_header(task, n_test, seeds, made, threads):
    """The paragraph above a comparison's tables: what each column means, and what trained the runs."""
    trained = [m for m in made if not m["reused"]]
    return (f"task {task}, {n_test} test examples, {len(seeds)} seed(s) {seeds}; accuracy = exact match, mean" + (
        " ± std over seeds, 95% t-interval (as computed: with few seeds it can reach past 0 or 100)" if len(seeds) > 1
        else " (one seed: no spread; run --seeds=N)") + "; positions = prompt (twice, repeated) + fillers + emitted "
        "tokens per test example; inference FLOPs per test example (model.forward_flops: the model's shape and loops "
        "over those positions, attention included) and finetuning FLOPs (3x a forward over every position of every "
        "example, all steps) over the baseline's; sequential = forward passes one after another per answer (1 + "
        "emitted steps); plateau = seeds whose validation exact match stayed within 2 points over the last "
        f"quarter of finetuning; {len(trained)} of {len(made)} training runs ran in this command, with {threads} "
        "thread(s) each, the others were reused. " + trained_by(made))


def table_markdown(rows):
    """The comparison at the trained number of pauses (M_inf = M_ft, and the '.' control), then the
    M_inf sweep: other numbers of pauses than a model was finetuned with."""
    main = [r for r in rows if r["M_inf"] == r["M_ft"] or r["filler"] == "dot" and not r["M_ft"] or r.get("reference")]
    sweep = [r for r in rows if r not in main]
    text = table_rows(main)
    if sweep:
        text += "\n\nOther numbers of pauses at inference than finetuning used (the M_inf sweep):\n\n" + table_rows(sweep)
    return text


def table_rows(rows):
    lines = ["| variant | M_ft | M_inf | accuracy (%) | 95% interval | delta vs baseline (pp), 95% interval "
             "| positions | inference FLOPs | sequential passes | finetuning FLOPs | plateau |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{100 * r['accuracy']:.1f}" + (f" ± {100 * r['std']:.1f}" if r["std"] is not None else "")
        ci = f"[{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]" if r["std"] is not None else ""
        delta = "" if r["delta"] is None else f"{100 * r['delta']:+.1f}"
        if r["delta_ci95"] is not None and r["std"] is not None:
            delta += f" [{100 * r['delta_ci95'][0]:+.1f}, {100 * r['delta_ci95'][1]:+.1f}]"
        label = r["variant"] + (" (prepend)" if r["placement"] == "prepend" else "") + (" (reference)" if r.get("reference") else "")
        m_inf = f"{r['M_inf']}" + (" dots" if r["filler"] == "dot" else "")
        plateau = "n/a" if None in r["plateau"] else f"{sum(r['plateau'])}/{len(r['plateau'])}"
        cost = "| | | | |" if r.get("reference") else (
            f"| {r['positions']:.1f} | {r['flops_ratio']:.2f}x | {r.get('sequential', 1):.0f} | {r['train_ratio']:.2f}x |")
        lines.append(f"| {label} | {r['M_ft']} | {m_inf} | {acc} | {ci} | {delta} {cost} {plateau} |")
    return "\n".join(lines)


def _pyplot():
    """matplotlib's pyplot for files (no display), or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def _save(plt, fig, ax, path, xlabel, ylabel, legend_size=None):
    """Label, grid and write a figure to path; returns path."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_flops(rows, path):
    """Accuracy against inference FLOPs per answer (over the baseline's), one point per variant at the
    pauses it was finetuned with, error bars = std over seeds; a hollow marker where an answer takes
    several sequential forward passes (chain of thought), dashed lines for the references."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in [r for r in rows if r["M_inf"] == r["M_ft"] and not r.get("reference")]:
        serial = r.get("sequential", 1) > 1.5
        ax.errorbar(r["flops_ratio"], 100 * r["accuracy"], yerr=100 * (r["std"] or 0), capsize=3, marker="o",
                    mfc="none" if serial else None, label=r["variant"] + (f" ({r['sequential']:.0f} sequential passes)" if serial else ""))
    refs = {}  # one dashed line per value: references that score the same share a line and a label
    for r in [r for r in rows if r.get("reference")]:
        refs.setdefault(round(100 * r["accuracy"], 1), []).append(r["variant"])
    for acc, names in refs.items():
        ax.axhline(acc, ls="--", lw=1, color="gray")
        ax.annotate(" = ".join(names), (ax.get_xlim()[0], acc), fontsize=7, color="gray", va="bottom")
    return _save(plt, fig, ax, path, "inference FLOPs per answer (x the baseline's)", "test exact match (%)", 7)


def plot(rows, path):
    """Accuracy vs M_inf per variant, error bars = std over seeds; None when matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["variant"] for r in rows if not r.get("reference")):  # in the table's order
        pts = sorted((r["M_inf"], r["accuracy"], r["std"] or 0) for r in rows  # not the untrained '.' control
                     if r["variant"] == name and (r["filler"] == "pause" or r["M_ft"]))
        if pts:
            m, a, e = zip(*pts)
            ax.errorbar(m, [100 * x for x in a], yerr=[100 * x for x in e], marker="o", capsize=3, label=name)
    return _save(plt, fig, ax, path, "pauses at inference (M_inf)", "exact match (%)")


def curve_markdown(curves):
    """The learning curves: per variant the final validation exact match and the first evaluation step at
    which each seed reached each level, with the baseline's steps over these (paired by seed); the mean
    curves (as finetuned, and at M_inf = 0 for pause variants); the paired difference from the baseline."""
    levels = list(curves[0]["steps_to"])
    fmt = lambda s: "-" if s is None else f"{s:,}"  # noqa: E731
    lines = ["\n\nValidation exact match during finetuning (the learning curve; `results*_curve.png` plots it): "
             "the final value (mean ± std over seeds) and, per seed, the first evaluation step at which it reached "
             "each level (`-`: not within the run); `baseline ÷ this`: the baseline's steps to that level over this "
             "variant's, per seed (`>`: the baseline never got there, so at least its run's last step over this)\n",
             "| variant | final val exact match (%) | " + " | ".join(
                 f"steps to {100 * float(lv):.0f}% | baseline ÷ this" for lv in levels) + " |",
             "|---|---|" + "---|---|" * len(levels)]
    for c in curves:
        cells = [f"{100 * c['final_mean']:.1f}" + (f" ± {100 * c['final_std']:.1f}" if c["seeds"] > 1 else "")]
        for lv in levels:
            cells.append(" · ".join(fmt(s) for s in c["steps_to"][lv]))
            ratios = []
            for mine, theirs in zip(c["steps_to"][lv], c.get("baseline_steps_to", {}).get(lv, [])):
                if mine is None or mine == 0:
                    ratios.append("-")
                elif theirs is None:  # the baseline's run, not this one's, bounds its steps from below
                    bound = c["baseline_last_step"]
                    ratios.append(f"> {bound / mine:.1f}" if bound > mine else "-")
                else:
                    ratios.append(f"{theirs / mine:.1f}")
            cells.append(" · ".join(ratios))
        lines.append(f"| {c['variant']} | " + " | ".join(cells) + " |")
    # the mean curves side by side, at most about 16 of their evaluation steps
    steps = sorted({s for c in curves for s in c["step"]})
    keep = sorted({steps[round(i * (len(steps) - 1) / 15)] for i in range(16)}) if len(steps) > 16 else steps
    paused = [c for c in curves if c["pause_ft"]]
    lines += ["\nMean validation exact match (%) at each evaluation" + (
              " (`@0`: the same model answering with no pauses)" if paused else "") + "\n",
              "| step | " + " | ".join(c["variant"] for c in curves) + "".join(f" | {c['variant']} @0" for c in paused) + " |",
              "|---|" + "---|" * (len(curves) + len(paused))]
    for s in keep:
        vals = [c["mean"][c["step"].index(s)] if s in c["step"] else None for c in curves]
        vals += [c["no_pause_mean"][c["step"].index(s)] if s in c["step"] else None for c in paused]
        lines.append(f"| {s:,} | " + " | ".join("" if v is None else f"{100 * v:.1f}" for v in vals) + " |")
    versus = [c for c in curves if "vs_baseline" in c]
    if versus:
        lines += ["\nDifference from the baseline's validation exact match at the same step (points, mean over "
                  "seeds, paired by seed, 95% t-interval)\n",
                  "| step | " + " | ".join(c["variant"] for c in versus) + " |", "|---|" + "---|" * len(versus)]
        for s in [s for s in keep if s in versus[0]["vs_baseline"]["step"]]:
            cells = []
            for c in versus:
                v = c["vs_baseline"]
                if s not in v["step"]:
                    cells.append("")
                    continue
                i = v["step"].index(s)
                cells.append(f"{100 * v['delta'][i]:+.1f} [{100 * v['ci95'][i][0]:+.1f}, {100 * v['ci95'][i][1]:+.1f}]")
            lines.append(f"| {s:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(curves, path):
    """Validation exact match against finetuning step per variant: the mean over seeds, shaded from the
    lowest seed to the highest; dotted, a pause variant's model answering with no pauses. None when
    matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in curves:
        line, = ax.plot(c["step"], [100 * x for x in c["mean"]], label=f"{c['variant']} ({c['seeds']} seeds)")
        ax.fill_between(c["step"], [100 * x for x in c["min"]], [100 * x for x in c["max"]], alpha=0.15,
                        color=line.get_color())
        if c["pause_ft"]:
            ax.plot(c["step"], [100 * x for x in c["no_pause_mean"]], ":", color=line.get_color(),
                    label=f"{c['variant']}, answering with no pauses")
    return _save(plt, fig, ax, path, "finetuning step", "validation exact match (%)", 8)


def costs(pt, ft, m_inf, pairs):
    """What the answers of a finetuning run of config ft (from a pretrained model of config pt) cost, as
    means over the test pairs: positions (prompt, twice when repeated, + fillers + chain-of-thought steps
    + answer and end token), inference FLOPs (model.forward_flops of its shape over the positions it reads, the head at each token it emits) and sequential forward passes (1,
    + one per step it emits before the answer); and the FLOPs of its whole finetuning run (3x a forward
    over every position of every example, x batch x steps; 200 training examples, padding not counted)."""
    vocab = Vocab(None) if ft.vocab == "full" or ft.task not in TASKS else task_vocab(ft.task)
    shape = GPTConfig(n_layer=pt.n_layer, n_head=pt.n_head, n_embd=pt.n_embd, vocab_size=vocab.size, n_loop=pt.n_loop)

    def lengths(prefix, target, fill):  # (positions of the whole sequence, tokens emitted, steps emitted)
        steps = len(TASKS[ft.task].hints(prefix)) if ft.cot else 0
        emitted = steps + len(enc.encode_ordinary(target)) + 1
        return len(enc.encode_ordinary(prefix)) * (1 + ft.repeat) + fill + emitted, emitted, steps
    enc = get_encoding()
    test = [lengths(p, t, m_inf) for p, t in pairs]
    train = pairs if ft.task not in TASKS else make_examples(ft.task, 200, "train", ft.data_seed)
    per_example = np.mean([3 * forward_flops(shape, n - 1, n - 1) for n, _, _ in (lengths(p, t, ft.n_pause) for p, t in train)])
    return {"positions": float(np.mean([n for n, _, _ in test])), "sequential": 1 + float(np.mean([s for *_, s in test])),
            "flops": float(np.mean([forward_flops(shape, n - 1, e) for n, e, _ in test])),
            "train_flops": float(per_example * ft.batch_size * ft.max_iters)}



# --- the learning curve of a finetuning run -------------------------------------------------------------


def learning_curve(ckpt):
    """A finetuning run's validation exact match at each of its evaluations, as train.py recorded it:
    {"step": [...], "exact_match": [...] as finetuned, "no_pause": [...] at M_inf = 0}; {} if none."""
    points = [h for h in ckpt.get("val_history", []) if isinstance(h, dict) and "exact_match" in h]
    if not points:
        return {}
    return {"step": [h["step"] for h in points], "exact_match": [h["exact_match"] for h in points],
            "no_pause": [h["exact_match_no_pause"] for h in points]}


def plateaued(curve, at):
    """The stated convergence criterion, read from the learning curve: a finetuning run has reached its
    plateau when its validation exact match (scored as it was finetuned: its pauses, their placement)
    stayed within 2 points over the last quarter of its steps (every evaluation from step `at`, 3/4 of
    the run, to the last: a curve that swings and comes back has not settled). Returns (bool, change from
    step `at` to the last in points); (None, nan) without a curve."""
    if not curve or at not in curve["step"]:
        return None, float("nan")
    last = curve["exact_match"][curve["step"].index(at):]
    return bool(100 * (max(last) - min(last)) < 2.0), float(100 * (last[-1] - last[0]))


def steps_to(curve, level):
    """The first step at which the curve's validation exact match reached level (None: never)."""
    return next((s for s, a in zip(curve["step"], curve["exact_match"]) if a >= level), None)


LEVELS = (0.8, 0.9, 0.95)  # validation exact match levels whose first step the curve table reports


def summarize_curve(name, per_seed, base=None, pause_ft=False):
    """One variant's learning curves over seeds: the mean, min and max at each step, as finetuned and at
    M_inf = 0, each seed's final value and the first step it reached each of LEVELS (None: not within the
    run). With base (the baseline's curves, same seeds): the paired difference from it, with its 95%
    interval, at each step both were evaluated at. pause_ft: the variant answers after pauses (its curve at
    M_inf = 0 is shown too). {} without curves."""
    if not all(per_seed):
        return {}
    em = np.array([c["exact_match"] for c in per_seed])
    final = seed_stats(em[:, -1])  # the final value's mean and std over seeds, as the test table's
    out = {"variant": name, "pause_ft": pause_ft, "step": per_seed[0]["step"], "seeds": len(per_seed),
           "mean": em.mean(0).tolist(), "min": em.min(0).tolist(), "max": em.max(0).tolist(),
           "no_pause_mean": np.mean([c["no_pause"] for c in per_seed], 0).tolist(),
           "final": em[:, -1].tolist(), "final_mean": final["accuracy"], "final_std": final["std"] or 0.0,
           "steps_to": {str(lv): [steps_to(c, lv) for c in per_seed] for lv in LEVELS}}
    if base and all(base) and name != "StdPT_StdFT":
        common = [s for s in out["step"] if s in base[0]["step"]]
        d = [[c["exact_match"][c["step"].index(s)] - b["exact_match"][b["step"].index(s)] for c, b in zip(per_seed, base)]
             for s in common]
        out["vs_baseline"] = {"step": common, "delta": [float(np.mean(x)) for x in d], "ci95": [interval95(x) for x in d]}
        out["baseline_steps_to"] = {str(lv): [steps_to(b, lv) for b in base] for lv in LEVELS}
        out["baseline_last_step"] = base[0]["step"][-1]  # the bound where the baseline never got there
    return out


# --- references and clipped intervals for committed result files (python report.py --annotate) ---------


ANNOTATION = "<!-- python report.py --annotate: generated, rewritten on each run -->"
ANNOTATION_END = "<!-- end of python report.py --annotate -->"


def test_sets(result):
    """The (task, n_test, data_seed) of each test set a result file's accuracies were scored on, drawn as
    eval.py's test_examples and study.py draw them: the task and test-set size the file records, the data
    seed of its finetuning config (eval.py; configs never set it, so train.Config's default) or
    train.Config's default (study.py)."""
    if "cells" in result:  # study.py: one row per task x size x arm x M; every cell scored on n_test prompts
        n = result["config"]["n_test"]
        return [(t, n, Config().data_seed) for t in dict.fromkeys(c["task"] for c in result["cells"])]
    path = (result.get("eval_config") or {}).get("finetune_config", "configs/finetune.py")
    path = path if os.path.isabs(path) else os.path.join(os.path.dirname(os.path.abspath(__file__)), path)
    seed = result.get("data_seed", parse_config([path], Config).data_seed if os.path.exists(path) else Config().data_seed)
    return [(result["task"], result["n_test"], seed)]


def majority(task, n_test, data_seed):
    """(answer, count, share) of always answering the most common answer of the test set, as eval.references
    computes its "majority answer" row."""
    pairs = make_examples(task, n_test, "test", data_seed)
    answer, count = Counter(t for _, t in pairs).most_common(1)[0]
    return answer, count, count / len(pairs)


def clipped_rows(result):
    """The rows whose 95% interval (or paired delta's) the code that made the file clipped at 0 or 100%
    (at -100 or +100 points for a delta): [(label, "interval" or "delta", stored, as computed)], the
    computed one by common.interval95 from the row's per_seed (minus the baseline's, paired, for a delta)."""
    rows = result.get("rows") or result.get("cells") or []
    base = next((r for r in rows if r.get("variant") == "StdPT_StdFT" and r.get("M_inf") == 0
                 and r.get("filler", "pause") == "pause" and not r.get("reference")), None)
    out = []
    for r in rows:
        if r.get("reference") or len(r.get("per_seed") or []) < 2:
            continue
        x = np.asarray(r["per_seed"], dtype=float)
        checks = [("interval", r.get("ci95"), interval95(x), (0.0, 1.0))]
        if base is not None and r.get("delta_ci95") is not None and len(base["per_seed"]) == len(x):
            checks.append(("delta", r["delta_ci95"], interval95(x - np.asarray(base["per_seed"])), (-1.0, 1.0)))
        for kind, stored, computed, (lo, hi) in checks:
            if stored is None:
                continue
            low = stored[0] == lo and computed[0] < lo - 5e-4  # clipped, and by more than the rounding
            high = stored[1] == hi and computed[1] > hi + 5e-4
            if low or high:
                out.append((row_label(r), kind, tuple(stored), computed))
    return out


def row_label(r):
    """A row as its table names it: variant (prepend), M_inf (dots) for eval.py; the cell for study.py."""
    if "variant" in r:
        return (r["variant"] + (" (prepend)" if r.get("placement") == "prepend" else "")
                + f" at M_inf = {r['M_inf']}" + (" dots" if r.get("filler") == "dot" else ""))
    return (f"{r['task']} {r['n_layer']}" + (f"x{r['n_embd']}" if "n_embd" in r else " layers")
            + (f" {r['arm']}" if "arm" in r else "")
            + f" M = {r['M']}" + (f" M_inf = {r['M_inf']}" if "M_inf" in r else ""))


def annotation(result, code):
    """The generated lines for a result file: the majority reference of each of its test sets, and the
    rows whose intervals were clipped with the intervals as computed."""
    refs = []
    for task, n, seed in test_sets(result):
        answer, count, share = majority(task, n, seed)
        ref = f"always answering {answer!r}, the most common answer of the {n:,} {task} test prompts, scores {100 * share:.1f}% ({count:,} of {n:,})"
        if "cells" in result:  # study.py's own majority: the training set's most common answer, on these prompts
            train = make_examples(task, result["config"]["n_train"], "train", seed)
            top = Counter(t for _, t in train).most_common(1)[0][0]  # study.majority's, ties broken by first seen
            hit = sum(t == top for _, t in make_examples(task, n, "test", seed)) / n
            if top != answer:
                ref += f" (study.py's majority, the training set's most common answer {top!r}, scores {100 * hit:.1f}%)"
        refs.append(ref)
    lines = [ANNOTATION, "", f"Reference (`python report.py --annotate`, at {code}): " + "; ".join(refs) + "."]
    clipped = clipped_rows(result)
    if clipped:
        pct = lambda iv: f"[{100 * iv[0]:.1f}, {100 * iv[1]:.1f}]"  # noqa: E731
        lines += ["", "Intervals clipped at 0 or 100 by the code that made this file; as computed from per_seed "
                  "(common.interval95, paired by seed for a delta): "
                  + "; ".join(f"{label}, {'delta ' if kind == 'delta' else ''}{pct(s)} -> {pct(c)}"
                              for label, kind, s, c in clipped) + "."]
    return "\n".join(lines + ["", ANNOTATION_END])


def annotate(path, code=None):
    """Write the annotation of result file path (.json) into its .md, below the last accuracy table
    (replacing the annotation an earlier run wrote there, so running twice writes it once). Returns the
    annotation; None for a file with no accuracy table (a probe, a benchmark)."""
    result = json.load(open(path))
    if not (result.get("rows") or result.get("cells")):
        return None
    note = annotation(result, code or commit())
    md = os.path.splitext(path)[0] + ".md"
    if not os.path.isfile(md):
        raise DataError(f"{md}: missing (the .md beside {path})")
    lines = open(md).read().rstrip("\n").split("\n")
    if ANNOTATION in lines:  # take out the earlier one, and the blank line before it
        start, end = lines.index(ANNOTATION), lines.index(ANNOTATION_END)
        lines = lines[:start - 1 if start and not lines[start - 1] else start] + lines[end + 1:]
    heads = [i for i, line in enumerate(lines) if line.startswith("|") and "accuracy" in line]
    if not heads:
        raise DataError(f"{md}: no accuracy table to annotate")
    end = heads[-1]
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[end:end] = [""] + note.split("\n")
    write_atomic(md, "\n".join(lines) + "\n")
    return note


def code_commit():
    """common.commit(), "+dirty" only when a tracked file other than a result's .md differs from it: the
    .md files this command writes are not the code that computes their lines (so a second run stamps
    what the first did)."""
    import subprocess
    code = commit()
    if code.endswith("+dirty"):
        changed = subprocess.run(["git", "diff", "HEAD", "--name-only"], cwd=os.path.dirname(os.path.abspath(__file__)),
                                 capture_output=True, text=True).stdout.split()
        if changed and all(f.startswith("results/") and f.endswith(".md") for f in changed):
            code = code[:-len("+dirty")]
    return code


def main(argv):
    """python report.py --annotate results/x.json ...: each file's majority reference and clipped
    intervals, written under the accuracy tables of its .md and printed."""
    def body():
        if len(argv) < 2 or argv[0] != "--annotate":
            raise ConfigError("usage: python report.py --annotate RESULT.json [RESULT.json ...]")
        bad = [p for p in argv[1:] if not (p.endswith(".json") and os.path.isfile(p))]
        if bad:
            raise ConfigError(f"not a result file: {bad[0]!r}")
        code = code_commit()  # the code as it is before the first file is written
        for path in argv[1:]:
            note = annotate(path, code)
            print(f"{path}: " + ("no accuracy table, left as it is" if note is None else
                                 "\n".join(line for line in note.split("\n") if line and not line.startswith("<!--"))))
    return run_cli("report.py", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
