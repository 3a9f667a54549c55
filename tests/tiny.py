"""Small models shared by the tests: a tiny random GPT, all-position logits, and a scripted GPT."""
import torch

from model import GPT, GPTConfig

V, PAUSE, EOT = 13, 11, 12  # a 13-token vocab whose last two ids play <|pause|> and <|endoftext|>

# train.py flags of a run that takes seconds; eager on a GPU too (compiling a model this small takes
# longer than the run: the GPU check measures compiled training on its own)
TINY = ["--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=32", "--batch_size=8", "--n_pretrain=300",
        "--n_train=200", "--n_val=50", "--eval_iters=2", "--progress=False", "--warmup_iters=2", "--compile=False"]


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(block_size=32, vocab_size=V, n_layer=2, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**cfg, **kw})).eval()


def all_logits(model, idx):
    """(B, T, V) logits at every position: with every target kept, the head runs everywhere."""
    logits, _ = model(idx, torch.zeros_like(idx))
    return logits.view(*idx.shape, -1)


class Scripted(GPT):
    """A GPT whose next token is rule(context as a list of ids), computed in integers: tests of decoding
    store its exact outputs, the same on every machine, without a reference implementation beside them.
    rule may also return a list of ids, most likely first (logits n, n-1, ..., 1; every other id 0), so a
    test can say what the model picks when its first choice is banned. With a cache it sees only the new
    ids, so it keeps the context it was given in the cache."""

    def __init__(self, rule, vocab_size=V):
        super().__init__(GPTConfig(block_size=32, vocab_size=vocab_size, n_layer=1, n_head=1, n_embd=8))
        self.rule = rule

    def forward(self, idx, targets=None, cache=None):
        if cache is not None:
            cache.pos += idx.size(1)
            cache.seen = idx if cache.pos == idx.size(1) else torch.cat([cache.seen, idx], 1)
            idx = cache.seen
        logits = torch.zeros(idx.size(0), 1, self.config.vocab_size)
        for b, row in enumerate(idx.tolist()):
            choices = self.rule(row)
            choices = list(choices) if isinstance(choices, (list, tuple)) else [choices]
            logits[b, 0, choices] = torch.arange(len(choices), 0, -1, dtype=torch.float)
        return logits, None


def Successor(next_of, vocab_size=V):
    """A scripted GPT whose next token is a fixed function of the last token (next_of[last], else 0)."""
    return Scripted(lambda ctx: next_of.get(ctx[-1], 0), vocab_size)


def digest(*arrays):
    """A short fingerprint of integer arrays' values: tests store the fingerprints of right outputs, so a
    test states what is expected without holding the solution that computes it."""
    import hashlib
    import json
    return hashlib.sha256(json.dumps([a.tolist() for a in arrays]).encode()).hexdigest()[:10]
