"""
A nanopause checkpoint in lm-evaluation-harness (lm-eval): its own tasks, its own metrics, with M_inf
pauses between each prompt and what the model is scored on.

  python harness.py --ckpt=out/x/ckpt.pt --n_pause=10 --tasks=hellaswag,piqa        # lm-eval downloads them
  python harness.py --ckpt=out/x/ckpt.pt --n_pause=10 --tasks=my_task --include_path=my_tasks/ --include_defaults=False

writes out/x/harness_M10_hellaswag,piqa.md (lm-eval's table) and .json (its results, the command,
commit and machine) beside the checkpoint. A task of your own on local files is a YAML in a folder
given as --include_path, with `dataset_path: json` and `dataset_kwargs: {data_files: ...}`.

What the model (NanopauseLM, registered as "nanopause") does with lm-eval's three kinds of request,
each as nanopause does it itself:
  loglikelihood          context + M_inf pauses + continuation (pauses before the context if the
                         checkpoint was finetuned with placement="prepend"); the continuation's log-probability
                         summed over its tokens (pause.choice_logprob), and whether each of its tokens
                         is the greedy one (a pause or a padding row is never greedy: never generated)
  loglikelihood_rolling  perplexity of a text: no pauses (nothing is answered), lm-eval's rolling
                         windows of block_size tokens after <|endoftext|>
  generate_until         pause.answer: M_inf pauses, greedy decoding that never produces the pause or
                         the padding rows, then the text cut at the first of the task's stop sequences
Text is encoded as data.py encodes it (Vocab.encode: the text "<|pause|>" stays text). lm-eval is
optional (requirements-hf.txt); nothing on the core path imports this file.
"""
import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from common import CheckpointError, ConfigError, commit, parse_config, pick_device, run_cli, write_results
from decode import fast
from downstream import fit_prefix
from pause import answer, format_example
from train import load_checkpoint

try:
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
except ImportError:  # the optional package is missing: main() says so in one line
    LM, register_model = object, (lambda *names: (lambda cls: cls))


@dataclass
class HarnessConfig:
    ckpt: str = ""                 # a nanopause checkpoint (train.py's ckpt.pt) with the full vocab
    n_pause: int = -1              # M_inf, the pauses after each prompt; -1: the checkpoint's own n_pause (M_ft)
    tasks: str = ""                # lm-eval task names, comma-separated
    include_path: str = ""         # a folder of task YAMLs of your own (local files)
    include_defaults: bool = True  # lm-eval's own tasks too (indexing them all takes ~15 s)
    num_fewshot: int = -1          # -1: each task's own default
    limit: int = 0                 # 0: every example; n: the first n of each task
    batch_size: int = 16           # sequences per forward pass when scoring likelihoods
    gen_kwargs: str = ""           # generation settings over the tasks' own, e.g. max_gen_toks=32
    device: str = "auto"
    out: str = ""                  # the stem of the .md and .json; "": harness_M<n>_<tasks> beside the ckpt


