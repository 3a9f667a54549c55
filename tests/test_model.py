"""model.py: causality, the masked loss, generation that never emits a pause, pause-aware answers."""
import numpy as np
import torch
import torch.nn.functional as F

from data import collate, format_example
from model import GPT, GPTConfig, answer

V, PAUSE, EOT = 13, 11, 12


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(block_size=32, vocab_size=V, n_layer=2, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**cfg, **kw})).eval()


def all_logits(model, idx):
    """(B, T, V) logits at every position: with every target kept, the head runs everywhere."""
    logits, _ = model(idx, torch.zeros_like(idx))
    return logits.view(*idx.shape, -1)


def test_causality():
    model = tiny()
    idx = torch.randint(0, V, (2, 20))
    logits = all_logits(model, idx)
    changed = idx.clone()
    changed[:, 12] = (changed[:, 12] + 1) % V
    logits2 = all_logits(model, changed)
    assert torch.equal(logits[:, :12], logits2[:, :12])  # earlier positions untouched
    assert not torch.allclose(logits[:, 12:], logits2[:, 12:])


def test_inference_returns_last_position_only():
    model = tiny()
    idx = torch.randint(0, V, (3, 10))
    last, loss = model(idx)
    full = all_logits(model, idx)
    assert loss is None and last.shape == (3, 1, V)
    torch.testing.assert_close(last[:, 0], full[:, -1])


def test_finetune_loss_is_cross_entropy_over_target_positions_only():
    model = tiny()
    examples = [format_example(np.array([1, 2, 3]), np.array([4, 5]), 3, PAUSE, EOT),
                format_example(np.array([6, 7]), np.array([8]), 3, PAUSE, EOT)]
    X, Y = (torch.from_numpy(a) for a in collate(examples, EOT))
    logits, loss = model(X, Y)
    assert logits.shape == (5, V)  # the head ran at the 5 supervised positions only
    # by hand: the positions that predict a target token or the end token, nothing else
    logp = F.log_softmax(all_logits(model, X).double(), dim=-1)
    terms = [-logp[0, 5, 4], -logp[0, 6, 5], -logp[0, 7, EOT],  # 1 2 3 P P P | 4 5 E
             -logp[1, 4, 8], -logp[1, 5, EOT]]                   # 6 7 P P P | 8 E
    torch.testing.assert_close(loss.double(), torch.stack(terms).mean(), rtol=1e-5, atol=1e-6)


def test_masked_head_loss_equals_full_head_loss():
    model = tiny(3)
    idx = torch.randint(0, V, (4, 24))
    targets = torch.randint(0, V, (4, 24))
    targets[torch.rand(4, 24) < 0.7] = -1
    _, loss = model(idx, targets)
    full = all_logits(model, idx)
    ref = F.cross_entropy(full.view(-1, V), targets.view(-1), ignore_index=-1)  # nanoGPT's way
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    loss.backward()  # and gradients flow through the gathered positions
    assert model.lm_head.weight.grad.abs().sum() > 0


def force_pause_argmax(model):
    with torch.no_grad():  # final hidden state = c everywhere, and the pause row points along c
        c = torch.ones_like(model.transformer.ln_f.bias)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(c)
        model.lm_head.weight[PAUSE] = 10 * c


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


def reference_answer(model, prompt, n_pause, max_new):
    """Spelled out: prompt + pauses through plain greedy generation, output after the last pause,
    cut at the end token."""
    idx = torch.tensor([prompt + [PAUSE] * n_pause])
    out = model.generate(idx, max_new, ban_ids=(PAUSE,))[0, idx.size(1):].tolist()
    return out[:out.index(EOT)] if EOT in out else out


def test_answer_appends_pauses_and_reads_after_them():
    model = tiny(1)
    for m in (0, 1, 5):
        assert answer(model, [[1, 2, 3, 4]], m, PAUSE, EOT, max_new_tokens=6)[0] == \
            reference_answer(model, [1, 2, 3, 4], m, 6)


def test_answer_with_dots_or_prepended_pauses():
    model = tiny(7)
    DOT = 10
    got = answer(model, [[1, 2, 3]], 4, PAUSE, EOT, max_new_tokens=5, filler_id=DOT)[0]
    ref = model.generate(torch.tensor([[1, 2, 3] + [DOT] * 4]), 5, ban_ids=(PAUSE,))[0, 7:].tolist()
    assert got == (ref[:ref.index(EOT)] if EOT in ref else ref)
    got = answer(model, [[1, 2, 3]], 4, PAUSE, EOT, max_new_tokens=5, placement="prepend")[0]
    ref = model.generate(torch.tensor([[PAUSE] * 4 + [1, 2, 3]]), 5, ban_ids=(PAUSE,))[0, 7:].tolist()
    assert got == (ref[:ref.index(EOT)] if EOT in ref else ref)


def test_batched_answers_equal_one_at_a_time():
    model = tiny(2)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, 10, rng.integers(2, 7)).tolist() for _ in range(12)]
    batched = answer(model, prompts, 3, PAUSE, EOT, max_new_tokens=5, batch_size=4)
    single = [answer(model, [p], 3, PAUSE, EOT, max_new_tokens=5)[0] for p in prompts]
    assert batched == single


def test_answer_refuses_what_does_not_fit():
    model = tiny()
    import pytest
    with pytest.raises(ValueError, match="block_size"):
        answer(model, [[1] * 20], 10, PAUSE, EOT, max_new_tokens=5)


