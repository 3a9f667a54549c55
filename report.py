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
