"""The pause rules of pause.py, each proved on tiny self-made data, and through the training script's own
batches where a rule reaches training (the README's rule table points here)."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import data
import downstream
import pause
from common import parse_config
from data import Vocab
from model import GPT, GPTConfig
from pause import answer, choice_logprob, collate, format_example, insert_pauses, lm_targets, pause_slots
from tiny import EOT, PAUSE, TINY, V, Scripted, Successor, all_logits, digest, tiny
from train import Config


@pytest.fixture(autouse=True)
def a4_decodes_without_the_cache(request, monkeypatch):
    """A4 (pause.answer) is graded without A5's KV cache, so that a handout blanking A4 through A5 can be
    passed in order: its tests decode by recomputing the context (the same greedy tokens: test_model)."""
    if request.node.get_closest_marker("a4"):
        generate = GPT.generate
        monkeypatch.setattr(GPT, "generate", lambda self, *args, **kw: generate(self, *args, **{**kw, "use_cache": False}))


# --- pause pretraining -----------------------------------------------------------------------------


@pytest.mark.a1
def test_pause_slots_exact_count_and_uniform(grade_rng):
    rng = grade_rng
    B, L, n = 20000, 40, 4
    slots = pause_slots(B, L, n, rng)
    assert slots.shape == (B, L + n) and (slots.sum(1) == n).all()
    freq = slots.mean(0)  # each of the L+n slots should hold a pause with probability n/(L+n)
    p = n / (L + n)
    assert np.abs(freq - p).max() < 5 * np.sqrt(p * (1 - p) / B)
    # first and last third equally likely: no drift towards either end
    assert abs(freq[: (L + n) // 3].mean() - freq[-(L + n) // 3:].mean()) < 0.01


def test_pause_slots_exact_even_with_tied_keys():
    class Tied:
        """A generator whose uniform draws all tie (random, uniform): the count must still be exact for a
        solution that sorts keys. Every other method is a real numpy Generator's, so a solution built on
        rng.choice, rng.permutation or rng.integers runs here too."""
        def __init__(self):
            self.real = np.random.default_rng(0)

        def random(self, size=None, dtype=np.float64, out=None):
            return np.zeros(() if size is None else size, dtype=dtype)

        def uniform(self, low=0.0, high=1.0, size=None):
            return np.full(() if size is None else size, low, dtype=np.float64)

        def __getattr__(self, name):
            return getattr(self.real, name)
    assert (pause_slots(3, 10, 2, Tied()).sum(1) == 2).all()


@pytest.mark.a1
def test_insert_pauses_count_trim_order(grade_rng):
    rng = grade_rng
    B, L, P = 500, 50, 999
    seqs = np.arange(B * L).reshape(B, L)  # distinct tokens, so order is checkable
    out = insert_pauses(seqs, 0.1, P, rng)
    assert out.shape == (B, L)
    n = round(0.1 * L)
    pauses = (out == P).sum(1)
    assert pauses.max() <= n and pauses.mean() > 0.8 * n  # n inserted, a few cut off with the tail
    for r in range(B):  # the real tokens are the row's first tokens, in order: trimmed at the end
        real = out[r][out[r] != P]
        assert (real == seqs[r, : len(real)]).all() and len(real) == L - pauses[r]
    # seeded: the same rng state gives the same pauses
    assert (insert_pauses(seqs, 0.1, P, np.random.default_rng(7)) ==
            insert_pauses(seqs, 0.1, P, np.random.default_rng(7))).all()
    assert (insert_pauses(seqs, 0.0, P, rng) == seqs).all()


@pytest.mark.a1
def test_pause_slots_and_insert_pauses_draw_from_the_rng_they_are_given(grade_seed):
    """All randomness comes from the rng argument: the same state gives the same placement, another
    state another one (a seed fixed inside the function would give the same one), and a second call
    on one generator continues its stream. Types: pause_slots a numpy bool array, insert_pauses a
    numpy array of the input's dtype (int64 here, as the training batches are); the input unchanged."""
    B, L, n, P = 64, 40, 4, 999
    a, b = (pause_slots(B, L, n, np.random.default_rng(grade_seed)) for _ in range(2))
    c = pause_slots(B, L, n, np.random.default_rng(grade_seed + 1))
    assert isinstance(a, np.ndarray) and a.dtype == np.bool_ and a.shape == (B, L + n)
    assert (a == b).all() and not (a == c).all()
    rng = np.random.default_rng(grade_seed)
    assert not (pause_slots(B, L, n, rng) == pause_slots(B, L, n, rng)).all()
    none = pause_slots(B, L, 0, rng)
    assert isinstance(none, np.ndarray) and none.dtype == np.bool_ and none.shape == (B, L) and not none.any()
    seqs = np.arange(B * L, dtype=np.int64).reshape(B, L)
    before = seqs.copy()
    x, y = (insert_pauses(seqs, 0.1, P, np.random.default_rng(grade_seed)) for _ in range(2))
    z = insert_pauses(seqs, 0.1, P, np.random.default_rng(grade_seed + 1))
    for out in (x, z, insert_pauses(seqs, 0.0, P, rng)):
        assert isinstance(out, np.ndarray) and out.dtype == np.int64 and out.shape == (B, L)
    assert (x == y).all() and not (x == z).all() and (seqs == before).all()


