"""Never lose a run, never trust bad input: resume, atomic checkpoints, safe loading, clear errors."""
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

import common
import eval as ev
import train
from common import CheckpointError, read_checkpoint
from data import EOT_ID, PAUSE_ID, Vocab, encode_corpus
from model import GPT, GPTConfig
from pause import answer, collate, format_example
from train import load_checkpoint
from tiny import TINY

ROOT = os.path.dirname(os.path.abspath(train.__file__))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_train(args):
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=ENV, capture_output=True, text=True)


def saved_step(path):
    try:
        return read_checkpoint(path)["step"]
    except CheckpointError:
        return -1


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    args = TINY + ["--max_iters=400", "--eval_interval=20", "--dropout=0.1", "--pause_frac=0.1"]
    full = run_train(args + [f"--out_dir={tmp_path}/full"])
    assert full.returncode == 0, full.stderr
    ckpt = f"{tmp_path}/cut/ckpt.pt"
    proc = subprocess.Popen([sys.executable, "train.py", *args, f"--out_dir={tmp_path}/cut"], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while saved_step(ckpt) < 60 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 60 <= saved_step(ckpt) < 400  # killed part way
    resumed = run_train(args + [f"--out_dir={tmp_path}/cut", "--resume=True"])
    assert resumed.returncode == 0, resumed.stderr
    a, b = read_checkpoint(f"{tmp_path}/full/ckpt.pt"), read_checkpoint(ckpt)
    assert a["step"] == b["step"] == 400
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for s_a, s_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(s_a[k], s_b[k]) for k in s_a)


def test_resume_refuses_other_settings(tmp_path):
    assert run_train(TINY + ["--max_iters=5", f"--out_dir={tmp_path}"]).returncode == 0
    p = run_train(TINY + ["--max_iters=5", "--n_embd=32", "--resume=True", f"--out_dir={tmp_path}"])
    assert p.returncode == 2 and "n_embd" in p.stderr and len(p.stderr.strip().splitlines()) == 1


SAVER = """
import sys, torch
from common import save_checkpoint
from data import Vocab
from model import GPT, GPTConfig
from train import Config, checkpoint
model = GPT(GPTConfig(block_size=64, vocab_size=50304, n_layer=2, n_head=2, n_embd=128))
opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
for step in range(10**6):
    save_checkpoint(sys.argv[1], checkpoint(model, opt, Config(), step, 1.0, Vocab(None), None))
    print(step, flush=True)
"""


