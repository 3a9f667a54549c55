"""The tokenizer and the pause rules of data.py, on tiny self-made data."""
import shutil

import numpy as np
import pytest

import data
from data import (EOT_ID, PADDED_VOCAB, PAUSE_ID, Batcher, Vocab, collate, format_example,
                  get_encoding, insert_pauses, lm_targets, make_examples, pause_slots, split_of)

TEXTS = ["Hello world, 3 + 4 = 7.", "  leading spaces\nand lines\t", "unicode: naïve café 猫 🙂", ""]


# --- tokenizer -------------------------------------------------------------------------------------

def test_special_ids():
    enc = get_encoding()
    assert enc.encode("<|endoftext|>", allowed_special="all") == [EOT_ID] == [50256]
    assert enc.encode("<|pause|>", allowed_special="all") == [PAUSE_ID] == [50257]
    assert enc.n_vocab == 50258
    assert PADDED_VOCAB == 50304 and PADDED_VOCAB % 64 == 0 and PAUSE_ID < PADDED_VOCAB


def test_gpt2_ids_unchanged():
    # well-known GPT-2 ids: the pause token must not shift any of them
    assert get_encoding().encode_ordinary("Hello world") == [15496, 995]


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(text):
    vocab = Vocab(None)
    assert vocab.decode(vocab.encode(text)) == text


def test_special_strings_in_text_stay_text():
    vocab = Vocab(None)
    for text in ["a <|pause|> b", "<|endoftext|>", "x<|pause|><|pause|>y"]:
        ids = vocab.encode(text)
        assert PAUSE_ID not in ids and EOT_ID not in ids
        assert vocab.decode(ids) == text


def test_hash_check_refuses_changed_file(tmp_path):
    bpe, enc_json = data._bpe_files()
    good_bpe, bad_json = tmp_path / "vocab.bpe", tmp_path / "encoder.json"
    shutil.copy(bpe, good_bpe)
    raw = open(enc_json, "rb").read()
    bad_json.write_bytes(raw.replace(b'"hello"', b'"hellp"', 1))
    with pytest.raises(ValueError, match="sha256"):
        data.build_encoding(str(good_bpe), str(bad_json))
    shutil.copy(enc_json, bad_json)
    assert data.build_encoding(str(good_bpe), str(bad_json)).encode_ordinary("hi") == [5303]


def test_compact_vocab_round_trip_equals_plain_tokenizer():
    enc = get_encoding()
    vocab = Vocab.compact(data.gpt2_ids_of(TEXTS))
    assert vocab.size == len(set(data.gpt2_ids_of(TEXTS).tolist()) | {EOT_ID, PAUSE_ID, data.DOT_ID}) < 100
    for text in TEXTS:
        ids = vocab.encode(text)
        assert ids.max(initial=0) < vocab.size
        assert vocab.to_gpt2(ids).tolist() == enc.encode_ordinary(text)
        assert vocab.decode(ids) == text
    assert vocab.to_gpt2([vocab.pause_id, vocab.eot_id]).tolist() == [PAUSE_ID, EOT_ID]
    with pytest.raises(ValueError, match="not in this compact vocab"):
        vocab.encode("a word the table has never seen: zebra")


# --- pause pretraining -----------------------------------------------------------------------------

