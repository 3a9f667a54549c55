"""
What a finetuned model of an embedded task holds at each position, and what its answer position reads.

  python probe.py --ckpt=out/default/seed1337/ft_StdPT_PauseFT_M10-*/ckpt.pt
  python probe.py --ckpt='out/default/seed1337/ft_*/ckpt.pt' --out=results/probe   # several models, one report

For each checkpoint (prompts laid out as it was finetuned: its pauses, their placement):
- linear probes: at every layer (0 = the embeddings, L = the last block's output) and every position
  (each prompt token, each pause), a linear read-out of each quantity of the task (QUANTITIES below:
  for keyparity the key, the number of digits above it, the answer bit), fitted on train
  prompts and scored on validation prompts; next to it the same probe fitted on shuffled labels, and
  the share of the most common value (what a probe that has learned nothing scores);
- the attention of the answer position (the last position before the answer: the last pause, or `=`)
  over every position, per layer and head, averaged over validation prompts;
- the read-out of every position: the final LayerNorm and the head applied there, as if the model
  answered at that position; how often its top token is the answer.
A markdown report and JSON (and a plot when matplotlib is installed) go to --out.
"""
import dataclasses
import glob
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from common import ConfigError, commit, parse_config, run_cli, write_results
from pause import format_example
from tasks import make_examples
from train import Config, load_checkpoint


def keyparity_quantities(prefix):
    """"x_1 .. x_n | k =" -> the key, the number of digits above it, the answer bit."""
    words = prefix.split()
    k, xs = int(words[-2]), [int(w) for w in words[:-3]]
    above = sum(x > k for x in xs)
    return {"key": k, "digits above k": above, "answer bit": above % 2}


def parity_quantities(prefix):
    """"b_1 .. b_n =" -> the number of ones, the answer bit."""
    ones = sum(int(w) for w in prefix.split()[:-1])
    return {"ones": ones, "answer bit": ones % 2}


# what the probes look for, per task (prefix -> {name: integer}); a task added here can be probed
QUANTITIES = {"keyparity": keyparity_quantities, "keyparity6": keyparity_quantities,
              "keyparity12": keyparity_quantities, "parity": parity_quantities}


@dataclass
class ProbeConfig:
    ckpt: str = ""          # a finetuned checkpoint of an embedded task; a glob or commas for several
    n_train: int = 4000     # prompts the probes are fitted on (the train split)
    n_val: int = 1000       # prompts they are scored on, and the attention and read-outs averaged over
    l2: float = 1e-3        # the probes' L2 penalty (on standardized features)
    seed: int = 0           # the shuffle of the control labels
    out: str = ""           # write <out>.md/.json/.png; empty: print only


# --- looking inside ---------------------------------------------------------------------------------


@torch.no_grad()
def trace(model, idx):
    """Run idx (B, T) through the model, keeping what the report needs: the residual stream before the
    first block and after each one (L + 1, B, T, C), each layer's attention weights (L, B, nh, T, T)
    recomputed from its queries and keys, and the logits at every position (B, T, V)."""
    B, T = idx.shape
    tr = model.transformer
    x = tr.wte(idx) + tr.wpe(torch.arange(T, device=idx.device))
    states, attns = [x], []
    for block in tr.h:
        attns.append(attention_weights(block.attn, block.ln_1(x)))
        x = block(x)
        states.append(x)
    logits = model.lm_head(tr.ln_f(x))
    return torch.stack(states), torch.stack(attns), logits


