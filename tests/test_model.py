"""model.py: causality, the masked loss, the last-position head, the KV cache."""
import pytest
import torch
import torch.nn.functional as F

import decode

from tiny import PAUSE, V, all_logits, tiny


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


# --- KV cache --------------------------------------------------------------------------------------

@pytest.mark.a5
def test_kv_cache_greedy_equals_recompute_random_weights(grade_seed):
    for seed in range(3 * grade_seed, 3 * grade_seed + 3):
        model = tiny(seed, block_size=40)
        idx = torch.randint(0, V, (5, 9))
        cached = model.generate(idx, 25, use_cache=True)
        plain = model.generate(idx, 25, use_cache=False)
        assert torch.equal(cached, plain)


@pytest.mark.a5
def test_kv_cache_chunks_give_the_same_logits(grade_seed):
    model = tiny(4 + grade_seed)
    from model import KVCache
    idx = torch.randint(0, V, (2, 20))
    full = all_logits(model, idx)
    cache = KVCache(model, 2)
    for a, b in [(0, 7), (7, 8), (8, 15), (15, 20)]:  # prefill, one token, several tokens after a past
        last, _ = model(idx[:, a:b], cache=cache)
        torch.testing.assert_close(last[:, 0], full[:, b - 1], rtol=1e-5, atol=1e-5)
    assert cache.pos == 20


@pytest.mark.a5
def test_kv_cache_chunks_after_a_past_give_every_position(grade_seed):
    """Several new queries after a cached past, twice in a row (and once more after a one-token step):
    every position's final hidden state equals the full forward's, not only the last one's, so each
    query must see exactly the keys 0 .. pos + i. GPT.hidden advances cache.pos by each chunk's length."""
    from model import KVCache
    model = tiny(8 + grade_seed, n_layer=3, n_head=4, n_embd=32)
    idx = torch.randint(0, V, (3, 24))
    full = model.hidden(idx)
    cache = KVCache(model, 3)
    for a, b in [(0, 5), (5, 11), (11, 16), (16, 17), (17, 24)]:
        torch.testing.assert_close(model.hidden(idx[:, a:b], cache), full[:, a:b], rtol=1e-5, atol=1e-5)
        assert cache.pos == b


@pytest.mark.a5
def test_kv_cache_in_the_models_dtype_bf16_generates_as_without_cache(grade_seed):
    """A bfloat16 model (as a GPU run decodes under autocast): the cache holds keys and values in the
    keys' own dtype, and greedy generation with it equals recomputing the context, exactly."""
    for seed in range(2 * grade_seed, 2 * grade_seed + 2):
        model = tiny(seed, block_size=40).to(torch.bfloat16)
        idx = torch.randint(0, V, (4, 9))
        cached = model.generate(idx, 20)
        assert torch.equal(cached, model.generate(idx, 20, use_cache=False))