def test_pause_slots_exact_count_and_uniform():
    rng = np.random.default_rng(0)
    B, L, n = 20000, 40, 4
    slots = pause_slots(B, L, n, rng)
    assert slots.shape == (B, L + n) and (slots.sum(1) == n).all()
    freq = slots.mean(0)  # each of the L+n slots should hold a pause with probability n/(L+n)
    p = n / (L + n)
    assert np.abs(freq - p).max() < 5 * np.sqrt(p * (1 - p) / B)
    # first and last third equally likely: no drift towards either end
    assert abs(freq[: (L + n) // 3].mean() - freq[-(L + n) // 3:].mean()) < 0.01


def test_pause_slots_exact_even_with_tied_keys():
    class Tied:  # a generator whose keys all tie: the count must still be exact
        def random(self, shape):
            return np.zeros(shape)
    assert (pause_slots(3, 10, 2, Tied()).sum(1) == 2).all()


def test_insert_pauses_count_trim_order():
    rng = np.random.default_rng(1)
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


def test_lm_targets_ignore_exactly_pause_predictions():
    P = 9
    seqs = np.array([[1, P, 2, P, P, 3, 4, P]])
    x, y = lm_targets(seqs, P)
    assert x.tolist() == [[1, P, 2, P, P, 3, 4]]
    assert y.tolist() == [[-1, 2, -1, -1, 3, 4, -1]]  # -1 exactly where the next token is a pause
    # a pause *input* followed by a real token still predicts it
    assert y[0, 1] == 2 and y[0, 4] == 3


# --- pause finetuning ------------------------------------------------------------------------------

def test_format_example_layout_and_targets():
    P, E = 9, 8
    x, y = format_example(np.array([1, 2, 3]), np.array([5, 6]), 2, P, E)
    # sequence: 1 2 3 P P 5 6 E ; x drops the last, y drops the first
    assert x.tolist() == [1, 2, 3, P, P, 5, 6]
    assert y.tolist() == [-1, -1, -1, -1, 5, 6, E]  # the last pause predicts the first target token
    x0, y0 = format_example(np.array([1, 2, 3]), np.array([5]), 0, P, E)
    assert x0.tolist() == [1, 2, 3, 5] and y0.tolist() == [-1, -1, 5, E]  # M=0: the standard format


def test_format_example_prepend():
    P, E = 9, 8
    x, y = format_example(np.array([1, 2, 3]), np.array([5, 6]), 2, P, E, placement="prepend")
    assert x.tolist() == [P, P, 1, 2, 3, 5, 6]
    assert y.tolist() == [-1, -1, -1, -1, 5, 6, E]  # the last prompt token predicts the answer


def test_collate_pads_targets_with_ignore():
    X, Y = collate([(np.array([1, 2]), np.array([-1, 3])), (np.array([4]), np.array([5]))], pad_id=0)
    assert X.tolist() == [[1, 2], [4, 0]] and Y.tolist() == [[-1, 3], [5, -1]]


def test_finetune_batch_too_long_for_block():
    vocab = Vocab.compact(data.gpt2_ids_of(["1 2 3 | 4 = 5"]))
    ex = [(vocab.encode("1 2 3 | 4 ="), vocab.encode(" 5"))]
    Batcher(vocab, examples=ex, block_size=9, n_pause=2)  # 6 + 2 + 1 (+1 end, -1 shift) = 9 fits
    with pytest.raises(ValueError, match="longer than block_size"):
        Batcher(vocab, examples=ex, block_size=9, n_pause=3)


# --- embedded task ---------------------------------------------------------------------------------

def test_keysum_answer():
    prefix, target = data.keysum(np.random.default_rng(3))
    digits, key = prefix.split(" | ")
    k = int(key.rstrip(" ="))
    assert int(target) == sum((int(d) * k) % 10 for d in digits.split())


def test_splits_do_not_overlap():
    sets = {s: make_examples("keysum", 3000, s, seed=0) for s in ("train", "val", "test")}
    prompts = {s: {p for p, _ in ex} for s, ex in sets.items()}
    assert all(len(prompts[s]) == len(sets[s]) for s in sets)  # distinct within a split
    assert not (prompts["train"] & prompts["test"]) and not (prompts["train"] & prompts["val"])
    assert not (prompts["val"] & prompts["test"])
    # another draw of train prompts (the pretraining corpus uses seed+1) never holds a test prompt
    other = {p for p, _ in make_examples("keysum", 3000, "train", seed=1)}
    assert not (other & prompts["test"]) and all(split_of(p) == "train" for p in other)
    assert make_examples("keysum", 50, "test", 0) == sets["test"][:50]  # deterministic
    assert make_examples("keysum", 50, "test", 1) != sets["test"][:50]


def test_split_of_is_pinned_to_known_outputs():
    # a change of hash, byte order or modulus would silently move prompts between splits (and make
    # every committed result incomparable): pinned on fixed strings
    marks = {"train": ".", "val": "v", "test": "T"}
    assert "".join(marks[split_of(f"{i} | {i % 7} =")] for i in range(60)) == \
        "...v...v.........T...............v................T.....T..."
    assert split_of("a") == "test" and split_of("b") == "train"


@pytest.mark.parametrize("task", list(data.TASKS))
def test_task_alphabet_covers_every_split(task):
    vocab = data.task_vocab(task)
    for split in ("train", "val", "test"):
        texts = data.corpus_text(make_examples(task, 2000, split, seed=0))
        assert vocab.decode(data.encode_corpus(texts, vocab)) == "<|endoftext|>".join(texts) + "<|endoftext|>"
    assert vocab.size < 100


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        make_examples("nope", 1, "train", 0)


# --- real text -> token files ----------------------------------------------------------------------

def test_prepare_local_text_round_trip_and_train(tmp_path):
    import dataclasses

    import train
    docs = {"b.txt": "second file, with <|pause|> as plain text\n", "a.txt": "Hello world. " * 200,
            "sub/c.txt": "naïve café 猫\n" * 50, "skip.md": "not a .txt file"}
    for name, text in docs.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_text(text)
    cfg = data.PrepareConfig(input=str(tmp_path / "in"), out=str(tmp_path / "bins"), val_frac=0.1, progress=False)
    n_train, n_val = data.prepare(cfg)
    tr = np.fromfile(tmp_path / "bins" / "train.bin", dtype=np.uint16)
    va = np.fromfile(tmp_path / "bins" / "val.bin", dtype=np.uint16)
    assert (len(tr), len(va)) == (n_train, n_val) and n_val == int((n_train + n_val) * 0.1)
    stream = np.concatenate([tr, va]).astype(np.int64)
    expected = "".join(docs[k] + "<|endoftext|>" for k in ("a.txt", "b.txt", "sub/c.txt"))  # sorted paths
    assert get_encoding().decode(stream.tolist()) == expected
    assert (stream == EOT_ID).sum() == 3 and (stream == PAUSE_ID).sum() == 0
    # the prepared folder pretrains, with pauses inserted at batch time
    args = ["--vocab=full", f"--data_dir={tmp_path}/bins", f"--out_dir={tmp_path}/o", "--n_layer=1", "--n_head=1",
            "--n_embd=8", "--block_size=16", "--batch_size=2", "--eval_iters=1", "--progress=False"]
    out = train.train(dataclasses.replace(train.parse_config(args), max_iters=2, pause_frac=0.1))
    assert out["step"] == 2
    with pytest.raises(data.DataError, match="no .txt files"):
        data.prepare(dataclasses.replace(cfg, input=str(tmp_path / "bins")))


class RangeHandler:
    """A loopback HTTP server over a folder that honours 'Range: bytes=N-' (as real hosts do)."""

    @staticmethod
    def serve(folder):
        import functools
        import http.server
        import threading

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                if not rng:
                    return super().do_GET()
                start = int(rng.split("=")[1].rstrip("-"))
                body = open(self.translate_path(self.path), "rb").read()[start:]
                self.send_response(206)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def test_prepare_named_corpus_downloads_resumes_and_splits_documents(tmp_path, monkeypatch):
    import dataclasses
    site = tmp_path / "site"
    site.mkdir()
    stories = ["Once upon a time there was a cat.", "The dog ran.\nIt was happy.", "The end."]
    (site / "train.txt").write_text("\n<|endoftext|>\n".join(stories[:2]) + "\n<|endoftext|>\n")
    (site / "valid.txt").write_text(stories[2] + "\n")
    server = RangeHandler.serve(str(site))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setitem(data.SOURCES, "tiny", {"train": [f"{base}/train.txt"], "val": [f"{base}/valid.txt"],
                                               "split_on": "<|endoftext|>"})
    out = tmp_path / "bins"
    (out / "raw").mkdir(parents=True)
    raw = (site / "train.txt").read_bytes()
    (out / "raw" / "train.txt.part").write_bytes(raw[:10])  # an interrupted download, to be resumed
    cfg = data.PrepareConfig(name="tiny", out=str(out), val_frac=0.2, progress=False)
    try:
        data.prepare(cfg)
    finally:
        server.shutdown()
    assert (out / "raw" / "train.txt").read_bytes() == raw
    def text_of(split):
        return get_encoding().decode(np.fromfile(out / f"{split}.bin", dtype=np.uint16).astype(np.int64).tolist())
    # train.bin holds the train file's stories, val.bin exactly the official validation file's: one end
    # token per story (the literal separators became real ones), and no validation story in train.bin
    train_docs, val_docs = text_of("train").split("<|endoftext|>"), text_of("val").split("<|endoftext|>")
    assert [t.strip() for t in train_docs] == stories[:2] + [""]
    assert [t.strip() for t in val_docs] == stories[2:] + [""]
    # no network behind an address: a clear one-line error that says a rerun resumes
    monkeypatch.setitem(data.SOURCES, "gone", {"train": ["http://127.0.0.1:9/x.txt"], "val": [], "split_on": ""})
    with pytest.raises(data.DataError, match="download of .* failed.*resume"):
        data.prepare(dataclasses.replace(cfg, name="gone", out=str(tmp_path / "gone")))
