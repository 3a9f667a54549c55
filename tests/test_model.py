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


def test_causality():
    model = tiny()
    idx = torch.randint(0, V, (2, 20))
    logits, _ = model(idx, torch.zeros_like(idx))
    changed = idx.clone()
    changed[:, 12] = (changed[:, 12] + 1) % V
    logits2, _ = model(changed, torch.zeros_like(idx))
    assert torch.equal(logits[:, :12], logits2[:, :12])  # earlier positions untouched
    assert not torch.allclose(logits[:, 12:], logits2[:, 12:])


def test_inference_returns_last_position_only():
    model = tiny()
    idx = torch.randint(0, V, (3, 10))
    last, loss = model(idx)
    full, _ = model(idx, torch.zeros_like(idx))
    assert loss is None and last.shape == (3, 1, V)
    torch.testing.assert_close(last[:, 0], full[:, -1])


def test_finetune_loss_is_cross_entropy_over_target_positions_only():
    model = tiny()
    examples = [format_example(np.array([1, 2, 3]), np.array([4, 5]), 3, PAUSE, EOT),
                format_example(np.array([6, 7]), np.array([8]), 3, PAUSE, EOT)]
    X, Y = (torch.from_numpy(a) for a in collate(examples, EOT))
    logits, loss = model(X, Y)
    # by hand: the positions that predict a target token or the end token, nothing else
    logp = F.log_softmax(logits.double(), dim=-1)
    terms = [-logp[0, 5, 4], -logp[0, 6, 5], -logp[0, 7, EOT],  # 1 2 3 P P P | 4 5 E
             -logp[1, 4, 8], -logp[1, 5, EOT]]                   # 6 7 P P P | 8 E
    torch.testing.assert_close(loss.double(), torch.stack(terms).mean(), rtol=1e-5, atol=1e-6)
    assert (Y != -1).sum() == 5  # prefix, pause and padding positions are all ignored


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