@pytest.mark.a5
def test_kv_cache_on_the_keys_device_not_the_default_one(grade_seed):
    """The cache (and the shifted mask) live on the device of the keys, whatever torch's default device
    is: a model on a GPU in a process whose default device is the CPU. Here the model is on the CPU
    and the default device is "meta" (tensors with no data): anything made there breaks the result."""
    from model import KVCache
    model = tiny(12 + grade_seed)
    idx = torch.randint(0, V, (3, 12))
    plain, full = model.generate(idx, 10, use_cache=False), model.hidden(idx)
    with torch.device("meta"):
        cached = model.generate(idx, 10)
        cache = KVCache(model, 3)
        chunks = [model.hidden(idx[:, a:b], cache) for a, b in [(0, 4), (4, 9), (9, 12)]]
    assert cached.device == idx.device and torch.equal(cached, plain)
    torch.testing.assert_close(torch.cat(chunks, 1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.a5
def test_kv_cache_in_batches_equals_rows_alone():
    model = tiny(5)
    idx = torch.randint(0, V, (6, 7))
    batched = model.generate(idx, 12, ban_ids=(PAUSE,))
    for r in range(6):
        assert torch.equal(batched[r:r + 1], model.generate(idx[r:r + 1], 12, ban_ids=(PAUSE,)))


@pytest.mark.a5
def test_kv_cache_respects_block_size():
    import pytest
    model = tiny(block_size=16)
    idx = torch.randint(0, V, (1, 10))
    assert model.generate(idx, 7).shape == (1, 17)  # the 7th token is never fed back: fits
    with pytest.raises(ValueError, match="block_size"):
        model.generate(idx, 8)
    assert model.generate(idx, 8, use_cache=False).shape == (1, 18)  # recompute crops, as documented


@pytest.mark.a5
def test_kv_cache_greedy_equals_recompute_trained_checkpoint(tmp_path):
    import train
    from tasks import make_examples
    cfg = train.Config(n_layer=2, n_head=2, n_embd=32, block_size=48, batch_size=16, n_pretrain=2000, n_val=50,
                       eval_iters=1, max_iters=150, learning_rate=3e-3, progress=False, out_dir=str(tmp_path))
    model, vocab, _ = train.load_checkpoint(train.train(cfg)["ckpt"])
    model.eval()
    prompts = [vocab.encode(p) for p, _ in make_examples("keysum", 20, "test", 0)]
    for m in (0, 6):
        idx = torch.tensor([list(p) + [vocab.pause_id] * m for p in prompts])
        cached = model.generate(idx, 20, ban_ids=(vocab.pause_id,))
        assert torch.equal(cached, model.generate(idx, 20, ban_ids=(vocab.pause_id,), use_cache=False))
        assert cached[:, idx.size(1):].eq(vocab.eot_id).any()  # trained: it does end its answers


@pytest.mark.a5
@pytest.mark.parametrize("vocab", [V, 50304])
def test_decoder_copies_follow_weight_updates(vocab):
    """The Decoder keeps its own copies of the weights (the transposed head; for a full vocab the
    blocks' and the int8 head too): an in-place update of the head or of a block, as an optimizer step
    makes, must reach the next generate."""
    from model import GPT, GPTConfig
    torch.manual_seed(6)
    model = tiny(6) if vocab == V else GPT(GPTConfig(block_size=32, vocab_size=vocab, n_layer=2, n_head=2, n_embd=32)).eval()
    idx = torch.randint(0, min(vocab, 50257), (2, 5))
    weights = [model.lm_head.weight] + ([model.transformer.h[1].mlp.c_fc.weight] if vocab > V else [])
    for weight in weights:
        before = decode.generate(model, idx, 6)
        with torch.no_grad():
            weight.mul_(-1)  # in place, as an optimizer step would
        after = decode.generate(model, idx, 6)
        assert torch.equal(after, model.generate(idx, 6, use_cache=False))
        assert not torch.equal(before, after)


def test_int8_argmax_head_gives_the_fp32_argmax_even_in_near_ties():
    """Decoder.argmax reads an int8 copy of the head and rescores the candidates in fp32: on random
    heads, and on heads built with near-ties far below int8's resolution, it must pick what the fp32
    head's argmax picks (the int8 path is forced here, whether or not this CPU makes it faster)."""
    from decode import Decoder
    from model import GPT, GPTConfig
    g = torch.Generator().manual_seed(0)
    V, C = 4096, 64
    model = GPT(GPTConfig(block_size=8, vocab_size=V, n_layer=1, n_head=1, n_embd=C))
    w = model.lm_head.weight.detach()
    w.copy_(torch.randn(V, C, generator=g) * 0.05)
    w[7] = w[3] + 1e-6 * torch.randn(C, generator=g)  # rows 3 and 7 tie to ~1e-6: int8 cannot tell them apart
    w[11] = 0  # a zero row: its scale must not divide by zero
    w[20, 0] = 10.0  # an outlier: the row's other weights mostly round to 0, its residual is large
    head = Decoder(model, int8=True)
    h = torch.randn(500, C, generator=g)
    h[:250] = w[3] * 40 + 0.01 * torch.randn(250, C, generator=g)  # rows that want token 3 or 7
    residual = w[20] - head.q8[20].float() * head.scale[20].float()
    h[250:260] = residual / residual.norm() * torch.arange(1, 11)[:, None]  # the worst case for row 20
    exact = h @ head.wt
    approx = head._approx(h).float()  # the bound the candidates rest on holds
    assert ((approx - exact).abs() <= head.bound * h.norm(dim=1, keepdim=True)).all()
    assert torch.equal(head.argmax(h).ravel(), exact.argmax(dim=1))
    banned = exact.argmax(dim=1)[:1].tolist()
    exact[:, banned] = -float("inf")
    assert torch.equal(head.argmax(h, banned).ravel(), exact.argmax(dim=1))
    plain = Decoder(model, int8=False)  # the plain fp32 path
    assert plain.q8 is None and torch.equal(plain.argmax(h).ravel(), (h @ head.wt).argmax(dim=1))
    odd = GPT(GPTConfig(block_size=8, vocab_size=V, n_layer=1, n_head=1, n_embd=24))
    assert Decoder(odd, int8=True).q8 is None  # torch's int8 kernel is wrong unless C is a multiple of 16


@pytest.mark.parametrize("gelu", ["none", "tanh"])
def test_decoder_step_equals_the_modules(gelu):
    """Decoder.hidden (the blocks as one plain function over transposed weight copies) must compute
    what the modules compute, step after step: every weight, bias and LayerNorm gain made non-trivial."""
    from model import GPT, GPTConfig, KVCache
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=50304, n_layer=2, n_head=2, n_embd=32, gelu_approx=gelu,
                          dropout=0.5)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    idx = torch.randint(0, 50257, (3, 6))
    ours, theirs = KVCache(model, 3), KVCache(model, 3)
    with torch.no_grad():
        model.hidden(idx, ours), model.hidden(idx, theirs)
        for step in range(4):
            nxt = torch.randint(0, 50257, (3, 1))
            a, b = decode.decoder(model).hidden(nxt, ours), model.hidden(nxt, theirs)[:, -1]
            assert ours.pos == theirs.pos == 7 + step
            assert torch.allclose(a, b, atol=1e-5), (step, float((a - b).abs().max()))
        model.train()  # dropout: the Decoder must hand the step to the modules
        nxt = torch.randint(0, 50257, (3, 1))
        torch.manual_seed(1)
        a = decode.decoder(model).hidden(nxt, ours)
        torch.manual_seed(1)
        assert torch.allclose(a, model.hidden(nxt, theirs)[:, -1], atol=1e-5)


def test_full_vocab_greedy_decoding_equals_recompute():
    """A full-vocab model decodes through the fast path (one-thread steps, the head's argmax); its
    tokens must equal recomputing the whole context with the plain head every step."""
    torch.manual_seed(0)
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(block_size=64, vocab_size=50304, n_layer=2, n_head=2, n_embd=32)).eval()
    idx = torch.randint(0, 50257, (3, 10))
    fast = decode.generate(model, idx, 20, ban_ids=(50257,))
    assert decode.decoder(model).layers is not None  # the weight copies of a large head are in use
    assert torch.equal(fast, model.generate(idx, 20, ban_ids=(50257,), use_cache=False))
    assert torch.equal(fast, model.generate(idx, 20, ban_ids=(50257,)))  # the plain cached path
    assert torch.equal(fast[:1], decode.generate(model, idx[:1], 20, ban_ids=(50257,)))  # one row alone: the same


