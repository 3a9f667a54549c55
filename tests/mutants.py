"""Mutation check of the test suite: plausible one-line bugs, each applied alone to a copy of the
repository; the suite must fail on every one (a test that cannot fail guards nothing).

  python tests/mutants.py            # every mutant: about 22 minutes on 2 cores
  python tests/mutants.py 3 17       # only these
  python tests/mutants.py 3 17 tests/test_eval.py   # only these, against only these test files

Prints one line per mutant: CAUGHT (with the first failing test), SURVIVED, BROKEN (the suite did not
run: a collection error, say), or NOT-APPLIED when the line it changes no longer exists (update the list
after editing that code). Exit code 1 if any survived or broke. Not run by pytest (a full sweep takes
about 20 minutes); run it after changing a test."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the rule tests first, so that a caught mutant stops early (-x); then the whole suite. (Two runs: given
# a folder and files in it, pytest collects the folder in its own order.)
FIRST = ["tests/test_pause.py", "tests/test_data.py", "tests/test_downstream.py", "tests/test_model.py",
         "tests/test_eval.py", "tests/test_common.py", "tests/test_train.py"]

# (file, line as it is, line with the bug, what the bug is). Two bugs tried and left out because no test
# can catch them: `keys <` in pause_slots (the tie fallback restores the count) and a looser fit
# check in answer (generate refuses the overflow anyway).
DEFAULT_FIRST = list(FIRST)

MUTANTS = [
    ("pause.py", "return out[:, :L]", "return out[:, -L:]", "insert_pauses trims the wrong end"),
    ("pause.py", "n = int(round(pause_frac * L))", "n = int(pause_frac * L)", "pause count floor"),
    ("pause.py", "y[y == pause_id] = -1", "y[x == pause_id] = -1", "mask pause inputs, not predictions"),
    ("pause.py", "y[: len(prefix) + n_pause - 1] = -1", "y[: len(prefix) + n_pause] = -1", "finetune mask off by one (+1)"),
    ("pause.py", "y[: len(prefix) + n_pause - 1] = -1", "y[: len(prefix) + n_pause - 2] = -1", "finetune mask off by one (-1)"),
    ("pause.py", 'head = [prefix, pauses] if placement == "append" else [pauses, prefix]', "head = [prefix, pauses]", "format ignores placement"),
    ("pause.py", "Y = np.full((len(examples), T), -1, dtype=np.int64)", "Y = np.full((len(examples), T), pad_id, dtype=np.int64)", "padding supervised"),
    ("data.py", "if self.pause_frac > 0:", "if self.pause_frac > 1:", "batcher skips pauses"),
    ("tasks.py", "little\") % 10", "little\") % 9", "split hash modulus"),
    ("data.py", "return self.to_model(get_encoding().encode_ordinary(text))", "return self.to_model(get_encoding().encode(text, allowed_special='all'))", "special strings become tokens"),
    ("data.py", "self.unused_ids = tuple(range(PAUSE_ID + 1, PADDED_VOCAB)) if self.table is None else ()", "self.unused_ids = ()", "padding ids allowed"),
    ("pause.py", 'rows = [list(prompts[i]) + fill if placement == "append" else fill + list(prompts[i]) for i in chunk]', "rows = [list(prompts[i]) + fill for i in chunk]", "answer ignores placement"),
    ("pause.py", "ban_ids=(pause_id, *ban_ids),", "ban_ids=tuple(ban_ids),", "answer may emit a pause"),
    ("model.py", "if done.all():", "if done.any():", "generate stops at first ended row"),
    ("pause.py", "out[i] = g[:g.index(eot_id)] if eot_id in g else g", "out[i] = g[:g.index(eot_id) + 1] if eot_id in g else g", "answer returns end token"),
    ("model.py", "mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(cache.pos)", "mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(cache.pos - 1)", "kv mask off by one"),
    ("model.py", "pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)", "pos = torch.arange(0, T, dtype=torch.long, device=idx.device)", "cache positions restart"),
    ("pause.py", "fill = [pause_id if filler_id is None else filler_id] * n_pause", "fill = [pause_id] * n_pause", "filler ignored"),
    ("data.py", "return Batcher(vocab, tokens=tokens, block_size=block_size, pause_frac=cfg.pause_frac)", "return Batcher(vocab, tokens=tokens, block_size=block_size)", "training drops pause_frac"),
    ("data.py", "n_pause=n_pause, placement=cfg.placement,\n                   hints=", "n_pause=n_pause,\n                   hints=", "training drops placement"),
    ("train.py", "return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)", "return cfg.learning_rate * it / (cfg.warmup_iters + 1)", "lr 0 at step 0"),
    ("train.py", "scaler.scale(loss / accum).backward()", "scaler.scale(loss).backward()", "accumulation not averaged"),
    ("data.py", 'return (corpus_text(make_examples(cfg.task, cfg.n_pretrain, "train", cfg.data_seed + 1)),', 'return (corpus_text(make_examples(cfg.task, cfg.n_pretrain, "test", cfg.data_seed + 1)),', "pretraining corpus from the test split"),
    ("train.py", "torch.manual_seed(int(rng.integers(2**63)))", "pass", "same dropout masks on every rank"),
    ("train.py", 'rng = np.random.default_rng([cfg.seed, it, rank * accum + micro])', 'rng = np.random.default_rng([cfg.seed, it, micro])', "ranks read the same data"),
    ("eval.py", 'if why is None and saved.get("init_fingerprint") != init_fingerprint(cfg):', "if False:", "stale finetune reused"),
    ("train.py", "max_new = max(len(get_encoding().encode_ordinary(t)) for _, t in pairs) + 1", "max_new = max(len(get_encoding().encode_ordinary(t)) for _, t in pairs)", "no room for end token"),
    ("eval.py", "res = score(model, vocab, cfg, examples, m_inf, ecfg.filler, cfg.placement, ecfg.progress, ecfg.mistakes)", "res = score(model, vocab, cfg, examples, m_inf, ecfg.filler, 'append', ecfg.progress, ecfg.mistakes)", "ckpt placement ignored"),
    ("pause.py", "y[-1] = -1  # the end token's prediction is not part of the choice", "pass", "choice scored with end token"),
    ("eval.py", "return [(mi, v.filler) for mi in (sorted({0, m // 2, m, 2 * m}) if ecfg.sweep else [m, 0])]", "return [(mi, v.filler) for mi in (sorted({0, m // 2, m, 2 * m}) if ecfg.sweep else [m])]", "no M_inf=0 row"),
    ("train.py", "right = [vocab.decode(o) == t for o, (_, t) in zip(outs, pairs)]", "right = [vocab.decode(o).strip() == t.strip() for o, (_, t) in zip(outs, pairs)]", "lenient exact match"),
    ("eval.py", "return [(0, \"pause\"), (m, \"dot\")]", "return [(0, \"pause\"), (m, \"pause\")]", "dot row uses pauses"),
    ("common.py", "out.update(delta=float(d.mean()), delta_ci95=interval95(d))", "out.update(delta=float(d.mean()), delta_ci95=interval95(x))", "delta interval unpaired"),
    ("downstream.py", 'text = "".join(c for c in text.lower() if c not in PUNCTUATION)\n    text = re.sub(r"\\b(a|an|the)\\b", " ", text)', 'text = re.sub(r"\\b(a|an|the)\\b", " ", text.lower())\n    text = "".join(c for c in text if c not in PUNCTUATION)', "articles before punctuation"),
    ("downstream.py", "return sum(f1(prediction, answers[:i] + answers[i + 1:]) for i in range(len(answers))) / len(answers)", "return f1(prediction, answers)", "coqa without leave-one-out"),
    ("downstream.py", "letter = prediction.strip()[:1].upper()", "letter = prediction.strip()[:1]", "letter case"),
    ("downstream.py", '"commonsense_qa": letter_match', '"commonsense_qa": exact_match', "CSQA back to SQuAD EM"),
    ("pause.py", "x, y = seq[:-1], seq[1:].copy()\n    y[: len(prefix) + n_pause - 1] = -1", "x, y = seq[1:], seq[1:].copy()\n    y[: len(prefix) + n_pause - 1] = -1", "finetune inputs shifted"),
    ("data.py", "counts = np.broadcast_to(self.n_pause, n)", "counts = np.broadcast_to(0, n)", "batcher drops n_pause"),
    ("data.py", "starts = rng.integers(0, len(tokens) - self.block_size - 1, batch_size)", "starts = rng.integers(0, len(tokens) - self.block_size - 1, 1).repeat(batch_size)", "one window per batch"),
    ("pause.py", "    x, y = seqs[:, :-1], seqs[:, 1:].copy()", "    x, y = seqs[:, :-1], seqs[:, :-1].copy()", "pretraining targets not shifted"),
    ("train.py", "block = model.config.block_size  # a checkpoint's own block_size wins over cfg's", "block = cfg.block_size", "cfg block over checkpoint's"),
    ("downstream.py", "norm.append(int(np.argmax(scores / np.array([len(c.removeprefix(\" \")) for c in e[\"choices\"]]))) == e[\"label\"])", "norm.append(int(np.argmax(scores)) == e[\"label\"])", "no length normalisation"),
    ("train.py", "return fingerprint(read_checkpoint(cfg.init_from)[\"model\"])", "return None", "fingerprint skipped"),
    ("downstream.py", "norm.append(int(np.argmax(scores / np.array([len(c.removeprefix(\" \")) for c in e[\"choices\"]]))) == e[\"label\"])", "norm.append(int(np.argmax(scores)) == e[\"label\"])", "no length normalisation"),
    ("train.py", "return fingerprint(read_checkpoint(cfg.init_from)[\"model\"])", "return None", "fingerprint skipped"),
    ("model.py", "if key.endswith((\".attn.bias\", \".attn.masked_bias\")) or key == \"lm_head.weight\":", "if key.endswith((\"attn.bias\", \".attn.masked_bias\")) or key == \"lm_head.weight\":", "skips c_attn.bias"),
    ("decode.py", "near = approx >= top.float() - 2 * self.bound", "near = approx >= top.float() - 0 * self.bound", "int8 argmax rescores only its own best"),
    ("decode.py", "if int(near.sum()) == h.size(0):", "if int(near.sum()) >= h.size(0):", "int8 argmax skips the rescoring of near-ties"),
    ("decode.py", "key = tuple((p.data_ptr(), p._version) for p in model.parameters())", "key = (model.lm_head.weight.data_ptr(), model.lm_head.weight._version)", "decoder copies follow only the head"),
    ("decode.py", "if self.layers is None or self.model.training:", "if self.layers is None:", "decoder step drops dropout"),
    ("decode.py", "_norm(x, block.ln_2), *fc", "_norm(x, block.ln_1), *fc", "decoder step reads the wrong LayerNorm"),
    # reuse and overwriting: a run is reused only while what made it is unchanged, and kept unless replaced
    ("train.py", 'changed = [name for name, h in made["code"].items() if code.get(name) != h]', "changed = []", "reuse ignores the code"),
    ("train.py", 'changed += [p for p, h in made["data"].items() if data.get(p) != h]', "changed += []", "reuse ignores the data files"),
    ("common.py", "if os.path.exists(path) and not (resume or overwrite):", "if False:", "a finished checkpoint overwritten"),
    ("common.py", "if resume and not os.path.exists(path):", "if False:", "resume without a checkpoint starts over"),
    ("eval.py", 'return dataclasses.replace(cfg, out_dir=os.path.join(ecfg.out_dir, f"seed{cfg.seed}", f"{name}-{digest}"))', 'return dataclasses.replace(cfg, out_dir=os.path.join(ecfg.out_dir, f"seed{cfg.seed}", name))', "one folder for every setting"),
    ("eval.py", 'return "results_" + name if name else "results"', 'return "results"', "one results file for every setting"),
    ("train.py", 'return dict(filler=cfg.filler, placement=cfg.placement,', 'return dict(filler=cfg.filler, placement="append",', "learning curve ignores placement"),
    ("report.py", 'last = curve["exact_match"][curve["step"].index(at):]', 'last = curve["exact_match"]', "plateau measured from the start of the curve"),
    ("data.py", "return Batcher(vocab, examples=pairs, block_size=block_size, n_pause=n_pause, placement=cfg.placement,\n                       fill_id", "return Batcher(vocab, examples=pairs, block_size=block_size, n_pause=cfg.n_pause, placement=cfg.placement,\n                       fill_id", "downstream ignores n_pause_min"),
    ("common.py", "return float(x.mean() - half), float(x.mean() + half)", "return float(max(0.0, x.mean() - half)), float(min(1.0, x.mean() + half))", "intervals clipped"),
    ("report.py", '"train_flops": float(per_example * ft.batch_size * ft.max_iters)}', '"train_flops": float(per_example * ft.batch_size)}', "matched control's compute counts positions only"),
    ("train.py", "if master and cfg.overwrite and not cfg.resume:", "if master and cfg.overwrite:", "resume deletes snapshots"),
    # places an audit found unpinned
    ("train.py", "            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)\n        scaler.step(optimizer)", "            pass\n        scaler.step(optimizer)\n        if cfg.grad_clip > 0: torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)", "gradients clipped after the optimizer step"),
    ("train.py", "return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)", "return cfg.learning_rate * (it + 1) / cfg.warmup_iters", "warm-up reaches the peak lr a step early"),
    ("train.py", "rng = np.random.default_rng([cfg.seed, it, rank * accum + micro])", "rng = np.random.default_rng([cfg.seed, it, rank + micro])", "micro-batch keys collide across ranks"),
    ("train.py", 'return model, vocab, ckpt, ckpt.get("init_fingerprint")', "return model, vocab, ckpt, None", "resumed run drops its init fingerprint"),
    ("common.py", "initializer=torch.set_num_threads, initargs=(threads,)) as pool:", ") as pool:", "workers keep their default thread count"),
    ("common.py", "torch.set_num_threads(threads)", "torch.set_num_threads(default)", "in-process jobs ignore their thread count"),
    ("model.py", "if ban_ids:", "if ban_ids and not greedy:", "greedy decoding without the Decoder ignores the ban"),
    ("decode.py", "dec = decoder(self.model) if greedy and use_cache else None", "dec = decoder(self.model) if use_cache else None", "sampling on CPU silently greedy"),
    ("model.py", "return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)", "return torch.multinomial(F.softmax(logits, dim=-1), 1)", "sampling ignores its generator"),
    ("decode.py", "near = approx >= top.float() - 2 * self.bound * h.norm(dim=1, keepdim=True)", "near = approx >= top.float() - 1 * self.bound * h.norm(dim=1, keepdim=True)", "int8 argmax window of one bound"),
    ("downstream.py", "return float(prediction.strip() == answers[0])", "return float(prediction.strip().split(\" \")[0] == answers[0])", "lambada scores the first word only"),
    ("downstream.py", "norm.append(int(np.argmax(scores / np.array([len(c.removeprefix(\" \")) for c in e[\"choices\"]]))) == e[\"label\"])", "norm.append(int(np.argmax(scores / np.array([len(c) for c in choices]))) == e[\"label\"])", "length normalisation per token"),
    ("downstream.py", "[len(c.removeprefix(\" \")) for c in e[\"choices\"]]", "[len(c) for c in e[\"choices\"]]", "acc_norm counts the space before a choice"),
    ("downstream.py", "return prefix[-room:]", "return prefix[:room]", "long prompts cut at the end"),
    ("data.py", "pairs = [(downstream.fit_prefix(p, block_size - cfg.n_pause - len(t)), t) for p, t in pairs]", "pairs = [(p[:block_size - cfg.n_pause - len(t)], t) for p, t in pairs]", "long finetuning prompts cut at the end"),
    ("downstream.py", "prompts = [fit_prefix(p, room) for p in", "prompts = [p[:room] for p in", "long prompts cut at the end when answering"),
    ("course/check_kit.py", "wrong = [t for t, msg in res.items() if msg is None or stub not in msg]", "wrong = [t for t, msg in res.items() if msg is None]", "kit accepts a graded test failing for any reason"),
    ("course/check_kit.py", 'stub = f"NotImplementedError: {assignment}: see course/{assignment}.md"', 'stub = "NotImplementedError"', "kit accepts another assignment's stub"),
    ("study.py", 'n_pause_min=m // 2 if arm.startswith("mixed") else -1', 'n_pause_min=m // 2 if arm == "mixed" else -1', "mixed_plain does not mix"),
    # the alternatives to pauses (the controls)
    ("model.py", "for loop in range(self.config.n_loop):", "for loop in range(1):", "looped model runs its blocks once"),
    ("model.py", "x = block(x, cache, loop * self.config.n_layer + i)", "x = block(x, cache, i)", "loops share one cache entry per layer"),
    ("decode.py", "if large and model.config.n_loop == 1:", "if large:", "fast decoder runs a looped model once"),
    ("model.py", "4 * c.n_embd * T * (T + 1) / 2", "4 * c.n_embd * T * T / 2", "FLOPs count half the attention diagonal"),
    ("pause.py", "y[: len(prefix) - 1] = -1  # the prompt's own tokens are inputs only", "y[: len(prefix)] = -1", "first chain-of-thought step unsupervised"),
    ("pause.py", "return [o[n:] for o, n in zip(outs, n_steps)]", "return [o[n - 1:] for o, n in zip(outs, n_steps)]", "chain-of-thought answer read one step early"),
    ("pause.py", "return np.concatenate([prefix, prefix])", "return np.asarray(prefix)", "prompt not repeated"),
    ("data.py", 'fill_id=vocab.dot_id if cfg.filler == "dot" else None, steps=hints if cfg.cot else None)', "fill_id=None, steps=hints if cfg.cot else None)", "trained filler trains on pauses"),
    ("train.py", "repeat=cfg.repeat, cot_task=cfg.task if cfg.cot else \"\")", "repeat=False, cot_task=cfg.task if cfg.cot else \"\")", "repeated-prompt model answers the prompt once"),
    ("report.py", "return len(enc.encode_ordinary(prefix)) * (1 + ft.repeat) + fill + emitted, emitted, steps", "return len(enc.encode_ordinary(prefix)) + fill + emitted, emitted, steps", "repeated prompt counted once"),
    ("tasks.py", 'out.append(f" {var}")', 'out.insert(0, f" {var}")', "hops hints in reverse"),
    ("eval.py", "common = Counter(t for _, t in pairs).most_common(1)[0][1] / len(pairs)", "common = Counter(t for _, t in pairs).most_common(2)[-1][1] / len(pairs)", "majority reference from the second answer"),
    # what made a run: compared by content, never by where it lies; kept until its successor is complete
    ("train.py", 'made_changed(ckpt, made or provenance(cfg)))', "None)", "resume across a change of code or data"),
    ("train.py", "if code.get(name) != h]", "if name in code and code[name] != h]", "a training file missing from the record is ignored"),
    ("train.py", 'if saved.get("torch") != made["torch"]:', "if False:", "reuse ignores the torch version"),
    ("train.py", 'if saved.get("torch") != made["torch"]:', 'if "torch" in saved and saved["torch"] != made["torch"]:', "a run without a torch record reused"),
    ("eval.py", 'if saved["step"] != cfg.max_iters:', "if False:", "a run stopped before max_iters reused"),
    ("train.py", "if k not in NOT_RUN_SETTINGS + tuple(skip)", 'if k not in ("progress", "overwrite", "resume") + tuple(skip)', "a moved run is stale (out_dir compared)"),
    ("eval.py", 'skip=("init_from",) if os.path.isfile(cfg.init_from) else ()', "skip=()", "a moved finetune is stale (init_from's spelling compared)"),
    ("eval.py", 'out = train(dataclasses.replace(cfg, out_dir=os.path.normpath(cfg.out_dir) + ".partial", overwrite=True))', "out = train(dataclasses.replace(cfg, overwrite=True))", "a retrain writes over the old run as it goes"),
    ("eval.py", 'key["init_from"] = os.path.relpath(cfg.init_from, ecfg.out_dir)', 'key["init_from"] = cfg.init_from', "run folder depends on where out_dir is"),
    ("train.py", 'NOT_RUN_SETTINGS = ("out_dir", "progress", "overwrite", "resume")', 'NOT_RUN_SETTINGS = ("out_dir", "progress", "overwrite", "resume", "data_seed")', "a setting left out of the run's folder name"),
    ("eval.py", '"n_inf", "test_file", "mistakes"}', '"n_inf", "test_file", "mistakes", "threads"}', "a setting left out of the results name"),
    ("common.py", 'for chunk in iter(lambda: f.read(1 << 24), b""):', "for chunk in [f.read(1 << 24)]:", "file hash reads the first 16 MiB only"),
    # the learning curve and the float16 path
    ("report.py", '- b["exact_match"][b["step"].index(s)]', '- b["exact_match"][c["step"].index(s)]', "baseline read at the variant's index"),
    ("report.py", 'bound = c["baseline_last_step"]', 'bound = c["step"][-1]', "bound from this variant's run length"),
    ("report.py", 'if c["seeds"] > 1 else "")]', 'if True else "")]', "one seed shows a spread of 0"),
    ("report.py", "return bool(100 * (max(last) - min(last)) < 2.0)", "return bool(100 * abs(last[-1] - last[0]) < 2.0)", "plateau compares the quarter's ends only"),
    ("report.py", "return bool(100 * (max(last) - min(last)) < 2.0)", "return bool(100 * (max(last) - min(last)) <= 2.0)", "a move of exactly 2 points is a plateau"),
    ("train.py", "scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones", "pass", "float16 clip sees the scaled gradients"),
    ("train.py", '            scaler.load_state_dict(resumed["scaler"])', "            pass", "resume drops the gradient scaler's state"),
    ("train.py", 'history = list(resumed.get("val_history", []))', "history = []", "resume drops the learning curve"),
    # export.py and harness.py (caught where requirements-hf.txt is installed)
    ("export.py", 'ACTIVATION = {"none": "gelu", "tanh": "gelu_new"}', 'ACTIVATION = {"none": "gelu_new", "tanh": "gelu_new"}', "exported exact GELU read as tanh"),
    ("export.py", 'CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight",', 'CONV1D = ("attn.c_attn.weight",', "square attention projection exported untransposed"),
    ("export.py", "suppress_tokens=list(range(PAUSE_ID, PADDED_VOCAB))", "suppress_tokens=[PAUSE_ID]", "transformers may generate a padding row"),
    ("export.py", "split_special_tokens=True)", "split_special_tokens=False)", "exported tokenizer turns the text <|pause|> into the pause"),
    ("model.py", 'gelu_approx="none" if hf.get("activation_function") == "gelu" else "tanh"))', 'gelu_approx="tanh"))', "from_pretrained reads exact GELU as tanh"),
    ("harness.py", "out = self._score(pairs, self.n_pause)", "out = self._score(pairs, 0)", "harness likelihoods without pauses"),
    ("harness.py", "self.vocab.eot_id, max_new, placement=self.placement, ban_ids=self.vocab.unused_ids)", "self.vocab.eot_id, max_new, placement=self.placement)", "harness may generate a padding row"),
    ("harness.py", "                        text = text.split(stop)[0]", "                        pass", "harness ignores stop sequences"),
    ("harness.py", '            logits[:, self.banned] = -float("inf")', "            pass", "is_greedy counts a banned id"),
]


def run(i, path, old, new, what):
    with tempfile.TemporaryDirectory() as tmp:
        repo = os.path.join(tmp, "repo")
        # .git comes along: the course tests make handouts from the tracked files
        shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns("out", "__pycache__", "handouts"))
        text = open(os.path.join(repo, path)).read()
        if text.count(old) != 1:
            return f"{i} NOT-APPLIED ({text.count(old)} matches) {what}", True
        open(os.path.join(repo, path), "w").write(text.replace(old, new))
        t = time.time()
        for tests in (FIRST, ["tests"]) if FIRST == DEFAULT_FIRST else (FIRST,):
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=repo,
                               capture_output=True, text=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
            if r.returncode:
                break
        failed = [line.split(" - ")[0] for line in r.stdout.splitlines() if line.startswith("FAILED")]
        if r.returncode == 0:
            return f"{i} SURVIVED {what} ({time.time() - t:.0f}s)", False
        if not failed:  # the suite did not run (a collection error, say): that catches nothing
            return f"{i} BROKEN {what} (exit {r.returncode}; no test failed)", False
        return f"{i} CAUGHT {what} ({time.time() - t:.0f}s) {failed[0] if failed else 'exit ' + str(r.returncode)}", True


if __name__ == "__main__":
    # python tests/mutants.py 3 17 tests/test_eval.py: only these mutants, against only these test files
    only = {int(a) for a in sys.argv[1:] if a.isdigit()}
    files = [a for a in sys.argv[1:] if not a.isdigit()]
    if files:
        FIRST[:] = files
    survived = 0
    for i, mutant in enumerate(MUTANTS):
        if not only or i in only:
            line, ok = run(i, *mutant)
            survived += not ok
            print(line, flush=True)
    sys.exit(1 if survived else 0)