@pytest.mark.a1
def test_pause_slots_gaps_between_pauses_are_those_of_a_uniform_subset(grade_rng):
    """The joint distribution, not only each slot's frequency. For a uniform n-subset of N = L + n slots
    the n + 1 spacings (before the first pause, between consecutive pauses, after the last, counting
    the pause's own slot) each take the value g with probability C(N - g, n - 1) / C(N, n). One
    contiguous run of pauses at a random offset, or one pause jittered inside each of n strata, give
    every slot the right frequency but other gaps."""
    B, L, n = 20000, 40, 4
    N = L + n
    slots = pause_slots(B, L, n, grade_rng)
    assert slots.shape == (B, N) and (slots.sum(1) == n).all()
    pos = np.nonzero(slots)[1].reshape(B, n) + 1  # 1-based slots of the pauses, in order within each row
    spacings = np.diff(np.concatenate([np.zeros((B, 1), int), pos, np.full((B, 1), N + 1)], 1), axis=1)
    g = np.arange(1, N - n + 2)  # the possible spacings
    exact = np.array([math.comb(N - k, n - 1) for k in g]) / math.comb(N, n)
    assert exact.sum() == pytest.approx(1)
    tol = 6 * np.sqrt(exact * (1 - exact) / B) + 5 / B  # 6 sigma: met by any correct solution at any seed
    for j in range(n + 1):
        freq = np.bincount(spacings[:, j], minlength=N + 2)[1:N - n + 2] / B
        assert (np.abs(freq - exact) < tol).all(), f"spacing {j}: {np.round(freq[:6], 4)} vs {np.round(exact[:6], 4)}"


@pytest.mark.a1
def test_insert_pauses_pairs_of_pauses_as_often_as_uniform_slots(grade_rng):
    """insert_pauses's joint distribution: two slots d apart both hold a pause with probability
    n (n - 1) / (N (N - 1)) (N = L + n), whatever d, so a row of L kept slots holds (L - d) times that
    many such pairs on average."""
    B, L, P = 20000, 50, 2
    n, N = 5, 55  # round(0.1 * 50)
    out = insert_pauses(np.ones((B, L), dtype=np.int64), 0.1, P, grade_rng)
    q = n * (n - 1) / (N * (N - 1))
    for d in range(1, 6):
        pairs = ((out[:, :-d] == P) & (out[:, d:] == P)).sum(1)
        assert abs(pairs.mean() - (L - d) * q) < 6 * pairs.std() / np.sqrt(B) + 1e-3, (d, pairs.mean(), (L - d) * q)


@pytest.mark.a1
def test_insert_pauses_rounds_like_pythons_round(grade_rng):
    """n = round(pause_frac * L) with Python's round, which takes a .5 to the even neighbour: L = 65
    (keysum_pretrain's window) gets 6 pauses, not 7; L = 25 gets 2, L = 1025 (gpt2_124m's) 102, and
    L = 75 gets 8. After the cut a row keeps L n / (L + n) pauses on average (hypergeometric)."""
    for L, n, B in [(65, 6, 4000), (25, 2, 4000), (75, 8, 4000), (1025, 102, 2000)]:
        N = L + n
        out = insert_pauses(np.ones((B, L), dtype=np.int64), 0.1, 0, grade_rng)
        kept = (out == 0).sum(1)
        mean = L * n / N
        var = n * (L / N) * (n / N) * (L / (N - 1))  # of the pauses among the first L of N slots
        assert kept.max() <= n and abs(kept.mean() - mean) < 6 * np.sqrt(var / B), (L, n, kept.mean(), mean)


@pytest.mark.a2
def test_lm_targets_ignore_exactly_pause_predictions():
    P = 9
    seqs = np.array([[1, P, 2, P, P, 3, 4, P]])
    x, y = lm_targets(seqs, P)
    assert x.tolist() == [[1, P, 2, P, P, 3, 4]]
    assert y.tolist() == [[-1, 2, -1, -1, 3, 4, -1]]  # -1 exactly where the next token is a pause
    # a pause *input* followed by a real token still predicts it
    assert y[0, 1] == 2 and y[0, 4] == 3


