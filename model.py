"""
A single-file GPT, the same network as GPT-2 (nanoGPT's shape), used for every nanopause variant.

How it differs from GPT-2:
- Vocabulary: one extra token, <|pause|> = 50257, right after <|endoftext|> = 50256, and the vocab is
  padded to 50304 (a multiple of 64, for speed); small runs may use a compact vocab instead (data.Vocab).
  The pause token is an ordinary learned embedding row: the model knows nothing else about pauses.
- Masked targets: the loss ignores targets equal to -1. All pause rules (which targets are ignored,
  where pauses go, how answers are read) are in pause.py, never in the model.
- Attention is torch's scaled_dot_product_attention (flash kernels where available); same math. A KV
  cache makes generation one parallel prefill (prompt + pauses) plus one cheap step per new token.
- With targets, the head runs at every position and the loss ignores targets of -1 (nanoGPT's way):
  a fixed amount of work per batch shape, so torch.compile captures one graph and nothing waits on the
  GPU to count the targets.
- Optional biases (bias=False drops them from Linear and LayerNorm); GPT-2 has them (bias=True).
- GELU is exact by default; GPT-2's tanh approximation is used for GPT-2's own weights (from_pretrained).
- generate() never emits the ids it is told to ban (pause.answer bans the pause id).
- Nothing here is specific to one kind of machine: fast greedy decoding on a CPU (the same tokens) is
  decode.py, which the scorers use and a first reading can skip.

Smallest use:
  python -c "from model import *; m = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=64)); print(m)"
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.dropout = config.n_head, config.dropout

    def forward(self, x, cache=None, layer=0):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        mask, causal = None, True
        if cache is not None:
            # BEGIN SOLUTION A5
            k, v = cache.update(layer, k, v)  # (B, nh, cache.pos + T, hs): all keys so far
            if T == 1:
                causal = False  # one new query may attend to every cached key
            elif cache.pos > 0:  # several new queries after a cached past: causal mask, shifted
                causal = False
                mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(cache.pos)
            # END SOLUTION
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.gelu_approx = config.gelu_approx

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.gelu_approx)))


class Block(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


@dataclass
class GPTConfig:
    block_size: int = 1024   # longest sequence (prefix + pauses + answer must fit)
    vocab_size: int = 50304  # GPT-2's 50257 + <|pause|>, padded to a multiple of 64
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True        # biases in Linear and LayerNorm, as in GPT-2
    gelu_approx: str = "none"  # "tanh" is GPT-2's own GELU (from_pretrained sets it); "none" is exact
    n_loop: int = 1          # the blocks run n_loop times with shared weights (looped depth; GPT-2: 1)


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied input/output embeddings, as in GPT-2
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding=True):
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx, targets=None, cache=None):
        """idx (B, T) token ids.
        With targets (B, T), -1 = ignored: returns (logits (B, T, V); mean cross-entropy over the
        positions whose target is not -1). The head runs at every position, also where the target is
        -1: selecting the kept positions first (x[targets != -1]) would skip most of a finetuning
        batch's head, but its size depends on the data, so the GPU must report it to the CPU every
        micro-batch and torch.compile breaks the graph there and recompiles for each new count.
        Without targets: (logits (B, 1, V) of the last position, None), all that generation needs.
        cache: a KVCache; idx then continues the cached sequence (positions start at cache.pos)."""
        x = self.hidden(idx, cache)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None  # generation needs only the last position
        logits = self.lm_head(x)  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-1)
        return logits, loss

    def hidden(self, idx, cache=None):
        """The final hidden states (B, T, C) of idx: embeddings, the blocks, the last LayerNorm."""
        B, T = idx.size()
        start = 0 if cache is None else cache.pos
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than block_size {self.config.block_size}")
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        # looped depth: the same blocks again on their own output, each pass with its own cache entries
        for loop in range(self.config.n_loop):
            for i, block in enumerate(self.transformer.h):
                x = block(x, cache, loop * self.config.n_layer + i)
        if cache is not None:
            cache.pos += T
        return self.transformer.ln_f(x)

    @classmethod
    def from_pretrained(cls, path, vocab_size=50304):
        """GPT-2 weights in the Hugging Face layout: a local folder with config.json and model.safetensors
        (what current transformers writes; read with the safetensors library, no pickle) or
        pytorch_model.bin (older copies; torch.load with weights_only=True), or (with the optional
        transformers package and a network) a hub name such as "gpt2". The vocab grows from GPT-2's
        50257 to vocab_size: the new rows, <|pause|> = 50257 and the padding, start as the mean of
        GPT-2's token embeddings, so a pause begins as an "average token" rather than noise (the padding
        rows are never targets)."""
        import json
        import os
        if os.path.isdir(path):
            with open(os.path.join(path, "config.json")) as f:
                hf = json.load(f)
            if os.path.exists(os.path.join(path, "model.safetensors")):
                from safetensors.torch import load_file
                sd = load_file(os.path.join(path, "model.safetensors"))
            elif os.path.exists(os.path.join(path, "pytorch_model.bin")):
                sd = torch.load(os.path.join(path, "pytorch_model.bin"), map_location="cpu", weights_only=True)
            else:
                raise FileNotFoundError(f"{path} holds neither model.safetensors nor pytorch_model.bin")
        else:
            try:
                from transformers import GPT2LMHeadModel
            except ImportError:
                raise FileNotFoundError(f"{path!r} is not a folder, and the optional transformers package "
                                        "that would download it is not installed") from None
            hub = GPT2LMHeadModel.from_pretrained(path)
            hf, sd = hub.config.to_dict(), hub.state_dict()
        # "gelu" is exact GELU (export.py writes it for gelu_approx="none"); GPT-2's own "gelu_new" is tanh
        model = cls(GPTConfig(block_size=hf["n_positions"], vocab_size=vocab_size, n_layer=hf["n_layer"],
                              n_head=hf["n_head"], n_embd=hf["n_embd"], bias=True,
                              gelu_approx="none" if hf.get("activation_function") == "gelu" else "tanh"))
        ours = model.state_dict()  # tensors that share storage with the parameters
        conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        with torch.no_grad():
            for key, value in sd.items():
                key = key.removeprefix("transformer.")
                if key.endswith((".attn.bias", ".attn.masked_bias")) or key == "lm_head.weight":
                    continue  # causal-mask buffers, and the head is tied to wte
                name = "transformer." + key
                if key == "wte.weight":
                    ours[name][: value.size(0)] = value
                    ours[name][value.size(0):] = value.mean(0)
                elif key.endswith(conv1d):
                    ours[name].copy_(value.t())  # HF's Conv1D stores (in, out); nn.Linear wants (out, in)
                else:
                    ours[name].copy_(value)
        return model

    def flops_per_token(self, T):
        """Training FLOPs per token at sequence length T (6 per parameter, plus attention)."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_loop * c.n_embd * T

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # weight decay on matrices (matmuls, embeddings) only; biases and LayerNorm gains are not decayed
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=device_type == "cuda")

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, greedy=True, temperature=1.0, top_k=None, ban_ids=(),
                 stop_id=None, generator=None, use_cache=True):
        """Extend idx (B, T) by max_new_tokens. greedy=True takes the argmax; greedy=False samples from
        softmax(logits / temperature), optionally among the top_k. Ids in ban_ids are never produced
        (pass the pause id). Stops early once every row has produced stop_id.

        use_cache=True: the prompt goes through one parallel prefill into a KV cache, then each new token
        is one single-position step; everything must fit in block_size (ValueError otherwise).
        use_cache=False recomputes the whole context every step and, like nanoGPT, crops a context longer
        than block_size to its last block_size tokens. Greedy outputs of the two are the same."""
        if use_cache:
            if idx.size(1) + max_new_tokens - 1 > self.config.block_size:
                raise ValueError(f"prompt ({idx.size(1)}) + {max_new_tokens} new tokens do not fit "
                                 f"block_size {self.config.block_size}; use_cache=False crops instead")
            cache = KVCache(self, idx.size(0))
            logits, _ = self(idx, cache=cache)  # the prefill: the prompt (and its pauses) in one pass
        done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        for step in range(max_new_tokens):
            if not use_cache:
                logits, _ = self(idx[:, -self.config.block_size:])
            nxt = self._pick(logits[:, -1, :].float(), greedy, temperature, top_k, ban_ids, generator)
            idx = torch.cat((idx, nxt), dim=1)
            if stop_id is not None:
                done |= nxt[:, 0] == stop_id
                if done.all():
                    break
            if use_cache and step < max_new_tokens - 1:
                logits, _ = self(nxt, cache=cache)  # one new position, reading the cached keys and values
        return idx

    @staticmethod
    def _pick(logits, greedy, temperature, top_k, ban_ids, generator):
        """(B, 1) next ids from (B, V) fp32 logits: the argmax, or a sample of softmax(logits / temperature)
        among the top_k; never one of ban_ids."""
        if ban_ids:
            logits[:, list(ban_ids)] = -float("inf")
        if greedy:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None:
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float("inf")
        return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)


