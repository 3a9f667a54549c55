"""
Fast greedy decoding on a CPU: the same tokens as GPT.generate(greedy=True), faster. Skip this file on a
first reading: it is about one kind of machine, not about pauses or about how a GPT works.

A decode step multiplies one row per sequence by every weight, so on a CPU it is bound by the bytes it
reads and by the number of calls it makes. A Decoder (below) keeps the weights in the layout a one-row
step reads fastest and reads the head's argmax from an int8 copy, rescored in float32 so that the token
is exactly the float32 argmax. The scorers (train.accuracy, downstream.evaluate) hand pause.answer
fast(model) instead of the model; everything else (sampling, a GPU, a model that computes otherwise)
goes through the model's own generate.

  python bench/speed.py   # decode speed with and without a Decoder, and what a step's time is spent on
"""
import time
from contextlib import contextmanager

import torch
from torch.nn import functional as F

from model import GPT, KVCache


def fast(model):
    """model, with generate() through a Decoder where one applies (greedy, with the KV cache, on a CPU)."""
    return Fast(model) if isinstance(model, GPT) else model


class Fast:
    """A model whose greedy CPU generation goes through a Decoder; every other attribute is the model's."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def generate(self, idx, max_new_tokens, greedy=True, ban_ids=(), stop_id=None, use_cache=True, **sampling):
        dec = decoder(self.model) if greedy and use_cache else None
        if dec is None:
            return self.model.generate(idx, max_new_tokens, greedy=greedy, ban_ids=ban_ids, stop_id=stop_id,
                                       use_cache=use_cache, **sampling)
        return dec.generate(idx, max_new_tokens, ban_ids, stop_id)


def generate(model, idx, max_new_tokens, **kwargs):
    """model.generate(idx, max_new_tokens, **kwargs), the same tokens, through a Decoder where one applies."""
    return fast(model).generate(idx, max_new_tokens, **kwargs)


def decoder(model):
    """model's Decoder, remade only when a weight changes (a new storage or an in-place update, as an
    optimizer step makes); None on a GPU (it doesn't need one) and for a model whose forward or hidden
    differ from GPT's (a scripted test model decodes through its own)."""
    if model.lm_head.weight.device.type != "cpu" or (type(model).forward, type(model).hidden) != (GPT.forward, GPT.hidden):
        return None
    key = tuple((p.data_ptr(), p._version) for p in model.parameters())
    if getattr(model, "_decoder_key", None) != key:
        model._decoder, model._decoder_key = Decoder(model), key
    return model._decoder


class Decoder:
    """One greedy decode step on CPU, as the weights are best read for it. A step multiplies one row per
    sequence by every weight, so it is bound by the bytes it reads and by the number of calls it makes:
    - hidden() runs the blocks as one plain function over copies of the weights laid out (in, out): the
      one-row product x @ W reads that layout about twice as fast as F.linear reads (out, in) on our
      test machine (bench/speed.py: head_ms_transposed vs head_ms_linear), and it makes fewer calls than the
      modules;
    - logits use the head in the same transposed layout (wt);
    - argmax() reads an int8 copy of the head, a quarter of its bytes (one bf16 scale per row, torch's
      weight-only int8 matmul), then rescores in float32 every token whose approximate logit is within
      twice the error bound of the best. The bound, per unit |h|: the exact norm of the weights'
      rounding residual (Cauchy-Schwarz), plus 2^-6 x the largest row norm, which covers rounding h to
      bf16 and the result to bf16 (2^-9 relative each) with four times to spare for accumulation. So
      the true best token is always among those rescored, and the result is the fp32 head's argmax
      (ties to the lower id, as torch.argmax). Used where the int8 product is faster (timed once per
      head) and its results keep the bound (checked once per head); int8=False turns it off and
      int8=True skips the timing (tests).
    The copies and the int8 head are made for a large head (2^20 weights and up: a full-vocab model); a
    small model decodes through its modules and the transposed head, which are as fast there."""

    def __init__(self, model, int8=None):
        self.model, self.config = model, model.config
        w = model.lm_head.weight.detach()
        self.w, self.wt = w, w.t().contiguous()  # w (V, C): rows for the rescoring; wt (C, V): logits
        self.layers, self.q8 = None, None
        large = w.numel() >= 2**20
        if large and model.config.n_loop == 1:  # a looped model decodes through its modules
            t = lambda lin: (lin.weight.detach().t().contiguous(), lin.bias)  # (in, out) and the bias
            self.layers = [(t(b.attn.c_attn), t(b.attn.c_proj), t(b.mlp.c_fc), t(b.mlp.c_proj))
                           for b in model.transformer.h]
        # torch 2.13's CPU kernel returns garbage or crashes unless C is a multiple of 16 (C = 8, 12, 20,
        # 24, 40, 56, 100 tried; every multiple of 16 tried was right), so only those
        usable = hasattr(torch, "_weight_int8pack_mm") and w.size(1) % 16 == 0
        if not usable or int8 is False or (int8 is None and not large):
            return
        scale = (w.abs().amax(dim=1) / 127).to(torch.bfloat16)  # the kernel takes bf16 scales
        scale[scale == 0] = 1
        q = (w / scale.float()[:, None]).round().clamp(-127, 127)
        self.q8, self.scale = q.to(torch.int8), scale
        deq = q * scale.float()[:, None]  # exactly the weights the kernel multiplies by
        self.bound = float((w - deq).norm(dim=1).max()) + 2**-6 * float(deq.norm(dim=1).max())
        h = torch.randn(3, w.size(1), generator=torch.Generator().manual_seed(0))  # not the global stream
        if not ((self._approx(h).float() - h @ self.wt).abs() <= self.bound * h.norm(dim=1, keepdim=True)).all():
            self.q8 = None  # a kernel that breaks its bound here: the exactness argument needs it
            return
        if int8 is None:  # keep it only where it is faster on this machine
            h = h[:1]  # one row, as one stream's step
            t32 = min(_seconds(lambda: h @ self.wt) for _ in range(6))  # the first calls warm up
            t8 = min(_seconds(lambda: self._approx(h)) for _ in range(6))
            if t8 >= 0.8 * t32:
                self.q8 = None

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, ban_ids=(), stop_id=None):
        """GPT.generate(idx, max_new_tokens, greedy=True, ban_ids=ban_ids, stop_id=stop_id): one parallel
        prefill, then each token straight from the hidden state. A step of a few rows runs on one thread
        (waking a second costs more than it saves), all but the head's one big read."""
        model = self.model
        if idx.size(1) + max_new_tokens - 1 > self.config.block_size:
            raise ValueError(f"prompt ({idx.size(1)}) + {max_new_tokens} new tokens do not fit "
                             f"block_size {self.config.block_size}; use_cache=False crops instead")
        cache = KVCache(model, idx.size(0))
        h = model.hidden(idx, cache)[:, -1]  # the prefill, on every thread
        threads = torch.get_num_threads()
        with num_threads(1 if idx.size(0) <= 8 else None):
            done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
            for step in range(max_new_tokens):
                nxt = self.argmax(h, ban_ids, threads)
                idx = torch.cat((idx, nxt), dim=1)
                if stop_id is not None:
                    done |= nxt[:, 0] == stop_id
                    if done.all():
                        break
                if step < max_new_tokens - 1:
                    h = self.hidden(nxt, cache)
        return idx

    def hidden(self, idx, cache):
        """model.hidden(idx, cache)[:, -1] for one new token per row (idx (B, 1))."""
        if self.layers is None or self.model.training:  # a small model, or dropout: the modules
            return self.model.hidden(idx, cache)[:, -1]
        c, tr = self.config, self.model.transformer
        B, C, pos = idx.size(0), c.n_embd, cache.pos
        x = tr.wte.weight[idx[:, 0]] + tr.wpe.weight[pos]  # (B, C)
        for i, (block, (attn, proj, fc, out)) in enumerate(zip(tr.h, self.layers)):
            qkv = _linear(_norm(x, block.ln_1), *attn)  # (B, 3C)
            q, k, v = qkv.view(B, 3, c.n_head, 1, C // c.n_head).unbind(1)  # each (B, nh, 1, hs)
            k, v = cache.update(i, k, v)
            y = F.scaled_dot_product_attention(q, k, v)  # one new query may attend to every cached key
            x = x + _linear(y.view(B, C), *proj)
            x = x + _linear(F.gelu(_linear(_norm(x, block.ln_2), *fc), approximate=c.gelu_approx), *out)
        cache.pos += 1
        return _norm(x, tr.ln_f)

    def _approx(self, h):
        """(B, V) logits of the int8 head, within bound * |h| of the fp32 ones."""
        return torch._weight_int8pack_mm(h.to(torch.bfloat16), self.q8, self.scale)

    def argmax(self, h, ban_ids=(), threads=None):
        """(B, 1) ids of the largest fp32 logit of each row of h (B, C), never one of ban_ids. threads:
        how many threads the one big read runs on (default: as many as now)."""
        ban = list(ban_ids)
        with num_threads(threads):
            approx = (h @ self.wt) if self.q8 is None else self._approx(h)  # (B, V): fp32, or int8's bf16
        if ban:
            approx[:, ban] = -float("inf")
        top, ids = approx.max(dim=1, keepdim=True)
        if self.q8 is None:
            return ids
        near = approx >= top.float() - 2 * self.bound * h.norm(dim=1, keepdim=True)  # the candidates
        if int(near.sum()) == h.size(0):  # one per row (the usual case): each row's is its fp32 argmax
            return ids
        rows, cols = near.nonzero(as_tuple=True)
        exact = (h[rows] * self.w[cols]).sum(dim=1)  # fp32 logits of the candidates only
        best = torch.full((h.size(0),), -float("inf")).scatter_reduce(0, rows, exact, "amax")
        win = exact == best[rows]
        first = torch.full((h.size(0),), self.w.size(0)).scatter_reduce(0, rows[win], cols[win], "amin")
        return first[:, None]


def _linear(x, w, b):
    """x @ w (+ b), w laid out (in, out)."""
    return x @ w if b is None else torch.addmm(b, x, w)


def _norm(x, ln):
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


@contextmanager
def num_threads(n):
    """Run the block on n torch threads (None: as many as now), then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seconds(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