@pytest.mark.a2
def test_lm_targets_on_random_windows(grade_rng):
    """Random windows of ids 0..8 with 7 as the pause (about 1 in 9): the targets of 12 fixed windows match
    stored fingerprints of the right ones; any windows keep their inputs as they were."""
    seqs = np.random.default_rng(2024).integers(0, 9, (12, 33))
    x, y = lm_targets(seqs, 7)
    expected = ['abe721f461', 'ddaaa80a67', '2f4b432303', '306a271fbd', 'c923198354', '786aaada38',
                '97f96183b0', 'bc9da1ad28', '53191bbd20', '8030ca0949', 'c721660288', 'c4dda29123']
    for i, want in enumerate(expected):
        assert digest(x[i], y[i]) == want, f"window {i}: {seqs[i].tolist()} gave targets {y[i].tolist()}"
    seqs = grade_rng.integers(0, 9, (50, 33))
    before = seqs.copy()
    x, y = lm_targets(seqs, 7)
    assert x.shape == y.shape == (50, 32) and (x == seqs[:, :-1]).all()
    assert (seqs == before).all() and not (x == -1).any()  # the inputs are not changed in place


@pytest.mark.a2
def test_lm_targets_returns_int64_numpy_arrays(grade_rng):
    """Numpy arrays (not tensors) of the input's dtype, int64 as the training batches are: the training
    loop turns them into tensors itself, and the loss needs int64 targets."""
    seqs = grade_rng.integers(0, 9, (4, 17))
    assert seqs.dtype == np.int64
    x, y = lm_targets(seqs, 7)
    for a in (x, y):
        assert isinstance(a, np.ndarray) and a.dtype == np.int64 and a.shape == (4, 16)


def test_pretraining_batches_carry_the_papers_pause_count():  # not graded: the batches also need A2's lm_targets
    """Through data.make_batcher (what train() uses): a window of L = block_size + 1 tokens gets
    round(0.1 * L) pauses inserted at uniform slots, then is cut back to L; every position whose next
    token is a pause has target -1. L = 58: round gives 6 pauses, floor would give 5."""
    cfg = parse_config(TINY + ["--pause_frac=0.1", "--block_size=57"], Config)
    train_set, _ = data.phase_data(cfg)
    vocab = data.task_vocab(cfg.task)
    batcher = data.make_batcher(cfg, train_set, vocab, 57)
    x, y, _ = batcher.get(4000, np.random.default_rng(0))
    P, L, n = vocab.pause_id, 58, 6
    # each of the first L - 1 of the L + n slots holds a pause with probability n / (L + n)
    expected = (L - 1) * n / (L + n)  # 5.34 (floor: 57 * 5 / 63 = 4.52)
    assert abs((x == P).sum(1).mean() - expected) < 0.1
    assert ((y == -1) == np.concatenate([x[:, 1:] == P, y[:, -1:] == -1], 1)).all()  # -1 exactly before a pause
    assert ((x == P) & (y == -1)).sum() < (x == P).sum()  # a pause input still predicts the next real token
    plain = data.make_batcher(dataclasses.replace(cfg, pause_frac=0.0), train_set, vocab, 57)
    assert not (plain.get(100, np.random.default_rng(0))[0] == P).any()


# --- pause finetuning ------------------------------------------------------------------------------


@pytest.mark.a3
def test_format_example_layout_and_targets():
    P, E = 9, 8
    x, y = format_example(np.array([1, 2, 3]), np.array([5, 6]), 2, P, E)
    # sequence: 1 2 3 P P 5 6 E ; x drops the last, y drops the first
    assert x.tolist() == [1, 2, 3, P, P, 5, 6]
    assert y.tolist() == [-1, -1, -1, -1, 5, 6, E]  # the last pause predicts the first target token
    x0, y0 = format_example(np.array([1, 2, 3]), np.array([5]), 0, P, E)
    assert x0.tolist() == [1, 2, 3, 5] and y0.tolist() == [-1, -1, 5, E]  # M=0: the standard format


@pytest.mark.a3
def test_format_example_on_random_examples():
    """12 fixed random examples (prefix, target, M) in both placements, pause 90, end token 91: x and y
    match stored fingerprints of the right ones."""
    rng = np.random.default_rng(2025)
    expected = [('a90cf69ae2', '1e1ceed489'), ('a771a4b4cb', 'c9a2a39826'), ('0a1d98feaa', '0eaeb100b5'),
                ('949cae006f', '4b97387939'), ('6fd9164e84', '6fd9164e84'), ('a8640aa904', '88d4e3d655'),
                ('f859693958', '687af74d55'), ('cf1965610b', '2f3998aa8d'), ('ee7231dc8f', 'a3ed61b284'),
                ('51fb8ad67d', '3b4e798231'), ('e55d64eaa4', '5737fc3f4b'), ('12ea1b9088', '7a5d946723')]
    for want in expected:
        prefix, target = rng.integers(0, 50, rng.integers(1, 12)), rng.integers(0, 50, rng.integers(1, 5))
        m = int(rng.integers(0, 9))
        for placement, w in zip(("append", "prepend"), want):
            x, y = format_example(prefix, target, m, 90, 91, placement)
            assert digest(x, y) == w, (f"prefix {prefix.tolist()}, target {target.tolist()}, M={m}, {placement}: "
                                       f"gave x {x.tolist()}, y {y.tolist()}")


