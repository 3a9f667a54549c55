"""Plausible wrong solutions, one line each, that course/check_kit.py applies to the solution one at a
time: each must fail at least one graded test of its assignment. Instructor-only (never in a handout:
the left-hand sides quote the solution)."""

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
]