@torch.no_grad()
def look(model, idx, budget=2**26):
    """What the report keeps of the prompts idx (N, T), computed batch by batch: the residual stream
    (L + 1, N, T, C) for the probes, the answer position's (the last) attention over every position
    (L, N, nh, T), and the top token of every position's read-out (N, T). No (N, T, V) logits are kept:
    at a GPT-2 vocab and the defaults they would be about 17 GB; a batch's logits hold at most budget
    floats (2**26: 256 MB), so a full vocab runs tens of prompts at a time and the compact one 500."""
    B = max(1, min(500, budget // (idx.size(1) * model.config.vocab_size)))
    states, attention, top = [], [], []
    for chunk in idx.split(B):
        s, a, logits = trace(model, chunk)
        states.append(s)
        attention.append(a[:, :, :, -1, :])  # (L, B, nh, T): the last position's row
        top.append(logits.argmax(-1))  # (B, T)
    return torch.cat(states, 1), torch.cat(attention, 1), torch.cat(top)


def attention_weights(attn, x):
    """softmax(q k^T / sqrt(hs)) under the causal mask, for the (B, T, C) input of one attention layer."""
    B, T, C = x.shape
    q, k, _ = attn.c_attn(x).split(C, dim=2)
    q, k = (t.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2) for t in (q, k))
    scores = q @ k.transpose(-2, -1) / (C // attn.n_head) ** 0.5
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    return F.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


def fit_probe(x, labels, l2=1e-3):
    """A linear classifier: multinomial logistic regression on standardized x (n, d), fitted to the end by
    L-BFGS in float64 (deterministic), L2 penalty l2. (Least squares on one-hot labels would be quicker,
    but cannot make a middle value of an ordered count win anywhere along one direction.)
    Returns predict(x_new) -> predicted labels."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    mean, std = x.mean(0), x.std(0) + 1e-8
    classes, y = np.unique(labels, return_inverse=True)
    z, y = (x - mean) / std, torch.as_tensor(y)
    w = torch.zeros(z.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, tolerance_grad=1e-6, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        out = F.cross_entropy(z @ w + b, y) + l2 * (w ** 2).sum()
        out.backward()
        return out
    opt.step(loss)

    def predict(x_new):
        z_new = (torch.as_tensor(np.asarray(x_new), dtype=torch.float64) - mean) / std
        return classes[(z_new @ w + b).argmax(1).numpy()]
    return predict


def probe_accuracy(x_train, y_train, x_val, y_val, l2=1e-3, shuffle_rng=None):
    """Validation accuracy of a probe fitted on (x_train, y_train); with shuffle_rng, on shuffled labels."""
    if shuffle_rng is not None:
        y_train = shuffle_rng.permutation(y_train)
    return float(np.mean(fit_probe(x_train, y_train, l2)(x_val) == y_val))

# --- one checkpoint ---------------------------------------------------------------------------------


def layout(cfg, vocab, prefixes):
    """The prompts as the model was finetuned on them (ids (B, T)) and a name for each position."""
    rows = [format_example(vocab.encode(p), np.zeros(0, dtype=np.int64), cfg.n_pause, vocab.pause_id, vocab.eot_id,
                           cfg.placement)[0] for p in prefixes]
    if len({len(r) for r in rows}) != 1:
        raise ConfigError(f"task {cfg.task!r}: prompts of different lengths cannot be probed position by position")
    words = [vocab.decode([int(t)]).strip() for t in vocab.encode(prefixes[0])]
    prompt = ["sep" if w == "|" else "=" if w == "=" else f"x{i + 1}" for i, w in enumerate(words)]  # "|" would split a table cell
    if cfg.task.startswith("keyparity"):  # the key: the word before "="
        prompt[len(prompt) - 2] = "k"
    pauses = [f"p{j + 1}" for j in range(cfg.n_pause)]
    names = prompt + pauses if cfg.placement == "append" else pauses + prompt
    return torch.tensor(np.stack(rows)), names


def examine(path, pcfg):
    """Probes, attention and read-outs of one checkpoint: a dict the report lays out."""
    model, vocab, ckpt = load_checkpoint(path)
    model.eval()
    cfg = Config(**{k: v for k, v in ckpt["config"].items() if k in {f.name for f in dataclasses.fields(Config)}})
    quantities = QUANTITIES.get(cfg.task)
    if cfg.phase != "finetune" or quantities is None:
        raise ConfigError(f"{path}: probes need a finetuned model of an embedded task with quantities to look for "
                          f"(probe.QUANTITIES: {', '.join(QUANTITIES)})")
    train = make_examples(cfg.task, pcfg.n_train, "train", cfg.data_seed + 2)  # not the finetuning draw
    val = make_examples(cfg.task, pcfg.n_val, "val", cfg.data_seed)
    sets = {}
    for split, pairs in (("train", train), ("val", val)):
        idx, names = layout(cfg, vocab, [p for p, _ in pairs])
        states, attns, top = look(model, idx)  # top (N, T): the token each position puts first
        labels = {q: np.array([quantities(p)[q] for p, _ in pairs]) for q in quantities(pairs[0][0])}
        sets[split] = (states.numpy(), attns, top, labels)
    (s_tr, _, _, lab_tr), (s_va, attns, top, lab_va) = sets["train"], sets["val"]
    rng = np.random.default_rng(pcfg.seed)
    n_layers, T = s_tr.shape[0], s_tr.shape[2]
    probes = {}
    for q in lab_tr:
        acc = [[probe_accuracy(s_tr[l, :, t], lab_tr[q], s_va[l, :, t], lab_va[q], pcfg.l2)
                for t in range(T)] for l in range(n_layers)]
        ctrl = [[probe_accuracy(s_tr[l, :, t], lab_tr[q], s_va[l, :, t], lab_va[q], pcfg.l2, rng)
                 for t in range(T)] for l in range(n_layers)]
        majority = float(np.max(np.unique(lab_va[q], return_counts=True)[1]) / len(lab_va[q]))
        probes[q] = {"accuracy": acc, "shuffled": ctrl, "majority": majority}
    attention = attns.mean(1).tolist()  # (L, nh, T): the answer position's (the last), averaged over prompts
    answer_ids = [vocab.encode(t).tolist()[0] for _, t in val]  # the first token of each target
    readout = {"answer": [float((top[:, t] == torch.tensor(answer_ids)).float().mean()) for t in range(T)],
               "pause": [float((top[:, t] == vocab.pause_id).float().mean()) for t in range(T)]}
    return {"ckpt": path, "variant": os.path.basename(os.path.dirname(path)), "task": cfg.task,
            "n_pause": cfg.n_pause, "placement": cfg.placement, "hints": cfg.hints, "positions": names,
            "probes": probes, "attention": attention, "readout": readout}

# --- the report -------------------------------------------------------------------------------------


def report_markdown(r):
    """One checkpoint's section: per quantity, the probe's validation accuracy at each layer x position
    (the best layer bolded per position is not marked: read the row), then attention and read-outs."""
    names, lines = r["positions"], [f"### {r['variant']} (task {r['task']}, M = {r['n_pause']}, {r['placement']}"
                                    + (", hinted" if r["hints"] else "") + ")\n"]
    head = "| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
    for q, p in r["probes"].items():
        lines.append(f"Linear probe for **{q}**: validation accuracy (%) by layer (0: embeddings) and position; "
                     f"the most common value is {100 * p['majority']:.1f}%; `shuffled`: the best layer's probe "
                     f"fitted on shuffled labels\n\n{head}")
        for layer, row in enumerate(p["accuracy"]):
            lines.append(f"| layer {layer} | " + " | ".join(f"{100 * a:.0f}" for a in row) + " |")
        lines.append("| shuffled | " + " | ".join(f"{100 * max(c):.0f}" for c in zip(*p["shuffled"])) + " |\n")
    lines.append(f"Attention of the answer position ({names[-1]}) over the positions (%), per layer and head, "
                 f"mean over validation prompts\n\n{head}")
    for layer, heads in enumerate(r["attention"]):
        for h, row in enumerate(heads):
            lines.append(f"| layer {layer + 1} head {h} | " + " | ".join(f"{100 * a:.0f}" for a in row) + " |")
    lines.append(f"\nRead-out of each position (the final LayerNorm and head applied there): how often its top "
                 f"token is the answer, and how often it is the pause (%)\n\n{head}")
    lines.append("| answer | " + " | ".join(f"{100 * a:.0f}" for a in r["readout"]["answer"]) + " |")
    lines.append("| pause | " + " | ".join(f"{100 * a:.0f}" for a in r["readout"]["pause"]) + " |\n")
    return "\n".join(lines)


def summary_markdown(reports):
    """Across checkpoints: each quantity's best probe accuracy at the answer position, at any pause, and at
    any prompt position (over layers), with the shuffled-label control."""
    lines = ["| model | quantity | answer position | best pause | best prompt position | shuffled labels (best) | "
             "most common value |", "|---|---|---|---|---|---|---|"]
    attention = ["\nThe answer position's attention on the pauses (%, summed over them, mean over heads and "
                 "validation prompts), per layer; the rest is on the prompt\n", "| model | " + " | ".join(
                     f"layer {i + 1}" for i in range(len(reports[0]["attention"]))) + " |",
                 "|---|" + "---|" * len(reports[0]["attention"])]
    for r in reports:
        names = r["positions"]
        pauses = [t for t, n in enumerate(names) if n.startswith("p")]
        prompt = [t for t, n in enumerate(names) if not n.startswith("p")]
        on_pauses = [100 * np.mean(np.array(layer)[:, pauses].sum(1)) if pauses else 0.0 for layer in r["attention"]]
        attention.append(f"| {r['variant']} | " + " | ".join(f"{a:.0f}" for a in on_pauses) + " |")
        for q, p in r["probes"].items():
            acc = np.array(p["accuracy"])  # (layers, T)
            best = lambda ts: f"{100 * acc[:, ts].max():.1f} ({names[ts[acc[:, ts].max(0).argmax()]]})" if ts else "-"  # noqa: E731
            lines.append(f"| {r['variant']} | {q} | {100 * acc[:, -1].max():.1f} | {best(pauses)} | {best(prompt)} | "
                         f"{100 * np.max(p['shuffled']):.1f} | {100 * p['majority']:.1f} |")
    return "\n".join(lines + attention)


def plot(reports, path):
    """Per model (a row): probe accuracy (layer x position) for each quantity, then the answer position's
    attention (layer x position, mean over heads). None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    quantities = list(reports[0]["probes"])
    cols = len(quantities) + 1
    fig, axes = plt.subplots(len(reports), cols, squeeze=False, figsize=(4.0 * cols, 0.8 + 2.3 * len(reports)))
    for i, r in enumerate(reports):
        short = r["variant"].split("-")[0].removeprefix("ft_")
        panels = [(f"{short}: probe, {q}", 100 * np.array(r["probes"][q]["accuracy"]), "viridis", 0)
                  for q in quantities]
        panels.append((f"{short}: attention of {r['positions'][-1]}", 100 * np.array(r["attention"]).mean(1),
                       "magma", 1))
        for j, (title, values, cmap, first_layer) in enumerate(panels):
            ax = axes[i][j]
            im = ax.imshow(values, vmin=0, vmax=100 if cmap == "viridis" else None, aspect="auto", cmap=cmap)
            ax.set_xticks(range(len(r["positions"])), r["positions"], fontsize=6, rotation=90)
            ax.set_yticks(range(values.shape[0]), range(first_layer, first_layer + values.shape[0]), fontsize=7)
            ax.set_title(title, fontsize=8)
            ax.set_ylabel("layer", fontsize=7)
            fig.colorbar(im, ax=ax, shrink=0.8).ax.tick_params(labelsize=6)
    fig.suptitle("probe accuracy (%) by layer and position; the answer position's attention (%)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv):
    def body():
        pcfg = parse_config(argv, ProbeConfig)
        paths = sorted(p for pattern in pcfg.ckpt.split(",") if pattern for p in glob.glob(pattern))
        if not paths:
            raise ConfigError(f"no checkpoint matches --ckpt={pcfg.ckpt!r}")
        t0, code = time.time(), commit()
        reports = [examine(p, pcfg) for p in paths]
        body = ("Probes fitted on " f"{pcfg.n_train} train prompts, scored on {pcfg.n_val} validation prompts (L2 "
                f"{pcfg.l2}); best over layers\n\n" + summary_markdown(reports) + "\n\n"
                + "\n\n".join(report_markdown(r) for r in reports))
        print(body)
        if pcfg.out:
            png = plot(reports, pcfg.out + ".png")
            write_results(pcfg.out, {"config": dataclasses.asdict(pcfg), "reports": reports, "plot": png}, body,
                          code, t0)
            print(f"written to {pcfg.out}.md, .json" + (f" and {png}" if png else ""))
    return run_cli("probe.py", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