def test_kill_during_save_leaves_a_loadable_checkpoint(tmp_path):
    path = str(tmp_path / "ckpt.pt")
    rng = random.Random(0)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, path], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        proc.stdout.readline()  # at least one complete save
        time.sleep(rng.uniform(0.0, 0.3))  # then kill it at a random moment, most likely mid-save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model, vocab, ckpt = load_checkpoint(path)
        assert ckpt["step"] >= 0 and vocab.size == 50304


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_args": {}, "payload": Evil()}, path)  # what a malicious checkpoint looks like
    with pytest.raises(CheckpointError, match="refusing to load.*system"):
        load_checkpoint(str(path))
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"payload": Evil()}, f)  # a plain pickle is refused too
    with pytest.raises(CheckpointError):
        load_checkpoint(str(tmp_path / "evil.pkl"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(str(tmp_path / "junk.pt"))


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    forward = GPT.forward

    def poisoned(self, idx, targets=None, cache=None):
        logits, loss = forward(self, idx, targets, cache)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 16:  # the 16th training step, i.e. step 15
                loss = loss * float("nan")
        return logits, loss
    monkeypatch.setattr(GPT, "forward", poisoned)
    cfg = common.parse_config(TINY + ["--max_iters=40", "--eval_interval=10", f"--out_dir={tmp_path}"], train.Config)
    with pytest.raises(common.TrainingError, match="step 15: training loss is not finite"):
        train.train(cfg)
    ckpt = read_checkpoint(f"{tmp_path}/ckpt.pt")
    assert ckpt["step"] == 10 and all(torch.isfinite(v).all() for v in ckpt["model"].values())


def bad_input_cases(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.bin").write_bytes(b"\x01" * 1001)  # odd size: truncated
    (tmp_path / "data" / "val.bin").write_bytes(b"\x01" * 1000)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty.pt").write_bytes(b"")
    model = GPT(GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=1, n_embd=8))
    torch.save({"model": model.state_dict()}, tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:300])
    return {
        "unknown key": (["--n_layr=2"], "unknown config key"),
        "wrong type": (["--max_iters=ten"], "needs a int"),
        "negative n_pause": (["--n_pause=-3"], "n_pause must be"),
        "absurd n_pause": (["--n_pause=1000000"], "n_pause must be"),
        "absurd pause_frac": (["--pause_frac=5"], "pause_frac must be"),
        "too long for block": (["--phase=finetune", "--n_pause=40"], "longer than block_size"),
        "missing data file": (["--vocab=full", f"--data_dir={tmp_path}/nowhere"], "token file not found"),
        "truncated data file": (["--vocab=full", f"--data_dir={tmp_path}/data"], "truncated"),
        "missing checkpoint": (["--phase=finetune", f"--init_from={tmp_path}/none.pt"], "checkpoint not found"),
        "out folder not writable": ([f"--out_dir={tmp_path}/a_file/sub"], "cannot write to out_dir"),
        "hints on a task without": (["--phase=finetune", "--n_pause=4", "--hints=True"], "hints needs phase"),
        "hints prepended": (["--phase=finetune", "--task=keyparity", "--n_pause=4", "--hints=True",
                             "--placement=prepend"], "hints need appended pauses"),
        "n_pause_min above n_pause": (["--phase=finetune", "--n_pause=4", "--n_pause_min=5"], "n_pause_min"),
        "n_head does not divide n_embd": (["--n_head=3"], "n_head must divide n_embd"),
        "eval_iters 0": (["--eval_iters=0"], "eval_iters"),
        "negative max_iters": (["--max_iters=-5"], "max_iters must be >= 0"),
        "zero batch": (["--batch_size=0"], "batch_size"),
        "dropout 1": (["--dropout=1.0"], "dropout must be in [0, 1)"),
        "unknown dtype": (["--dtype=fp8"], "dtype must be"),
        "unknown device": (["--device=tpu"], "device must be"),
        "zero-byte checkpoint": (["--phase=finetune", f"--init_from={tmp_path}/empty.pt"], "not a readable checkpoint"),
        "truncated checkpoint": (["--phase=finetune", f"--init_from={tmp_path}/cut.pt"], "not a readable checkpoint"),
        "not a checkpoint": (["--phase=finetune", f"--init_from={tmp_path}/a_file"], "not a readable checkpoint"),
        "resume without a checkpoint": (["--resume=True", f"--out_dir={tmp_path}/empty_dir"], "no "),
        "missing config file": ([f"{tmp_path}/none.py"], "config file not found"),
    }


@pytest.mark.parametrize("case", [
    "unknown key", "wrong type", "negative n_pause", "absurd n_pause", "absurd pause_frac", "too long for block",
    "missing data file", "truncated data file", "missing checkpoint", "out folder not writable",
    "hints on a task without", "hints prepended", "n_pause_min above n_pause", "n_head does not divide n_embd",
    "eval_iters 0", "negative max_iters", "zero batch", "dropout 1", "unknown dtype", "unknown device",
    "zero-byte checkpoint", "truncated checkpoint", "not a checkpoint", "resume without a checkpoint",
    "missing config file"])
def test_bad_input_one_line_exit_2_nothing_overwritten(case, tmp_path, capsys):
    """train.py with --overwrite=True (allowed to replace the previous run) and a bad setting: the
    previous run's checkpoint and snapshot are still there, untouched, and nothing else was written."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "ckpt.pt").write_bytes(b"previous run")
    (out / "ckpt_5.pt").write_bytes(b"its snapshot")
    args, match = bad_input_cases(tmp_path)[case]
    argv = TINY + [f"--out_dir={out}", "--overwrite=True"] + args
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("train.py: ") and match in err and len(err.strip().splitlines()) == 1
    assert (out / "ckpt.pt").read_bytes() == b"previous run"  # nothing overwritten
    assert (out / "ckpt_5.pt").read_bytes() == b"its snapshot"
    assert sorted(os.listdir(out)) == ["ckpt.pt", "ckpt_5.pt"]
    assert not (tmp_path / "empty_dir").exists()


def other_bad_inputs(tmp_path):
    """(script, argv, what the one line says) for eval.py, prepare.py and bench/speed.py."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "odd").mkdir()
    return {
        "eval: unknown variant": ("eval.py", ["--variants=Foo"], "unknown variant"),
        "eval: zero seeds": ("eval.py", ["--seeds=0"], "seeds and threads must be >= 1"),
        "eval: unknown filler": ("eval.py", ["--filler=comma"], "filler must be"),
        "eval: wrong type": ("eval.py", ["--seeds=two"], "needs a int"),
        "eval: bad phase setting": ("eval.py", ["--n_pause=-2"], "n_pause must be"),
        "eval: missing phase config": ("eval.py", [f"--finetune_config={tmp_path}/none.py"], "config file not found"),
        "eval: unwritable out_dir": ("eval.py", [f"--out_dir={tmp_path}/a_file/sub"], "cannot write to out_dir"),
        "eval: zero-byte --ckpt": ("eval.py", [f"--ckpt={tmp_path}/empty.pt"], "not a readable checkpoint"),
        "eval: --ckpt not a checkpoint": ("eval.py", [f"--ckpt={tmp_path}/a_file"], "not a readable checkpoint"),
        "eval: unknown device": ("eval.py", [f"--ckpt={tmp_path}/empty.pt", "--device=tpu"], "device must be"),
        "prepare: missing input": ("prepare.py", [f"--input={tmp_path}/none", f"--out={tmp_path}/o"], "input not found"),
        "prepare: no text files": ("prepare.py", [f"--input={tmp_path}/odd", f"--out={tmp_path}/o"], "no .txt files"),
        "prepare: unknown corpus": ("prepare.py", ["--name=nosuch", f"--out={tmp_path}/o"], "unknown corpus"),
        "prepare: unknown key": ("prepare.py", ["--inptu=x"], "unknown config key"),
        "bench: unknown key": ("bench/speed.py", ["--n_layers=2"], "unknown config key"),
        "bench: wrong type": ("bench/speed.py", ["--repeats=many"], "needs a int"),
        "bench: a device this machine lacks": ("bench/speed.py", ["--device=tpu"], "device must be"),
    }


@pytest.mark.parametrize("case", [
    "eval: unknown variant", "eval: zero seeds", "eval: unknown filler", "eval: wrong type", "eval: bad phase setting",
    "eval: missing phase config", "eval: unwritable out_dir", "eval: zero-byte --ckpt", "eval: --ckpt not a checkpoint",
    "eval: unknown device", "prepare: missing input", "prepare: no text files", "prepare: unknown corpus",
    "prepare: unknown key", "bench: unknown key", "bench: wrong type", "bench: a device this machine lacks"])
def test_other_scripts_bad_input_one_line_exit_2(case, tmp_path, capsys, monkeypatch):
    """Each script's main() with a bad input: exit code 2, one line on stderr naming the script and
    the problem, no traceback, and nothing written (the folder holds only what the test made)."""
    from bench import speed
    import prepare
    script, argv, match = other_bad_inputs(tmp_path)[case]
    before = sorted(os.listdir(tmp_path))
    monkeypatch.chdir(tmp_path)  # a default out_dir would land here
    assert {"eval.py": ev.main, "prepare.py": prepare.main, "bench/speed.py": speed.main}[script](argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{script}: ") and match in err and len(err.strip().splitlines()) == 1, err
    assert sorted(os.listdir(tmp_path)) == before


def test_eval_missing_checkpoint_exit_2(tmp_path, capsys):
    assert ev.main([f"--ckpt={tmp_path}/none.pt"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


# --- special tokens are text everywhere ------------------------------------------------------------

def test_special_strings_in_corpus_and_prompts_stay_text():
    vocab = Vocab(None)
    stream = encode_corpus(["a <|pause|> b", "<|endoftext|> c"], vocab)
    assert (stream == PAUSE_ID).sum() == 0 and (stream == EOT_ID).sum() == 2  # only the separators
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=64, vocab_size=vocab.size, n_layer=1, n_head=1, n_embd=8)).eval()
    seen = []
    generate = model.generate

    def spy(idx, *a, **k):
        seen.append(idx.clone())
        return generate(idx, *a, **k)
    model.generate = spy
    answer(model, [vocab.encode("what is <|pause|><|endoftext|>?")], 5, vocab.pause_id, vocab.eot_id, 3)
    assert (seen[0] == PAUSE_ID).sum() == 5 and (seen[0][0, -5:] == PAUSE_ID).all()  # only the appended
    assert (seen[0] == EOT_ID).sum() == 0


def test_fuzz_random_strings_through_the_pipeline():
    rng = random.Random(0)
    vocab = Vocab(None)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=48, vocab_size=vocab.size, n_layer=1, n_head=1, n_embd=8)).eval()

    def random_text():
        kind = rng.choice(["empty", "ascii", "unicode", "long", "special"])
        if kind == "empty":
            return ""
        if kind == "long":
            return "".join(rng.choice("ab <|>\n") for _ in range(5000))
        if kind == "special":
            return rng.choice(["<|pause|>", "<|endoftext|>", "<|pause", "|>"]) * rng.randint(1, 4)
        hi = 0x7F if kind == "ascii" else 0x10FFFF
        chars = (chr(rng.randint(1, hi)) for _ in range(rng.randint(1, 40)))
        return "".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF)
    for _ in range(60):
        prompt, target = random_text(), random_text()
        p_ids, t_ids = vocab.encode(prompt), vocab.encode(target)
        assert vocab.decode(p_ids) == prompt and PAUSE_ID not in p_ids and EOT_ID not in p_ids
        p_ids, t_ids = p_ids[-20:], t_ids[:10]
        if len(p_ids) == 0:
            p_ids = vocab.encode(" ")
        x, y = collate([format_example(p_ids, t_ids, 4, vocab.pause_id, vocab.eot_id)], vocab.eot_id)
        _, loss = model(torch.from_numpy(x), torch.from_numpy(y))
        assert torch.isfinite(loss)
        out = answer(model, [p_ids], 4, vocab.pause_id, vocab.eot_id, max_new_tokens=5)[0]
        assert isinstance(vocab.decode(out), str)  # decodes (invalid UTF-8 is replaced, never raised)
