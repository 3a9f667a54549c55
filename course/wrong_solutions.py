"""Plausible wrong solutions, a line or a few each, that course/check_kit.py applies to the solution one at a
time: each must fail at least one graded test of its assignment. Instructor-only (never in a handout:
the left-hand sides quote the solution)."""

# solution texts of several lines, used more than once below
KEYS = "    keys = rng.random((B, L + n))\n    is_pause = keys <= np.partition(keys, n - 1, axis=1)[:, n - 1:n]"
ALLOC = ("            self.k = torch.empty(self.shape, dtype=k.dtype, device=k.device)\n"
         "            self.v = torch.empty(self.shape, dtype=v.dtype, device=v.device)")

WRONG = [  # (assignment, file, solution text, wrong text, the mistake)
    ("A1", "pause.py", "return out[:, :L]", "return out[:, -L:]", "cuts the row back from the wrong end"),
    ("A1", "pause.py", "n = int(round(pause_frac * L))", "n = int(pause_frac * L)", "floors the pause count"),
    ("A1", "pause.py", "keys = rng.random((B, L + n))", "keys = np.tile(np.arange(L + n) + 0.0, (B, 1))",
     "always the first slots, not uniform ones"),
    ("A2", "pause.py", "y[y == pause_id] = -1", "y[x == pause_id] = -1", "masks pause inputs, not predictions of pauses"),
    ("A2", "pause.py", "y[y == pause_id] = -1", "pass", "no masking"),
    ("A2", "pause.py", "x, y = seqs[:, :-1], seqs[:, 1:].copy()", "x, y = seqs[:, :-1], seqs[:, :-1].copy()",
     "targets not shifted"),
    ("A3", "pause.py", "y[: len(prefix) + n_pause - 1] = -1", "y[: len(prefix) + n_pause] = -1",
     "off by one: the first target token is not supervised"),
    ("A3", "pause.py", "y[: len(prefix) + n_pause - 1] = -1", "y[: len(prefix) - 1] = -1",
     "the pauses' predictions are supervised"),
    ("A3", "pause.py", 'head = [prefix, pauses] if placement == "append" else [pauses, prefix]',
     "head = [prefix, pauses]", "ignores placement"),
    ("A4", "pause.py", "out[i] = g[:g.index(eot_id)] if eot_id in g else g",
     "out[i] = g[:g.index(eot_id) + 1] if eot_id in g else g", "returns the end token"),
    ("A4", "pause.py", "ban_ids=(pause_id, *ban_ids),", "ban_ids=tuple(ban_ids),", "may produce a pause"),
    ("A4", "pause.py", 'rows = [list(prompts[i]) + fill if placement == "append" else fill + list(prompts[i]) for i in chunk]',
     "rows = [fill + list(prompts[i]) for i in chunk]", "puts the pauses before the prompt"),
    ("A5", "model.py", "mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(cache.pos)",
     "mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(cache.pos - 1)",
     "the shifted causal mask is off by one"),
    ("A5", "model.py", "self.k[layer, :, :, self.pos:end] = k", "self.k[layer, :, :, :k.size(2)] = k",
     "keys written at the start, not at pos"),
    ("A5", "model.py", "                causal = False  # one new query may attend to every cached key",
     "                causal = True", "one new query masked causally against the whole cache"),
    # --- mistakes students made that the first graded tests let through ---
    ("A1", "pause.py", "keys = rng.random((B, L + n))", "keys = np.random.default_rng(0).random((B, L + n))",
     "ignores its rng: a seed fixed inside, so every batch gets the same pauses"),
    ("A1", "pause.py", "keys = rng.random((B, L + n))", "keys = np.random.random((B, L + n))",
     "ignores its rng: numpy's global generator"),
    ("A1", "pause.py", KEYS,
     "    start = rng.integers(0, L + n, (B, 1))\n    is_pause = (np.arange(L + n) - start) % (L + n) < n",
     "the n pauses as one contiguous run at a random (circular) offset: right slot frequencies, wrong gaps"),
    ("A1", "pause.py", KEYS,
     "    edges = np.arange(n + 1) * (L + n) // n\n"
     "    at = edges[:-1] + (rng.random((B, n)) * np.diff(edges)).astype(np.int64)\n"
     "    is_pause = np.zeros((B, L + n), dtype=bool)\n"
     "    np.put_along_axis(is_pause, at, True, axis=1)",
     "one pause jittered inside each of n strata: right slot frequencies, wrong gaps"),
    ("A1", "pause.py", "n = int(round(pause_frac * L))", "n = int(pause_frac * L + 0.5)",
     "rounds half up (6.5 -> 7), not as Python's round (6.5 -> 6)"),
    ("A1", "pause.py", "out = np.full((B, L + n), pause_id, dtype=seqs.dtype)",
     "out = np.full((B, L + n), pause_id, dtype=np.int32)", "returns int32, not the input's int64"),
    ("A2", "pause.py", "x, y = seqs[:, :-1], seqs[:, 1:].copy()", "x, y = seqs[:, :-1], seqs[:, 1:].astype(np.int32)",
     "int32 targets"),
    ("A2", "pause.py", "x, y = seqs[:, :-1], seqs[:, 1:].copy()",
     "x, y = seqs[:, :-1].astype(np.int32), seqs[:, 1:].astype(np.int32)", "int32 inputs and targets"),
    ("A2", "pause.py", "x, y = seqs[:, :-1], seqs[:, 1:].copy()",
     "x, y = torch.from_numpy(seqs[:, :-1]), torch.from_numpy(seqs[:, 1:].copy())", "torch tensors, not numpy arrays"),
    ("A2", "pause.py", "x, y = seqs[:, :-1], seqs[:, 1:].copy()", "x, y = seqs[:, :-1], torch.tensor(seqs[:, 1:])",
     "targets as a torch tensor"),
    ("A3", "pause.py", "y[: len(prefix) + n_pause - 1] = -1", "y[: len(prefix) + n_pause - 1] = -1\n    return x, y",
     "returns at the end of the region: the hint code after it never runs"),
    ("A3", "pause.py", "seq = np.concatenate(head + [target, [eot_id]]).astype(np.int64)",
     "seq = np.concatenate(head + [target, [eot_id]]).astype(np.int32)", "int32 arrays"),
    ("A3", "pause.py", "seq = np.concatenate(head + [target, [eot_id]]).astype(np.int64)",
     "seq = np.concatenate(head + [target, [eot_id]]).astype(np.asarray(prefix).dtype)",
     "keeps the prompt's dtype (int32 for an int32 prompt), not int64"),
    ("A3", "pause.py", "x, y = seq[:-1], seq[1:].copy()",
     "x, y = torch.from_numpy(seq[:-1]), torch.from_numpy(seq[1:].copy())", "torch tensors, not numpy arrays"),
    ("A4", "pause.py", "if length + n_pause + max_new_tokens - 1 > block:",
     "if length + n_pause + max_new_tokens > block:", "the fit check one stricter than the rule: refuses an exact fit"),
    ("A4", "pause.py", "if length + n_pause + max_new_tokens - 1 > block:",
     "if length + n_pause + max_new_tokens - 1 >= block:", "refuses the exact fit (>= for >)"),
    ("A4", "pause.py", "if length + n_pause + max_new_tokens - 1 > block:",
     "if length + n_pause + max_new_tokens + 1 > block:", "counts a position for the end token too"),
    ("A4", "pause.py",
     "ban_ids=(pause_id, *ban_ids),\n                             stop_id=eot_id)[:, idx.size(1):].tolist()\n"
     "        for i, g in zip(chunk, gen):\n            out[i] = g[:g.index(eot_id)] if eot_id in g else g",
     "ban_ids=tuple(ban_ids),\n                             stop_id=eot_id)[:, idx.size(1):].tolist()\n"
     "        for i, g in zip(chunk, gen):\n"
     "            out[i] = [t for t in (g[:g.index(eot_id)] if eot_id in g else g) if t != pause_id]",
     "lets the model produce pauses and drops them from the answer afterwards, instead of banning them"),
    ("A4", "pause.py", "[:, idx.size(1):].tolist()",
     '[:, n_pause if placement == "prepend" else idx.size(1):].tolist()',
     "reads after the last pause even when the pauses come first: a prepended answer starts with the prompt"),
    ("A5", "model.py", ALLOC,
     "            self.k = torch.empty(self.shape, device=k.device)\n"
     "            self.v = torch.empty(self.shape, device=v.device)",
     "the cache in torch's default dtype, not the keys' (a bf16 model fails)"),
    ("A5", "model.py", ALLOC,
     "            self.k = torch.empty(self.shape, dtype=k.dtype)\n"
     "            self.v = torch.empty(self.shape, dtype=v.dtype)",
     "the cache on torch's default device, not the keys' (a GPU model fails)"),
    ("A5", "model.py", ALLOC,
     "            self.k = torch.zeros(self.shape)\n            self.v = torch.zeros(self.shape)",
     "the cache with torch's defaults for both dtype and device"),
    ("A5", "model.py", "mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(cache.pos)",
     "mask = torch.ones(T, k.size(2), dtype=torch.bool).tril(cache.pos)", "the shifted mask on the default device"),
    ("A5", "model.py", "if T == 1:", "if T == 1 or cache.pos > 0:",
     "several new queries after a past see the whole chunk (no mask), as one new query may"),
]