@pytest.mark.a3
def test_format_example_prepend():
    P, E = 9, 8
    x, y = format_example(np.array([1, 2, 3]), np.array([5, 6]), 2, P, E, placement="prepend")
    assert x.tolist() == [P, P, 1, 2, 3, 5, 6]
    assert y.tolist() == [-1, -1, -1, -1, 5, 6, E]  # the last prompt token predicts the answer


@pytest.mark.a3
def test_format_example_returns_int64_numpy_arrays():
    """x and y are int64 numpy arrays (not lists, not tensors) of equal length, whatever the integer
    dtype of prefix and target, and for either placement."""
    for dtype in (np.int64, np.int32):
        for placement in ("append", "prepend"):
            for m in (0, 3):
                x, y = format_example(np.array([1, 2, 3], dtype=dtype), np.array([5, 6], dtype=dtype), m, 9, 8,
                                      placement)
                for a in (x, y):
                    assert isinstance(a, np.ndarray) and a.dtype == np.int64 and a.shape == (5 + m,)


def test_collate_pads_targets_with_ignore():
    X, Y = collate([(np.array([1, 2]), np.array([-1, 3])), (np.array([4]), np.array([5]))], pad_id=0)
    assert X.tolist() == [[1, 2], [4, 0]] and Y.tolist() == [[-1, 3], [5, -1]]


@pytest.mark.a3
@pytest.mark.parametrize("placement", ["append", "prepend"])
def test_finetuning_batches_put_the_pauses_where_placement_says(placement):
    cfg = parse_config(TINY + ["--phase=finetune", "--n_pause=5", f"--placement={placement}"], Config)
    train_set, _ = data.phase_data(cfg)
    vocab = data.task_vocab(cfg.task)
    x, y, _ = data.make_batcher(cfg, train_set, vocab, 32).get(64, np.random.default_rng(0))
    prompt_len = len(vocab.encode(train_set[0][0]))  # every keysum prompt has the same length
    pauses = x == vocab.pause_id
    assert (pauses.sum(1) == 5).all()
    where = slice(prompt_len, prompt_len + 5) if placement == "append" else slice(0, 5)
    assert pauses[:, where].all()
    first_target = prompt_len + 5 - 1  # the last pause (append) or the last prompt token (prepend)
    assert (y[:, :first_target] == -1).all() and (y[:, first_target] != -1).all()



@pytest.mark.parametrize("placement", ["append", "prepend"])
def test_downstream_finetuning_batches_put_the_pauses_where_placement_says(placement, tmp_path):
    # the same rule on a real task's file (a GSM8k fixture, full GPT-2 vocab): its own batcher branch
    rows = [{"question": f"Tom has {i} apples and buys 4. How many?", "answer": f"#### {i + 4}"} for i in range(4)]
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = parse_config(TINY + ["--phase=finetune", "--task=gsm8k", f"--train_file={tmp_path / 'g.jsonl'}",
                               "--n_val=1", "--n_pause=3", f"--placement={placement}", "--block_size=64"], Config)
    train_set, _ = data.phase_data(cfg)
    vocab = Vocab(None)
    x, y, _ = data.make_batcher(cfg, train_set, vocab, 64).get(8, np.random.default_rng(0))
    prompt_lens = {len(vocab.encode(p)) for p, _ in train_set}
    assert len(prompt_lens) == 1  # the fixture's prompts have one length, so every row has the same layout
    n = prompt_lens.pop()
    pauses = x == vocab.pause_id
    assert (pauses.sum(1) == 3).all()
    where = slice(n, n + 3) if placement == "append" else slice(0, 3)
    assert pauses[:, where].all()
    assert (y[:, :n + 3 - 1] == -1).all() and (y[:, n + 3 - 1] != -1).all()


@pytest.mark.a3
def test_finetune_loss_is_cross_entropy_over_target_positions_only():
    model = tiny()
    examples = [format_example(np.array([1, 2, 3]), np.array([4, 5]), 3, PAUSE, EOT),
                format_example(np.array([6, 7]), np.array([8]), 3, PAUSE, EOT)]
    X, Y = (torch.from_numpy(a) for a in collate(examples, EOT))
    logits, loss = model(X, Y)
    assert logits.shape == (2, 8, V)  # every position's logits; the loss reads the 5 supervised ones
    # by hand: the positions that predict a target token or the end token, nothing else
    logp = F.log_softmax(all_logits(model, X).double(), dim=-1)
    terms = [-logp[0, 5, 4], -logp[0, 6, 5], -logp[0, 7, EOT],  # 1 2 3 P P P | 4 5 E
             -logp[1, 4, 8], -logp[1, 5, EOT]]                   # 6 7 P P P | 8 E
    torch.testing.assert_close(loss.double(), torch.stack(terms).mean(), rtol=1e-5, atol=1e-6)


