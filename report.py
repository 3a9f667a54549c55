"""
The report of a comparison: its table in markdown and its plot. eval.py computes the rows (mean, spread
and intervals over seeds, paired deltas, positions and compute); this file only lays them out.
"""


def table_markdown(rows):
    """The comparison at the trained number of pauses (M_inf = M_ft, and the '.' control), then the
    M_inf sweep: other numbers of pauses than a model was finetuned with."""
    main = [r for r in rows if r["M_inf"] == r["M_ft"] or r["filler"] == "dot"]
    sweep = [r for r in rows if r not in main]
    text = table_rows(main)
    if sweep:
        text += "\n\nOther numbers of pauses at inference than finetuning used (the M_inf sweep):\n\n" + table_rows(sweep)
    return text


def table_rows(rows):
    lines = ["| variant | M_ft | M_inf | accuracy (%) | 95% interval | delta vs baseline (pp), 95% interval "
             "| positions | inference compute | finetuning compute | plateau |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{100 * r['accuracy']:.1f}" + (f" ± {100 * r['std']:.1f}" if r["std"] is not None else "")
        ci = f"[{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]"
        delta = "" if r["delta"] is None else f"{100 * r['delta']:+.1f}"
        if r["delta_ci95"] is not None and r["std"] is not None:
            delta += f" [{100 * r['delta_ci95'][0]:+.1f}, {100 * r['delta_ci95'][1]:+.1f}]"
        label = r["variant"] + (" (prepend)" if r["placement"] == "prepend" else "")
        m_inf = f"{r['M_inf']}" + (" dots" if r["filler"] == "dot" else "")
        plateau = "n/a" if None in r["plateau"] else f"{sum(r['plateau'])}/{len(r['plateau'])}"
        lines.append(f"| {label} | {r['M_ft']} | {m_inf} | {acc} | {ci} | {delta} | {r['positions']:.1f} "
                     f"| {r['flops_ratio']:.2f}x | {r['train_ratio']:.2f}x | {plateau} |")
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
    for name in dict.fromkeys(r["variant"] for r in rows):  # in the table's order
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
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in curves:
        line, = ax.plot(c["step"], [100 * x for x in c["mean"]], label=f"{c['variant']} ({c['seeds']} seeds)")
        ax.fill_between(c["step"], [100 * x for x in c["min"]], [100 * x for x in c["max"]], alpha=0.15,
                        color=line.get_color())
        if c["pause_ft"]:
            ax.plot(c["step"], [100 * x for x in c["no_pause_mean"]], ":", color=line.get_color(),
                    label=f"{c['variant']}, answering with no pauses")
    ax.set_xlabel("finetuning step")
    ax.set_ylabel("validation exact match (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
