"""
The paper, all of it: the pause-token rules of Goyal et al., "Think before you speak: Training Language
Models With Pause Tokens" (ICLR 2024, arXiv 2310.02226), each a short function with its test in
tests/test_pause.py. Nothing else in nanopause knows what a pause is: the model sees one more token id,
and the loss ignores targets of -1.

  pretraining    insert_pauses (pause_slots)   pauses at uniformly random positions, ~10% of the
                                               length, then cut back to the window
                 lm_targets                    the loss never asks for a pause; a pause still
                                               predicts the next real token
  finetuning     format_example, collate       prefix + M_ft pauses + target; loss on the target only
  inference      answer                        append M_inf pauses, ignore their outputs, decode after
                                               the last one, never produce a pause
                 choice_logprob                likelihood of a choice after the pauses (ranked tasks)

  the alternatives (not the paper: the controls of eval.py --variants=controls)
                 format_example(pause_id=dot)  trained filler: '.' in the slots, finetuning and inference
                 repeat_prompt                 the prompt written twice in place of the pauses
                 format_cot, answer_cot        chain of thought: the hints emitted as tokens and read
                                               back as inputs, the answer after the last
                 (looped depth is GPTConfig.n_loop, read in GPT.hidden)

  python data.py      # prints a pretraining and a finetuning batch, ignored targets shown as ·
"""
import numpy as np
import torch
from tqdm import tqdm


def pause_slots(B, L, n, rng):
    """(B, L + n) bool: exactly n True per row, at uniformly random slots (where the pauses go)."""
    # BEGIN SOLUTION A1
    if n == 0:
        return np.zeros((B, L), dtype=bool)
    # the n smallest of L+n iid uniform keys sit at a uniformly random n-subset of the slots; finding
    # the n-th smallest value (np.partition) is several times faster than sorting or argpartition
    keys = rng.random((B, L + n))
    is_pause = keys <= np.partition(keys, n - 1, axis=1)[:, n - 1:n]
    if np.count_nonzero(is_pause) != B * n:  # two equal 53-bit keys: ~1e-11 a row, yet the count is exact
        tied = is_pause.sum(1) != n
        slots = np.argsort(keys[tied], axis=1, kind="stable")[:, :n]
        is_pause[tied] = False
        is_pause[np.flatnonzero(tied)[:, None], slots] = True
    return is_pause
    # END SOLUTION


def insert_pauses(seqs, pause_frac, pause_id, rng):
    """Pause pretraining: into each row of seqs (B, L) insert n = round(pause_frac * L) pauses at
    uniformly random positions, then cut the row back to length L. Returns (B, L).

    Choosing n of the L+n slots of the longer row uniformly at random is exactly "insert n pauses at
    uniformly random positions"; the real tokens fill the other slots in order. After the cut a row
    keeps n * L / (L + n) pauses on average (8.5% of 65 tokens at pause_frac 0.1). No per-token loop."""
    # BEGIN SOLUTION A1
    seqs = np.asarray(seqs)
    B, L = seqs.shape
    n = int(round(pause_frac * L))
    is_pause = pause_slots(B, L, n, rng)
    out = np.full((B, L + n), pause_id, dtype=seqs.dtype)
    out[~is_pause] = seqs.ravel()  # row-major: each row gets its own L tokens, in order
    return out[:, :L]
    # END SOLUTION


def lm_targets(seqs, pause_id):
    """Inputs and targets of a (B, T+1) token block for pretraining: the target of every position whose
    next token is a pause is -1 (the loss never asks the model to predict a pause). A position whose
    *input* is a pause still predicts the next real token."""
    # BEGIN SOLUTION A2
    x, y = seqs[:, :-1], seqs[:, 1:].copy()
    y[y == pause_id] = -1
    return x, y
    # END SOLUTION


def format_example(prefix, target, n_pause, pause_id, eot_id, placement="append", hints=(), input_hints=None):
    """Pause finetuning: prefix + [pause]*n_pause + target + [eot] (the paper's appended pauses;
    placement="prepend" puts them before the prefix instead, its ablation). n_pause=0 is standard
    finetuning.

    Returns (x, y) of equal length: x the inputs, y the next-token targets, -1 on every position that
    predicts a prefix or a pause token, so the loss falls on the target tokens and the end token only.
    The last pause (or, prepended, the last prompt token) predicts the first target token.

    Hints (not in the paper; off unless given): the output of pause j is trained to predict hints[j]
    instead of being ignored, for the first min(len(hints), n_pause - 1) pauses (the last pause still
    predicts the answer), so each pause slot has a supervised job. input_hints (one id or -1 per prompt
    position) puts the same kind of supervision on the prompt positions instead: the control that
    needs no pauses."""
    # BEGIN SOLUTION A3
    pauses = np.full(n_pause, pause_id)
    head = [prefix, pauses] if placement == "append" else [pauses, prefix]
    seq = np.concatenate(head + [target, [eot_id]]).astype(np.int64)
    x, y = seq[:-1], seq[1:].copy()
    y[: len(prefix) + n_pause - 1] = -1
    # END SOLUTION
    m = min(len(hints), n_pause - 1)
    if m > 0:
        if placement != "append":
            raise ValueError("hints need appended pauses: a prepended pause cannot see the prompt")
        y[len(prefix): len(prefix) + m] = hints[:m]  # pause j sits at position len(prefix) + j
    if input_hints is not None:
        if len(input_hints) != len(prefix) or input_hints[-1] != -1:
            raise ValueError("input_hints: one per prompt position, and -1 at the last (it leads to the answer)")
        at = 0 if placement == "append" else n_pause  # where the prompt starts
        hinted = np.asarray(input_hints) >= 0
        y[at: at + len(prefix)][hinted] = np.asarray(input_hints)[hinted]
    return x, y