# --- pause inference -------------------------------------------------------------------------------


def force_pause_argmax(model):
    with torch.no_grad():  # final hidden state = c everywhere, and the pause row points along c
        c = torch.ones_like(model.transformer.ln_f.bias)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(c)
        model.lm_head.weight[PAUSE] = 10 * c


@pytest.mark.a4
def test_generate_never_emits_pause():
    model = tiny()
    force_pause_argmax(model)
    idx = torch.randint(0, 10, (4, 5))
    assert model.generate(idx, 10)[:, 5:].eq(PAUSE).all()  # without the ban: only pauses
    for greedy in (True, False):
        out = model.generate(idx, 20, greedy=greedy, ban_ids=(PAUSE,))
        assert not out[:, 5:].eq(PAUSE).any()
    out = answer(model, [[1, 2, 3]] * 3, 4, PAUSE, EOT, max_new_tokens=10)
    assert all(PAUSE not in a for a in out)


def count_rule(ctx):
    """A scripted model's next token: the pauses in the context and its length decide it; the end token
    once the context holds 12 ids."""
    return EOT if len(ctx) >= 12 else (3 * ctx.count(PAUSE) + len(ctx)) % 10


@pytest.mark.a4
def test_answer_appends_pauses_and_reads_after_them():
    """Stored outputs of a scripted model: M = 0 is cut at max_new_tokens, M = 5 at the end token."""
    model = Scripted(count_rule)
    expected = {0: [4, 5, 6, 7, 8, 9], 1: [8, 9, 0, 1, 2, 3], 5: [4, 5, 6]}
    for m, want in expected.items():
        assert answer(model, [[1, 2, 3, 4]], m, PAUSE, EOT, max_new_tokens=6) == [want], f"M={m}"


def where_rule(ctx):
    """A scripted model's next token: which token fills the slots, and whether they come first, decide it."""
    return EOT if len(ctx) >= 10 else (len(ctx) + 2 * ctx.count(10) + 5 * (ctx[0] == PAUSE)) % 10


@pytest.mark.a4
def test_answer_with_dots_or_prepended_pauses():
    model, DOT = Scripted(where_rule), 10
    assert answer(model, [[1, 2, 3]], 4, PAUSE, EOT, max_new_tokens=5) == [[7, 8, 9]]
    assert answer(model, [[1, 2, 3]], 4, PAUSE, EOT, max_new_tokens=5, filler_id=DOT) == [[5, 6, 7]]
    assert answer(model, [[1, 2, 3]], 4, PAUSE, EOT, max_new_tokens=5, placement="prepend") == [[2, 3, 4]]


@pytest.mark.a4
def test_batched_answers_equal_one_at_a_time(grade_seed, grade_rng):
    model = tiny(2 + grade_seed)
    rng = grade_rng
    prompts = [rng.integers(0, 10, rng.integers(2, 7)).tolist() for _ in range(12)]
    batched = answer(model, prompts, 3, PAUSE, EOT, max_new_tokens=5, batch_size=4)
    single = [answer(model, [p], 3, PAUSE, EOT, max_new_tokens=5)[0] for p in prompts]
    assert batched == single


@pytest.mark.a4
def test_answer_refuses_what_does_not_fit():
    model = tiny()
    import pytest
    with pytest.raises(ValueError, match="block_size"):
        answer(model, [[1] * 20], 10, PAUSE, EOT, max_new_tokens=5)


@pytest.mark.a4
@pytest.mark.parametrize("placement", ["append", "prepend"])
def test_answer_takes_what_fits_exactly_and_refuses_one_more(placement):
    """The fit rule: prompt + M pauses + max_new_tokens - 1 <= block_size (the last new token is never fed
    back to the model, so it needs no position). A scripted model with block_size 32."""
    model = Successor({PAUSE: 5, 1: 5, 5: 6, 6: 5})
    assert model.config.block_size == 32
    assert answer(model, [[1] * 20], 5, PAUSE, EOT, max_new_tokens=8, placement=placement) == [[5, 6] * 4]
    assert answer(model, [[1] * 3, [1] * 20, [1] * 24], 5, PAUSE, EOT, max_new_tokens=4,
                  placement=placement) == [[5, 6] * 2] * 3  # 24 + 5 + 4 - 1 = 32
    for prompts, max_new in [([[1] * 21], 8), ([[1] * 20], 9), ([[1] * 3, [1] * 25], 4)]:
        with pytest.raises(ValueError, match="block_size"):
            answer(model, prompts, 5, PAUSE, EOT, max_new_tokens=max_new, placement=placement)


