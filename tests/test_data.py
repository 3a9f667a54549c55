"""The tokenizer, the compact vocab, the embedded tasks and their splits (data.py, tasks.py)."""
import shutil

import numpy as np
import pytest

import data
import tasks
from data import EOT_ID, PADDED_VOCAB, PAUSE_ID, Batcher, Vocab, get_encoding
from tasks import make_examples, split_of

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


# --- pause finetuning ------------------------------------------------------------------------------


def test_finetune_batch_too_long_for_block():
    vocab = Vocab.compact(data.gpt2_ids_of(["1 2 3 | 4 = 5"]))
    ex = [(vocab.encode("1 2 3 | 4 ="), vocab.encode(" 5"))]
    Batcher(vocab, examples=ex, block_size=9, n_pause=2)  # 6 + 2 + 1 (+1 end, -1 shift) = 9 fits
    with pytest.raises(ValueError, match="longer than block_size"):
        Batcher(vocab, examples=ex, block_size=9, n_pause=3)


# --- embedded task ---------------------------------------------------------------------------------

def test_keysum_answer():
    prefix, target = tasks.keysum(np.random.default_rng(3))
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


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_task_alphabet_covers_every_split(task):
    vocab = data.task_vocab(task)
    for split in ("train", "val", "test"):
        texts = tasks.corpus_text(make_examples(task, 2000, split, seed=0))
        assert vocab.decode(data.encode_corpus(texts, vocab)) == "<|endoftext|>".join(texts) + "<|endoftext|>"
    assert vocab.size < 100


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        make_examples("nope", 1, "train", 0)


# --- real text -> token files ----------------------------------------------------------------------