def test_seeded_sampling_on_cpu_samples():
    """greedy=False draws from softmax(logits) with the generator it is given: on a near-flat
    distribution (a freshly initialised model) two seeds give different tokens, one seed gives the same
    tokens twice, and neither is the greedy answer (sampling must not fall into the greedy CPU path)."""
    model = tiny(8)
    idx = torch.randint(0, V, (4, 4))
    draw = lambda seed: decode.generate(model, idx, 20, greedy=False,  # noqa: E731
                                        generator=torch.Generator().manual_seed(seed))
    a, b = draw(0), draw(1)
    assert torch.equal(a, draw(0))
    assert not torch.equal(a, b)
    greedy = decode.generate(model, idx, 20)
    assert not torch.equal(a, greedy) and not torch.equal(b, greedy)
    assert len(set(a[:, 4:].flatten().tolist())) > 3  # many different tokens: it samples


def test_int8_argmax_rescores_a_candidate_up_to_two_bounds_below_the_top():
    """Decoder.argmax rescores every token whose int8 logit is within 2 bounds of the largest: the int8
    error can lower the best token's logit by one bound and raise another's by one, so the true best can
    sit almost two bounds below the int8 top. Built here: rows `best` and `other` share an outlier
    weight (so that each of their small weights rounds to the grid point next to it) and residuals of
    opposite signs along h; `other` is ahead in int8 by between one and two bounds, `best` ahead in fp32."""
    from decode import Decoder
    from model import GPT, GPTConfig
    V, C = 256, 64
    model = GPT(GPTConfig(block_size=8, vocab_size=V, n_layer=1, n_head=1, n_embd=C))
    w = model.lm_head.weight.detach()
    w.copy_(torch.zeros(V, C))
    w[:, 1:] = -1 / 64  # every other row: far below (exactly on its int8 grid)
    best, other, delta = 5, 9, 0.0077  # int8 step of the two rows: (127/64) / 127 = 1/64; delta < 1/128
    w[best] = delta  # rounds to 0 after the outlier's scale: residual +delta on every small weight
    w[other] = -delta
    w[other, 1:56] += 1 / 64  # on the grid: int8 keeps 1/64 here; residual -delta everywhere
    w[[best, other], 0] = 127 / 64  # the outlier: the rows' scale
    h = torch.zeros(1, C)
    h[0, 1:] = 1.0  # along the residuals
    head = Decoder(model, int8=True)
    approx, exact = head._approx(h).float()[0], (h @ head.wt)[0]
    bound = head.bound * float(h.norm())
    assert bound < approx[other] - approx[best] < 2 * bound  # int8 puts `other` ahead by 1 to 2 bounds
    assert int(approx.argmax()) == other and int(exact.argmax()) == best  # and fp32 puts `best` ahead
    assert head.argmax(h).tolist() == [[best]]
    assert head.argmax(h, ban_ids=[best]).tolist() == [[other]]