@pytest.mark.a4
def test_generate_stops_only_when_every_row_has_ended():
    model = Successor({1: 2, 2: EOT, 5: 6, 6: 7, 7: 8, 8: 9, 9: EOT, EOT: 0})
    out = model.generate(torch.tensor([[1], [5]]), 10, stop_id=EOT)
    assert out[1, 1:].tolist() == [6, 7, 8, 9, EOT]  # row 1 goes on after row 0 has ended
    assert out[0, 1:3].tolist() == [2, EOT]
    assert answer(model, [[1], [5]], 0, PAUSE, EOT, max_new_tokens=10) == [[2], [6, 7, 8, 9]]  # no end token


def pause_first_rule(ctx):
    """A scripted model that would rather pause after anything: its first choice is the pause, its
    second a token set by the context's length; the end token once the context holds 12 ids."""
    return EOT if len(ctx) >= 12 else [PAUSE, len(ctx) % 10]


@pytest.mark.a4
def test_answer_bans_the_pause_while_decoding_not_afterwards():
    """A banned pause is never chosen, so the model's second choice is its answer, step after step. Letting
    the model pick pauses and dropping them from the answer afterwards is another model's answer: here it
    would be nothing at all (the model pauses until its context is full)."""
    model = Scripted(pause_first_rule)
    assert model.generate(torch.tensor([[1, 2, 3] + [PAUSE] * 3]), 3)[0, 6:].tolist() == [PAUSE] * 3  # unbanned
    assert answer(model, [[1, 2, 3]], 3, PAUSE, EOT, max_new_tokens=8) == [[6, 7, 8, 9, 0, 1]]
    assert answer(model, [[1, 2, 3, 4, 5], [1]], 0, PAUSE, EOT, max_new_tokens=8) == [[5, 6, 7, 8, 9, 0, 1],
                                                                                    [1, 2, 3, 4, 5, 6, 7, 8]]


@pytest.mark.a4
def test_answer_never_produces_padding_ids_of_the_full_vocab():
    vocab = Vocab(None)
    padding = 50300  # a row of the padded 50304-wide head that is no token
    assert padding in vocab.unused_ids and 50257 not in vocab.unused_ids and 50256 not in vocab.unused_ids
    # after the pauses (and after anything) the scripted model's top choice is the padding id: only the
    # ban keeps it out, and the next best (every other logit ties at 0) is id 0
    model = Successor({t: padding for t in (1, 2, 0, vocab.pause_id)}, vocab_size=vocab.size)
    out = answer(model, [[1, 2]], 2, vocab.pause_id, vocab.eot_id, max_new_tokens=3, ban_ids=vocab.unused_ids)[0]
    assert out == [0, 0, 0]
    vocab.decode(out)  # decodable: a padding id would raise KeyError here
    assert Vocab.compact([1, 2, 3]).unused_ids == ()  # a compact vocab has no padding rows


@pytest.mark.parametrize("placement", ["append", "prepend"])
def test_choice_likelihood_after_pauses_matches_a_full_forward(placement):
    vocab = Vocab(None)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=64, vocab_size=vocab.size, n_layer=1, n_head=1, n_embd=8)).eval()
    prefix, choice, m = vocab.encode("The cat sat on the"), vocab.encode(" warm mat"), 3
    pauses = [vocab.pause_id] * m
    head = list(prefix) + pauses if placement == "append" else pauses + list(prefix)
    seq = torch.tensor(head + list(choice))
    with torch.no_grad():
        logits, _ = model(seq[None], torch.zeros_like(seq)[None])
    logp = torch.log_softmax(logits.view(len(seq), -1), -1)
    start = len(head)  # the first choice token; it is predicted by the position before it
    expected = sum(logp[start - 1 + i, t].item() for i, t in enumerate(choice))
    got = choice_logprob(model, prefix, choice, m, vocab.pause_id, vocab.eot_id, placement)
    assert got == pytest.approx(expected, rel=1e-5)
    if placement == "prepend":  # the same pauses after the prompt give another likelihood
        assert choice_logprob(model, prefix, choice, m, vocab.pause_id, vocab.eot_id) != pytest.approx(got)
    examples = [{"prefix": "The cat sat on the", "choices": [" warm mat", " moon", " idea"], "label": k}
                for k in range(3)]
    scores = [choice_logprob(model, prefix, vocab.encode(c), m, vocab.pause_id, vocab.eot_id, placement)
              for c in examples[0]["choices"]]
    best = int(max(range(3), key=lambda i: scores[i]))
    acc, _ = downstream.rank_accuracy(model, vocab, examples, m, placement=placement)
    assert acc == pytest.approx(1 / 3)  # right for label == best only
    assert downstream.rank_accuracy(model, vocab, [examples[best]], m, placement=placement)[0] == 1.0