# --- KV cache --------------------------------------------------------------------------------------

def test_kv_cache_greedy_equals_recompute_random_weights():
    for seed in range(3):
        model = tiny(seed, block_size=40)
        idx = torch.randint(0, V, (5, 9))
        cached = model.generate(idx, 25, use_cache=True)
        plain = model.generate(idx, 25, use_cache=False)
        assert torch.equal(cached, plain)


def test_kv_cache_chunks_give_the_same_logits():
    model = tiny(4)
    from model import KVCache
    idx = torch.randint(0, V, (2, 20))
    full = all_logits(model, idx)
    cache = KVCache(model, 2)
    for a, b in [(0, 7), (7, 8), (8, 15), (15, 20)]:  # prefill, one token, several tokens after a past
        last, _ = model(idx[:, a:b], cache=cache)
        torch.testing.assert_close(last[:, 0], full[:, b - 1], rtol=1e-5, atol=1e-5)
    assert cache.pos == 20


def test_kv_cache_in_batches_equals_rows_alone():
    model = tiny(5)
    idx = torch.randint(0, V, (6, 7))
    batched = model.generate(idx, 12, ban_ids=(PAUSE,))
    for r in range(6):
        assert torch.equal(batched[r:r + 1], model.generate(idx[r:r + 1], 12, ban_ids=(PAUSE,)))


def test_kv_cache_respects_block_size():
    import pytest
    model = tiny(block_size=16)
    idx = torch.randint(0, V, (1, 10))
    assert model.generate(idx, 7).shape == (1, 17)  # the 7th token is never fed back: fits
    with pytest.raises(ValueError, match="block_size"):
        model.generate(idx, 8)
    assert model.generate(idx, 8, use_cache=False).shape == (1, 18)  # recompute crops, as documented


def test_kv_cache_greedy_equals_recompute_trained_checkpoint(tmp_path):
    import train
    from data import make_examples
    cfg = train.parse_config(["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=48", "--batch_size=16",
                              "--n_pretrain=2000", "--n_val=50", "--eval_iters=1", "--max_iters=150",
                              "--learning_rate=3e-3", "--progress=False", f"--out_dir={tmp_path}"])
    model, vocab, _ = train.load_checkpoint(train.train(cfg)["ckpt"])
    model.eval()
    prompts = [vocab.encode(p) for p, _ in make_examples("keysum", 20, "test", 0)]
    for m in (0, 6):
        idx = torch.tensor([list(p) + [vocab.pause_id] * m for p in prompts])
        cached = model.generate(idx, 20, ban_ids=(vocab.pause_id,))
        assert torch.equal(cached, model.generate(idx, 20, ban_ids=(vocab.pause_id,), use_cache=False))
        assert cached[:, idx.size(1):].eq(vocab.eot_id).any()  # trained: it does end its answers


def test_decoding_head_copy_follows_weight_updates():
    model = tiny(6)
    idx = torch.randint(0, V, (2, 5))
    before = model.generate(idx, 6)
    with torch.no_grad():
        model.lm_head.weight.mul_(-1)  # in place, as an optimizer step would
    after = model.generate(idx, 6)
    assert torch.equal(after, model.generate(idx, 6, use_cache=False))
    assert not torch.equal(before, after)


class Successor(GPT):
    """A GPT whose next token is a fixed function of the last token (next_of[last]); it still goes
    through generate's cache and stopping logic, so those can be tested with exact outputs."""

    def __init__(self, next_of, vocab_size=V):
        super().__init__(GPTConfig(block_size=32, vocab_size=vocab_size, n_layer=1, n_head=1, n_embd=8))
        self.next_of = next_of

    def forward(self, idx, targets=None, cache=None):
        if cache is not None:
            cache.pos += idx.size(1)
        logits = torch.zeros(idx.size(0), 1, self.config.vocab_size)
        logits[torch.arange(idx.size(0)), 0, [self.next_of.get(int(t), 0) for t in idx[:, -1]]] = 1.0
        return logits, None


def test_generate_stops_only_when_every_row_has_ended():
    model = Successor({1: 2, 2: EOT, 5: 6, 6: 7, 7: 8, 8: 9, 9: EOT, EOT: 0})
    out = model.generate(torch.tensor([[1], [5]]), 10, stop_id=EOT)
    assert out[1, 1:].tolist() == [6, 7, 8, 9, EOT]  # row 1 goes on after row 0 has ended
    assert out[0, 1:3].tolist() == [2, EOT]
    assert answer(model, [[1], [5]], 0, PAUSE, EOT, max_new_tokens=10) == [[2], [6, 7, 8, 9]]  # no end token


def test_answer_never_produces_padding_ids_of_the_full_vocab():
    from data import Vocab
    vocab = Vocab(None)
    padding = 50300  # a row of the padded 50304-wide head that is no token
    assert padding in vocab.unused_ids and 50257 not in vocab.unused_ids and 50256 not in vocab.unused_ids
    model = Successor({1: padding, 2: padding}, vocab_size=vocab.size)
    out = answer(model, [[1, 2]], 2, vocab.pause_id, vocab.eot_id, max_new_tokens=3, ban_ids=vocab.unused_ids)[0]
    assert len(out) == 3 and all(t < vocab.pause_id for t in out)
    vocab.decode(out)  # decodable: a padding id would raise KeyError here
    assert Vocab.compact([1, 2, 3]).unused_ids == ()  # a compact vocab has no padding rows