@register_model("nanopause")
class NanopauseLM(LM):
    """lm-eval's LM for a nanopause GPT with the full vocab: pass ckpt (a path), or model and vocab. M_inf is
    n_pause; by default (-1) the checkpoint's own n_pause, its pauses placed as in its finetuning."""

    def __init__(self, ckpt=None, n_pause=-1, batch_size=16, device="cpu", model=None, vocab=None, placement=None):
        super().__init__()
        saved = {}
        if model is None:
            model, vocab, saved = load_checkpoint(ckpt, device)
        finetuned = saved.get("config", {})  # n_pause=-1 and placement=None: as the checkpoint was finetuned
        if vocab.table is not None:
            raise CheckpointError(f"{ckpt or 'the model'} has a compact vocab (an embedded task's): lm-eval's "
                                  "tasks are English text, which needs the full vocab (--vocab=full)")
        self.model, self.vocab = model.eval(), vocab
        self.n_pause = int(n_pause) if int(n_pause) >= 0 else int(finetuned.get("n_pause", 0))
        self.placement = placement or finetuned.get("placement", "append")  # pauses after or before the prompt
        self.batch_size = int(batch_size)
        self.block = model.config.block_size
        self.banned = [vocab.pause_id, *vocab.unused_ids]  # never generated, so never "greedy" either
        self._device = next(model.parameters()).device

    # --- text to ids ---------------------------------------------------------------------------------

    def _pair(self, context, continuation):
        # lm-eval's convention: whitespace at the end of the context belongs to the continuation (" x"
        # is one GPT-2 token; "...: " + "x" would tokenize differently from how the text reads)
        stripped = context.rstrip()
        continuation, context = context[len(stripped):] + continuation, stripped
        ctx = list(self.vocab.encode(context)) or [self.vocab.eot_id]  # nothing to condition on: start at EOT
        return ctx, list(self.vocab.encode(continuation))

    # --- the three requests ----------------------------------------------------------------------------

    def loglikelihood(self, requests, disable_tqdm=False):
        pairs = [self._pair(*r.args) for r in requests]
        out = self._score(pairs, self.n_pause)
        for r, res in zip(requests, out):
            self.cache_hook.add_partial("loglikelihood", r.args, res)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
        out = []
        for r in requests:
            ids = list(self.vocab.encode(r.args[0]))
            windows = [make_disjoint_window(w) for w in
                       get_rolling_token_windows(ids, self.vocab.eot_id, self.block, context_len=1)]
            total = sum(lp for lp, _ in self._score(windows, 0, fits=True))
            self.cache_hook.add_partial("loglikelihood_rolling", r.args, total)
            out.append(total)
        return out

    def generate_until(self, requests, disable_tqdm=False):
        out = [None] * len(requests)
        groups = {}  # requests with the same answer length are answered in one call of pause.answer
        for i, r in enumerate(requests):
            context, kwargs = r.args
            kwargs = dict(kwargs or {})
            until = kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.pop("max_gen_toks", 256))
            if kwargs.get("do_sample") and float(kwargs.get("temperature", 1.0)) > 0:
                raise ConfigError("this task asks for sampling; nanopause answers greedily (pause.answer)")
            room = self.block - self.n_pause - max_new + 1
            if room < 1:
                raise ConfigError(f"max_gen_toks={max_new} and {self.n_pause} pauses do not fit block_size "
                                  f"{self.block}; pass --gen_kwargs=max_gen_toks=<fewer>")
            prompt = fit_prefix(list(self.vocab.encode(context)) or [self.vocab.eot_id], room)
            groups.setdefault(max_new, []).append((i, prompt, until))
        for max_new, items in groups.items():
            answers = answer(fast(self.model), [p for _, p, _ in items], self.n_pause, self.vocab.pause_id,
                             self.vocab.eot_id, max_new, placement=self.placement, ban_ids=self.vocab.unused_ids)
            for (i, _, until), ids in zip(items, answers):
                text = self.vocab.decode(ids)
                for stop in until:  # the answer ends before the first stop sequence, which is not part of it
                    if stop:
                        text = text.split(stop)[0]
                out[i] = text
                self.cache_hook.add_partial("generate_until", requests[i].args, text)
        return out

    # --- scoring ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def _score(self, pairs, n_pause, fits=False):
        """(sum of log-probabilities of cont, is every token of cont the greedy one) for each (ctx, cont),
        with n_pause pauses between them, laid out by pause.format_example as choice_logprob lays them
        out. Rows are batched by length (right padding: a causal model never sees it) and the head runs
        only where a continuation token is predicted. fits=True: the pair already fits block_size
        (rolling windows); the last continuation token is then not an input, as it predicts nothing."""
        rows = []
        for ctx, cont in pairs:
            if not cont:
                rows.append(None)
                continue
            if not fits:
                if len(cont) + n_pause >= self.block:
                    raise ConfigError(f"a continuation of {len(cont)} tokens and {n_pause} pauses do not fit "
                                      f"block_size {self.block}")
                ctx = fit_prefix(ctx, self.block - n_pause - len(cont))
            x, y = format_example(np.asarray(ctx), np.asarray(cont), n_pause, self.vocab.pause_id, self.vocab.eot_id,
                                  self.placement)
            rows.append((x[:-1], y[:-1]))  # the last position predicts the end token: not the continuation's
        out = [(0.0, True)] * len(pairs)
        order = sorted((i for i, r in enumerate(rows) if r is not None), key=lambda i: -len(rows[i][0]))
        for s in range(0, len(order), self.batch_size):
            chunk = order[s:s + self.batch_size]
            T = len(rows[chunk[0]][0])
            X = torch.full((len(chunk), T), self.vocab.eot_id, dtype=torch.long)
            Y = torch.full((len(chunk), T), -1, dtype=torch.long)
            for b, i in enumerate(chunk):
                x, y = rows[i]
                X[b, :len(x)], Y[b, :len(y)] = torch.from_numpy(x), torch.from_numpy(y)
            X, Y = X.to(self._device), Y.to(self._device)
            h = self.model.hidden(X)  # (B, T, C)
            keep = Y != -1
            logits = self.model.lm_head(h[keep]).float()  # (N, V): only the predicted positions
            logp = torch.log_softmax(logits, -1).gather(1, Y[keep][:, None])[:, 0]
            logits[:, self.banned] = -float("inf")
            greedy = logits.argmax(-1) == Y[keep]
            which = keep.nonzero()[:, 0]  # the row of each kept position
            for b, i in enumerate(chunk):
                mine = which == b
                out[i] = (logp[mine].sum().item(), bool(greedy[mine].all().item()))
        return out


