"""
Real text to token files: train.bin and val.bin of uint16 GPT-2 ids (nanoGPT's format), what
`train.py --data_dir=...` pretrains on. Each document is followed by <|endoftext|>; pauses are inserted
at batch time (pause.insert_pauses), so one prepared corpus serves StdPT and PausePT.

  python prepare.py --input=my_texts/ --out=data/mine        # a .txt file, or a folder of them
  python prepare.py --name=tinystories --out=data/ts         # downloads (resumable), official val split
"""
import os
import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from common import parse_config, run_cli
from data import EOT_ID, DataError, get_encoding


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


def main(argv):
    def body():
        cfg = parse_config(argv, PrepareConfig)
        n_train, n_val = prepare(cfg)
        print(f"{cfg.out}: train.bin {n_train:,} tokens, val.bin {n_val:,} tokens")
    return run_cli("prepare.py", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