def forward_flops(config, n_positions, n_logits):
    """FLOPs (2 per multiply-add) of one causal pass over n_positions positions with the head at n_logits
    of them: per layer and loop 24 C^2 a position (q, k, v, the output projection and the MLP: 12 C^2
    weights) and 4 C per (query, key) pair of the causal attention (scores and weighted values), plus
    2 C V a head. Generation with a KV cache costs the same as one pass over every position it reads.
    LayerNorms, GELU, softmax and the embeddings are left out (under 2% at the default's shape)."""
    c, T = config, n_positions
    blocks = c.n_layer * c.n_loop * (24 * c.n_embd ** 2 * T + 4 * c.n_embd * T * (T + 1) / 2)
    return blocks + 2 * c.n_embd * c.vocab_size * n_logits


class KVCache:
    """Keys and values of every layer for the positions computed so far, preallocated to block_size.
    pos is the number of positions already in the cache (the next token's position)."""

    def __init__(self, model, batch_size):
        c = model.config
        self.shape = (c.n_layer * c.n_loop, batch_size, c.n_head, c.block_size, c.n_embd // c.n_head)
        self.k = self.v = None  # allocated at the first update, in the dtype attention runs in
        self.pos = 0

    def update(self, layer, k, v):
        """Store the new (B, nh, T, hs) keys/values at pos..pos+T; return all keys/values up to there."""
        # BEGIN SOLUTION A5
        if self.k is None:
            self.k = torch.empty(self.shape, dtype=k.dtype, device=k.device)
            self.v = torch.empty(self.shape, dtype=v.dtype, device=v.device)
        end = self.pos + k.size(2)
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]
        # END SOLUTION