# --- the command ----------------------------------------------------------------------------------------


def task_manager(cfg):
    from lm_eval.tasks import TaskManager
    if cfg.include_path and not os.path.isdir(cfg.include_path):
        raise ConfigError(f"include_path is not a folder: {cfg.include_path}")
    return TaskManager(include_path=cfg.include_path or None, include_defaults=cfg.include_defaults)


def evaluate(lm, tasks, manager, num_fewshot=None, limit=None, gen_kwargs=None):
    """lm-eval's own evaluation of lm on tasks (names manager knows); returns its results dict."""
    import lm_eval
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"lm-eval knows no task {', '.join(map(repr, unknown))} (with include_path, "
                          "give the folder of its YAML)")
    return lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=manager, num_fewshot=num_fewshot,
                                   limit=limit, gen_kwargs=gen_kwargs or None,
                                   log_samples=True)


def run(cfg):
    t0, code = time.time(), commit()
    tasks = [t.strip() for t in cfg.tasks.split(",") if t.strip()]
    if not cfg.ckpt or not tasks:
        raise ConfigError("both --ckpt=<nanopause ckpt.pt> and --tasks=<lm-eval task names> are needed")
    try:
        from lm_eval.utils import make_table
    except ImportError:
        raise ConfigError("the harness needs the optional packages: pip install -r requirements-hf.txt") from None
    lm = NanopauseLM(ckpt=cfg.ckpt, n_pause=cfg.n_pause, batch_size=cfg.batch_size, device=pick_device(cfg.device))
    n_pause = lm.n_pause
    if n_pause + 1 >= lm.block:
        raise ConfigError(f"{n_pause} pauses leave no room for a prompt and an answer in block_size {lm.block}")
    results = evaluate(lm, tasks, task_manager(cfg), None if cfg.num_fewshot < 0 else cfg.num_fewshot,
                       cfg.limit or None, cfg.gen_kwargs)
    table = make_table(results) + ("\n" + make_table(results, "groups") if results.get("groups") else "")
    stem = cfg.out or os.path.join(os.path.dirname(os.path.abspath(cfg.ckpt)), f"harness_M{n_pause}_{','.join(tasks)}")
    summary = {k: results[k] for k in ("results", "groups", "n-shot", "higher_is_better", "n-samples", "configs",
                                       "versions") if k in results}
    from lm_eval.utils import handle_non_serializable
    summary = json.loads(json.dumps(summary, default=handle_non_serializable))
    write_results(stem, {"ckpt": cfg.ckpt, "M_inf": n_pause, "tasks": tasks, "lm_eval": summary}, table, code, t0)
    print(table)
    print(f"wrote {stem}.md and {stem}.json")
    return results


def main(argv=None):
    return run_cli("harness.py", lambda: run(parse_config(sys.argv[1:] if argv is None else argv, HarnessConfig)))


if __name__ == "__main__":
    sys.exit(main())