def weighted_loss(logits, y, w):
    """The hint weight: mean cross-entropy over the supervised positions (y != -1), each weighted by w
    (hint_weight at hinted positions, 1 elsewhere). logits (B, T, V) are the model's at every position;
    an ignored position's cross-entropy is 0 and its weight is dropped (no boolean indexing: one graph)."""
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, -2).float(), y.flatten(), ignore_index=-1,
                                           reduction="none")
    w = w.flatten() * (y.flatten() != -1)
    return (ce * w).sum() / w.sum()


def collate(examples, pad_id):
    """Right-pad (x, y) pairs to one length: inputs with pad_id, targets with -1. Returns (B, T) arrays.
    Examples may differ in length, so each may carry its own number of pauses."""
    T = max(len(x) for x, _ in examples)
    X = np.full((len(examples), T), pad_id, dtype=np.int64)
    Y = np.full((len(examples), T), -1, dtype=np.int64)
    for i, (x, y) in enumerate(examples):
        X[i, : len(x)], Y[i, : len(y)] = x, y
    return X, Y


@torch.no_grad()
def answer(model, prompts, n_pause, pause_id, eot_id, max_new_tokens=8, greedy=True, batch_size=256,
           progress=False, filler_id=None, placement="append", ban_ids=()):
    """Pause inference: for each prompt (a sequence of ids) append n_pause pauses, ignore the model's
    outputs until the last pause (only the last position's logits are ever read), then decode until
    <|endoftext|> or max_new_tokens. Returns the answer ids of each prompt, end token excluded.
    filler_id puts another token in the pause slots (the '.' control); placement="prepend" puts them
    before the prompt (the placement ablation). The pause id is never produced, nor any id in ban_ids
    (pass vocab.unused_ids: the padding rows of the full vocab, which are no token).

    Prompts are batched by length, so no padding ever shifts a position: each answer equals the one
    the model gives to that prompt alone."""
    # BEGIN SOLUTION A4
    block, device = model.config.block_size, next(model.parameters()).device
    fill = [pause_id if filler_id is None else filler_id] * n_pause
    by_len = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for length in by_len:
        if length + n_pause + max_new_tokens - 1 > block:
            raise ValueError(f"prompt ({length}) + {n_pause} pauses + {max_new_tokens} answer tokens "
                             f"do not fit block_size {block}")
    out = [None] * len(prompts)
    chunks = [rows[s:s + batch_size] for rows in by_len.values() for s in range(0, len(rows), batch_size)]
    # a bar on a terminal only (disable=None: off when stderr is not one, so logs get no redraws)
    for chunk in tqdm(chunks, desc=f"answering (M_inf={n_pause})", disable=None if progress else True, leave=False):
        rows = [list(prompts[i]) + fill if placement == "append" else fill + list(prompts[i]) for i in chunk]
        idx = torch.tensor(rows, device=device)
        gen = model.generate(idx, max_new_tokens, greedy=greedy, ban_ids=(pause_id, *ban_ids),
                             stop_id=eot_id)[:, idx.size(1):].tolist()
        for i, g in zip(chunk, gen):
            out[i] = g[:g.index(eot_id)] if eot_id in g else g
    return out
    # END SOLUTION


@torch.no_grad()
def choice_logprob(model, prefix, choice, n_pause, fill_id, eot_id, placement="append"):
    """log P(choice | prefix with n_pause pauses, placed as in finetuning): the finetuning format of
    (prefix, choice), summed over the choice's tokens (not its end token). Ranked tasks (HellaSwag, PIQA)
    pick the choice this scores highest."""
    x, y = format_example(prefix, choice, n_pause, fill_id, eot_id, placement)
    y[-1] = -1  # the end token's prediction is not part of the choice
    device = next(model.parameters()).device
    x, y = torch.from_numpy(x)[None].to(device), torch.from_numpy(y)[None].to(device)
    logits, _ = model(x, y)
    keep = y != -1  # the choice's positions
    return torch.log_softmax(logits[keep].float(), -1).gather(1, y[keep][:, None]).sum().item()


# --- the alternatives: other ways to give a model more computation or supervision per answer --------


def repeat_prompt(prefix):
    """The prompt written a second time where the pauses would go: extra positions that carry content
    (Greenblatt 2025). Finetune and answer on repeat_prompt(prefix) with no pauses."""
    return np.concatenate([prefix, prefix])


def format_cot(prefix, steps, target, eot_id):
    """Chain of thought with the hints' supervision: prefix + steps + target + [eot], where steps are the
    task's hint ids. Each step is a target of the position before it and then the next input, so the
    model reads back what it wrote (sequential), where a hinted pause slot only computes it (parallel).
    Returns (x, y) as format_example: -1 on every position that predicts a prompt token."""
    seq = np.concatenate([prefix, steps, target, [eot_id]]).astype(np.int64)
    y = seq[1:].copy()
    y[: len(prefix) - 1] = -1  # the prompt's own tokens are inputs only
    return seq[:-1], y


def answer_cot(model, prompts, n_steps, pause_id, eot_id, max_new_tokens=8, **kw):
    """Chain-of-thought inference: the model writes n_steps[i] tokens of its own (its steps, one forward
    pass each), then the answer; returns the answer ids after the steps, end token excluded. A model
    that ends before its steps are done answers nothing."""
    outs = answer(model, prompts, 0, pause_id, eot_id, max(n_steps) + max_new_tokens, **kw)
    return [o[n:] for o, n in zip(outs, n_steps)]