def test_finetuning_batches_take_one_pause_count_per_example():
    """Mixed pause counts: Batcher(n_pause=[...]) formats each example with its own number of pauses."""
    vocab = data.task_vocab("keysum")
    pairs = data.encode_pairs(data.make_examples("keysum", 6, "train", 0), vocab)
    counts = [0, 1, 2, 3, 4, 8]
    batcher = data.Batcher(vocab, examples=pairs, block_size=32, n_pause=counts)
    assert ((batcher.X == vocab.pause_id).sum(1) == counts).all()
    for (p, t), m, x, y in zip(pairs, counts, batcher.X, batcher.Y):
        fx, fy = format_example(p, t, m, vocab.pause_id, vocab.eot_id)
        assert (x[:len(fx)] == fx).all() and (y[:len(fy)] == fy).all() and (y[len(fy):] == -1).all()


# --- pause hints (not in the paper): a supervised job for each pause slot ---------------------------


@pytest.mark.a3
def test_format_example_hints_go_to_the_pause_slots_and_the_last_pause_keeps_the_answer():
    P, E = 9, 8
    x, y = format_example(np.array([1, 2, 3]), np.array([5]), 3, P, E, hints=np.array([20, 21, 22, 23]))
    assert x.tolist() == [1, 2, 3, P, P, P, 5]
    assert y.tolist() == [-1, -1, -1, 20, 21, 5, E]  # pauses 0 and 1 hinted; the last pause predicts the answer
    x0, y0 = format_example(np.array([1, 2, 3]), np.array([5]), 3, P, E)
    assert (x0 == x).all() and y0.tolist() == [-1, -1, -1, -1, -1, 5, E]  # hints change targets, never inputs
    _, y1 = format_example(np.array([1, 2, 3]), np.array([5]), 1, P, E, hints=np.array([20]))
    assert y1.tolist() == [-1, -1, -1, 5, E]  # one pause: it must predict the answer, no room for a hint
    with pytest.raises(ValueError, match="appended"):
        format_example(np.array([1, 2, 3]), np.array([5]), 3, P, E, placement="prepend", hints=np.array([20]))


@pytest.mark.a3
def test_format_example_input_hints_supervise_the_prompt_positions():
    P, E = 9, 8
    _, y = format_example(np.array([1, 2, 3]), np.array([5]), 0, P, E, input_hints=np.array([30, 31, -1]))
    assert y.tolist() == [30, 31, 5, E]  # prompt positions 0 and 1 predict their hints, not the next token
    _, y = format_example(np.array([1, 2, 3]), np.array([5]), 2, P, E, placement="prepend",
                          input_hints=np.array([30, -1, -1]))
    assert y.tolist() == [-1, -1, 30, -1, 5, E]
    with pytest.raises(ValueError, match="-1 at the last"):
        format_example(np.array([1, 2, 3]), np.array([5]), 0, P, E, input_hints=np.array([30, 31, 32]))


def test_hinted_batches_carry_the_tasks_hints(monkeypatch):
    """Through data.make_batcher: on keyparity, pause j's target says whether exactly j digits are above
    the key; the prompt and the answer are untouched."""
    cfg = parse_config(TINY + ["--phase=finetune", "--task=keyparity", "--n_pause=10", "--hints=True"], Config)
    train_set, _ = data.phase_data(cfg)
    vocab = data.task_vocab(cfg.task)
    x, y, w = data.make_batcher(cfg, train_set, vocab, 32).get(200, np.random.default_rng(0))
    assert w is None  # hint_weight 1: a plain mean, no weights
    one, zero = vocab.encode(" 1")[0], vocab.encode(" 0")[0]
    for xr, yr in zip(x, y):
        prompt = vocab.decode(xr[:11])  # "d d d d d d d d | k ="
        digits, key = [int(d) for d in prompt.split()[:8]], int(prompt.split()[9])
        above = sum(d > key for d in digits)
        assert yr[11:20].tolist() == [one if j == above else zero for j in range(9)]  # pauses 0..8
        assert yr[20] == vocab.encode(f" {above % 2}")[0] and (yr[:11] == -1).all()  # the last pause: the answer


def test_hint_weight_weighs_only_hinted_positions():
    cfg = parse_config(TINY + ["--phase=finetune", "--task=keyparity", "--n_pause=10", "--hints=True",
                               "--hint_weight=0.25"], Config)
    train_set, _ = data.phase_data(cfg)
    vocab = data.task_vocab(cfg.task)
    x, y, w = data.make_batcher(cfg, train_set, vocab, 32).get(8, np.random.default_rng(0))
    assert (w[:, 11:20] == 0.25).all() and (w[:, 20:22] == 1).all()
    y, w = torch.from_numpy(y), torch.from_numpy(w)
    logits = torch.randn(*y.shape, vocab.size)  # the model's: every position
    ce = F.cross_entropy(logits[y != -1], y[y != -1], reduction="none")
    by_hand = (0.25 * ce[(w[y != -1] == 0.25)].sum() + ce[w[y != -1] == 1].sum()) / (0.25 * 9 + 2) / 8
    assert pause.weighted_loss(logits, y, w).item() == pytest.approx(by_hand.item(), rel=1e-5)
    ones = torch.ones_like(w)
    assert pause.weighted_loss(logits, y, ones).item() == pytest.approx(F.cross_entropy(logits[y != -1], y[y != -1]).item(),
                                                                        rel=1e-6)


def test_mixed_pause_counts_through_the_training_batches():
    cfg = parse_config(TINY + ["--phase=finetune", "--n_pause=8", "--n_pause_min=4"], Config)
    train_set, _ = data.phase_data(cfg)
    vocab = data.task_vocab(cfg.task)
    batcher = data.make_batcher(cfg, train_set, vocab, 32)
    counts = (batcher.X == vocab.pause_id).sum(1)
    assert counts.min() == 4 and counts.max() == 8 and set(np.unique(counts)) == set(range(4, 9))


def test_greedy_decoding_outside_the_fast_path_never_emits_a_banned_id():
    """The ban must hold where greedy decoding does not go through the Decoder: recomputing the context
    (use_cache=False), and a model with no Decoder (decoder() is None, as on a GPU). Here the banned id
    has the highest logit at every step, so an unbanned argmax would pick it."""
    model = tiny()
    force_pause_argmax(model)
    idx = torch.randint(0, 10, (4, 5))
    assert model.generate(idx, 6, use_cache=False)[:, 5:].eq(PAUSE).all()  # unbanned: only pauses
    out = model.generate(idx, 6, use_cache=False, ban_ids=(PAUSE,))
    assert not out[:, 5:].eq(PAUSE).any()
    assert torch.equal(out, model.generate(idx, 6, ban_ids=(PAUSE,)))  # what the fast path gives
    vocab = Vocab(None)
    P, padding = vocab.pause_id, 50300  # the pause, and a padding row of the full vocab (in vocab.unused_ids)
    script = Successor({1: P, 2: padding, P: P, 0: padding}, vocab_size=vocab.size)
    assert script.generate(torch.tensor([[1], [2]]), 3)[:, 1].tolist() == [P, padding]  # unbanned: their argmax
    out = script.generate(torch.tensor([[1], [2]]), 3, ban_ids=(P, padding))[:, 1:]
    assert not (out == P).any() and not (out == padding).any()
    got = answer(script, [[1, 2]], 2, P, vocab.eot_id, max_new_tokens=3, ban_ids=vocab.unused_ids)[0]
    assert len(got) == 3 and P not in got and padding not in got  # after the pauses: the pause, then padding


@pytest.mark.parametrize("int8", [True, False])
def test_cpu_fast_decoding_never_emits_a_banned_id(int8, monkeypatch):
    """The scorers decode through decode.fast on a CPU: a Decoder with its own argmax (the int8 head,
    rescored in float32, or the float32 head). A real full-vocab GPT whose head puts the pause first and
    every padding row of the vocab next, far above any token: pause.answer through it never gives the
    pause, and train.accuracy never produces a padding id (nor the pause) in any answer it scores."""
    import decode
    import train
    monkeypatch.setattr(decode, "Decoder", lambda model, real=decode.Decoder: real(model, int8=int8))
    vocab = Vocab(None)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=vocab.size, n_layer=1, n_head=2, n_embd=32)).eval()
    with torch.no_grad():  # the final hidden state is c at every position; the banned rows point along c
        c = torch.ones_like(model.transformer.ln_f.bias)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(c)
        model.lm_head.weight[list(vocab.unused_ids)] = 5 * c
        model.lm_head.weight[vocab.pause_id] = 10 * c
    dec = decode.decoder(model)
    assert dec is not None and (dec.q8 is not None) == int8  # the fast path, with the head asked for
    idx = torch.tensor([vocab.encode("1 2 3 =").tolist() + [vocab.pause_id] * 2])
    assert model.generate(idx, 3)[0, -3:].tolist() == [vocab.pause_id] * 3  # unbanned: only pauses
    assert model.generate(idx, 3, ban_ids=(vocab.pause_id,))[0, -1] in vocab.unused_ids  # then padding
    got = answer(decode.fast(model), [idx[0, :-2].tolist()] * 2, 2, vocab.pause_id, vocab.eot_id, max_new_tokens=4,
                 ban_ids=vocab.unused_ids)
    assert len(got) == 2 and all(len(a) == 4 and vocab.pause_id not in a and not set(a) & set(vocab.unused_ids)
                                 for a in got)
    scored = []

    def answer_and_keep(*args, **kwargs):  # the answers train.accuracy scores
        scored.extend(answer(*args, **kwargs))
        return scored[-len(args[1]):]
    monkeypatch.setattr(train, "answer", answer_and_keep)
    pairs = [("1 2 3 =", " 1"), ("4 5 6 =", " 0"), ("7 8 9 =", " 1")]
    assert train.accuracy(model, vocab, pairs, 2) == 0.0  # a padding id would make decode() raise KeyError
    assert len(scored) == 3 and all(a and vocab.pause_id not in a and not set(a) & set(vocab.unused_ids)
                                    for a in scored)
