"""train.py: the lr schedule, that training lowers the loss, checkpoints, token files, DDP, logs."""
import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import common
import data
import train
from common import ConfigError, DataError, save_checkpoint
from data import Vocab
from model import GPT, GPTConfig
from train import Config, checkpoint, get_lr, load_checkpoint
from tasks import make_examples
from tiny import TINY


def parse_config(argv):
    return common.parse_config(argv, Config)




def test_lr_schedule():
    cfg = Config(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=100)
    assert get_lr(0, cfg) > 0  # step 0 already learns
    warm = [get_lr(i, cfg) for i in range(11)]
    assert warm == sorted(warm) and warm[10] == pytest.approx(1e-3)
    decay = [get_lr(i, cfg) for i in range(10, 101)]
    assert decay == sorted(decay, reverse=True) and decay[-1] == pytest.approx(1e-4)


@pytest.mark.parametrize("arg", ["--n_layr=3", "--n_pause=-1", "--pause_frac=2.0", "--phase=both"])
def test_cli_bad_input_exits_2_with_one_line(arg, tmp_path):
    p = subprocess.run([sys.executable, "train.py", arg, f"--out_dir={tmp_path}/o"], capture_output=True,
                       text=True, cwd=train.__file__.rsplit("/", 1)[0])
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("train.py: ")
    assert not (tmp_path / "o").exists()  # nothing written


def test_training_lowers_loss_and_checkpoint_round_trips(tmp_path):
    base = parse_config(TINY + [f"--out_dir={tmp_path}/pt", "--pause_frac=0.1"])
    before = train.train(dataclasses.replace(base, max_iters=0))["val_loss"]
    out = train.train(dataclasses.replace(base, max_iters=60, overwrite=True))
    assert out["val_loss"] < before - 0.5
    model, vocab, ckpt = load_checkpoint(out["ckpt"])
    assert ckpt["step"] == 60 and ckpt["config"]["pause_frac"] == 0.1 and ckpt["val_loss"] == out["val_loss"]
    # finetune from it: loads weights and vocab, lowers the target-only loss
    ft = parse_config(TINY + ["--phase=finetune", f"--init_from={out['ckpt']}", "--n_pause=3",
                              f"--out_dir={tmp_path}/ft", "--learning_rate=3e-3"])
    ft0 = train.train(dataclasses.replace(ft, max_iters=0))["val_loss"]
    ft1 = train.train(dataclasses.replace(ft, max_iters=40, overwrite=True))
    assert ft1["val_loss"] < ft0
    _, ft_vocab, _ = load_checkpoint(ft1["ckpt"])
    assert (ft_vocab.table == vocab.table).all()


def test_checkpoint_round_trip_identical_logits(tmp_path):
    torch.manual_seed(0)
    vocab = Vocab.compact([1, 2, 3, 500, 7000])
    model = GPT(GPTConfig(block_size=16, vocab_size=vocab.size, n_layer=1, n_head=2, n_embd=8))
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    path = str(tmp_path / "ckpt.pt")
    save_checkpoint(path, checkpoint(model, opt, Config(), 7, 1.5, vocab, None))
    loaded, lvocab, ckpt = load_checkpoint(path)
    idx = torch.randint(0, vocab.size, (2, 16))
    assert torch.equal(model(idx)[0], loaded(idx)[0])
    assert (lvocab.table == vocab.table).all() and lvocab.pause_id == vocab.pause_id
    assert ckpt["config"] == dataclasses.asdict(Config()) and ckpt["step"] == 7
    # a checkpoint from another tokenizer / pause id is refused
    ckpt["pause_id"] = 50258
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="pause id"):
        load_checkpoint(path)
    with pytest.raises(common.CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path / "missing.pt"))


def test_pretrain_from_token_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 5000), ("val", 1000)):  # nanoGPT's format: uint16 GPT-2 ids
        (rng.integers(0, 50, n) * 7 % 50257).astype(np.uint16).tofile(tmp_path / f"{split}.bin")
    cfg = parse_config(TINY + ["--vocab=full", f"--data_dir={tmp_path}", f"--out_dir={tmp_path}/o",
                               "--pause_frac=0.1", "--learning_rate=3e-3"])
    before = train.train(dataclasses.replace(cfg, max_iters=0))["val_loss"]
    after = train.train(dataclasses.replace(cfg, max_iters=30, overwrite=True))["val_loss"]
    assert after < before - 1.0  # ~ln(50304) down towards ln(50)
    with pytest.raises(ConfigError, match="needs phase='pretrain' and vocab='full'"):
        train.check_config(dataclasses.replace(cfg, vocab="compact"))
    with pytest.raises(DataError, match="token file not found"):
        data.phase_data(dataclasses.replace(cfg, data_dir=str(tmp_path / "nowhere")))


def two_processes_and_one(tmp_path, args, extra_path=None):
    """Train args with torchrun on 2 gloo processes and in this process; (DDP weights, one-process
    weights, the one-process result). extra_path goes first on the processes' PYTHONPATH."""
    root = train.__file__.rsplit("/", 1)[0]
    path = os.pathsep.join(p for p in (extra_path, root) if p)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "train.py", *args, f"--out_dir={tmp_path}/ddp"], cwd=root, capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    single = train.train(parse_config(args + [f"--out_dir={tmp_path}/one"]))
    a = torch.load(f"{tmp_path}/ddp/ckpt.pt", weights_only=True)["model"]
    return a, torch.load(single["ckpt"], weights_only=True)["model"], single


def test_ddp_two_processes_equal_one_process_with_accumulation(tmp_path):
    """torchrun with 2 gloo processes x 1 micro-batch == 1 process x 2 micro-batches, same weights, with
    dropout on: the ranks must draw the dropout masks of micro-batches 0 and 1, not the same masks.
    The processes believe CUDA is there (as on a one-GPU machine): --device=cpu must still mean gloo
    and the CPU, not nccl and cuda:1."""
    args = TINY + ["--max_iters=4", "--grad_accum=2", "--eval_interval=100", "--pause_frac=0.1", "--dropout=0.2",
                   "--device=cpu"]
    (tmp_path / "fake_cuda").mkdir()
    (tmp_path / "fake_cuda" / "sitecustomize.py").write_text("import torch\ntorch.cuda.is_available = lambda: True\n")
    a, b, single = two_processes_and_one(tmp_path, args, extra_path=f"{tmp_path}/fake_cuda")
    torch.manual_seed(1337)  # the seed train() builds its model with: the initial weights
    init = GPT(GPTConfig(**torch.load(single["ckpt"], weights_only=True)["model_args"])).state_dict()
    for k in b:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert all(not torch.allclose(b[k], init[k]) for k in b if k.endswith("c_attn.weight"))  # it trained


def test_gpt2_124m_config_runs_on_cpu_when_shrunk(tmp_path):
    for split in ("train", "val"):
        np.random.default_rng(0).integers(0, 50257, 4000).astype(np.uint16).tofile(tmp_path / f"{split}.bin")
    config_file = os.path.join(os.path.dirname(train.__file__), "configs", "gpt2_124m.py")
    cfg = parse_config([config_file, f"--data_dir={tmp_path}", f"--out_dir={tmp_path}/o",
                        "--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=32", "--batch_size=2",
                        "--grad_accum=2", "--max_iters=2", "--eval_iters=1", "--progress=False"])
    assert (cfg.vocab, cfg.compile, cfg.bias) == ("full", True, False)  # compile is a no-op on CPU
    out = train.train(cfg)
    assert load_checkpoint(out["ckpt"])[0].config.vocab_size == 50304


# --- the batches the training script builds --------------------------------------------------------


# --- logs ------------------------------------------------------------------------------------------

def test_log_file_gets_plain_lines_and_a_terminal_gets_bars(tmp_path):
    import fcntl
    import pty
    import struct
    import termios
    import threading
    args = [sys.executable, "train.py", *TINY, "--progress=True", "--max_iters=30", "--eval_interval=10",
            "--log_interval=1"]
    root = train.__file__.rsplit("/", 1)[0]
    piped = subprocess.run(args + [f"--out_dir={tmp_path}/a"], cwd=root, capture_output=True, text=True)
    log = piped.stdout + piped.stderr
    assert piped.returncode == 0 and "\r" not in log  # no bar redraws in a log
    lines = [line for line in log.splitlines() if "val loss" in line and "/30" in line]
    assert [line.split("step ")[1].split(",")[0] for line in lines] == ["0/30", "10/30", "20/30", "30/30"]
    assert "ms/step" in lines[-1] and "tok/s" in lines[-1]
    master, slave = pty.openpty()  # a terminal (120 columns): the bar is drawn
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    chunks = []

    def read():  # drain the terminal while the run writes to it (a full pty buffer would block it)
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)
    reader = threading.Thread(target=read)
    reader.start()
    done = subprocess.run(args + [f"--out_dir={tmp_path}/b"], cwd=root, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    reader.join(10)
    os.close(master)
    drawn = b"".join(chunks)
    assert done.returncode == 0 and b"\r" in drawn and b"/31 [" in drawn and b"val loss" not in drawn


def test_no_val_or_test_prompt_reaches_training():
    """The data each phase trains on (data.phase_data, what train() uses) holds train-split prompts only;
    validation holds val-split prompts, and eval scores test-split prompts."""
    from tasks import make_examples, split_of
    pt = parse_config(TINY + ["--n_pretrain=2000"])
    texts, val_texts = data.phase_data(pt)
    prompt = lambda text: text[: text.index("=") + 1]  # noqa: E731  (a keysum text is prompt + answer)
    assert len(texts) == 2000 and {split_of(prompt(t)) for t in texts} == {"train"}
    assert {split_of(prompt(t)) for t in val_texts} == {"val"}
    ft = parse_config(TINY + ["--phase=finetune"])
    pairs, val_pairs = data.phase_data(ft)
    assert {split_of(p) for p, _ in pairs} == {"train"} and {split_of(p) for p, _ in val_pairs} == {"val"}
    assert {split_of(p) for p, _ in make_examples(ft.task, ft.n_test, "test", ft.data_seed)} == {"test"}


def test_snapshot_keeps_the_model_of_that_step(tmp_path):
    cfg = parse_config(TINY + ["--max_iters=10", "--eval_interval=5", "--snapshot_at=7", f"--out_dir={tmp_path}"])
    out = train.train(cfg)
    snap = torch.load(tmp_path / "ckpt_7.pt", weights_only=True)
    assert snap["step"] == 7 and [h["step"] for h in out["val_history"]] == [0, 5, 7, 10]
    final = torch.load(out["ckpt"], weights_only=True)
    assert not torch.equal(snap["model"]["lm_head.weight"], final["model"]["lm_head.weight"])


@pytest.mark.parametrize("placement", ["append", "prepend"])
def test_learning_curve_is_the_exact_match_of_each_checkpoint(tmp_path, placement):
    """The curve a finetuning run records (validation exact match as finetuned, and with no pauses) is what
    scoring that step's checkpoint on the validation prompts gives: at the snapshot and at the end."""
    pt = parse_config(TINY + ["--task=keyparity", "--block_size=40", "--max_iters=30", f"--out_dir={tmp_path}/pt"])
    train.train(pt)
    ft = parse_config(TINY + ["--task=keyparity", "--phase=finetune", "--n_pause=3", f"--placement={placement}",
                              "--max_iters=60", "--eval_interval=20", "--snapshot_at=50", "--learning_rate=3e-3",
                              f"--init_from={tmp_path}/pt/ckpt.pt", f"--out_dir={tmp_path}/ft"])
    history = train.train(ft)["val_history"]
    assert [h["step"] for h in history] == [0, 20, 40, 50, 60]
    val = make_examples("keyparity", ft.n_val, "val", ft.data_seed)
    for step, path in [(50, "ckpt_50.pt"), (60, "ckpt.pt")]:
        model, vocab, _ = train.load_checkpoint(tmp_path / "ft" / path)
        point = next(h for h in history if h["step"] == step)
        assert point["exact_match"] == train.accuracy(model.eval(), vocab, val, 3, placement=placement)
        assert point["exact_match_no_pause"] == train.accuracy(model, vocab, val, 0)
    assert len({h["exact_match"] for h in history}) > 1  # the curve moves: the test can tell steps apart
    pretrain_history = torch.load(tmp_path / "pt" / "ckpt.pt", weights_only=True)["val_history"]
    assert all("exact_match" not in h for h in pretrain_history)  # language modelling has no answers to score


def test_curve_off_finetunes_without_answering_and_changes_no_weight(tmp_path, monkeypatch):
    """--curve=False (a course handout whose pause.answer is still blank) finetunes on the val loss alone,
    and the weights come out as with the curve: scoring the val prompts draws no random number."""
    pt = parse_config(TINY + ["--task=keyparity", "--block_size=40", "--max_iters=10", f"--out_dir={tmp_path}/pt"])
    train.train(pt)
    ft = TINY + ["--task=keyparity", "--phase=finetune", "--n_pause=2", "--max_iters=20", "--eval_interval=10",
                 f"--init_from={tmp_path}/pt/ckpt.pt"]
    with_curve = train.train(parse_config(ft + [f"--out_dir={tmp_path}/on"]))

    def blank(*args, **kwargs):
        raise NotImplementedError("A4: see course/A4.md")
    monkeypatch.setattr(train, "answer", blank)
    without = train.train(parse_config(ft + ["--curve=False", f"--out_dir={tmp_path}/off"]))
    assert [sorted(h) for h in without["val_history"]] == [["step", "val_loss"]] * 3
    assert [h["val_loss"] for h in without["val_history"]] == [h["val_loss"] for h in with_curve["val_history"]]
    on, off = (torch.load(r["ckpt"], weights_only=True)["model"] for r in (with_curve, without))
    assert all(torch.equal(on[k], off[k]) for k in on)


# --- the audit's places: each test fails with the one-line bug tests/mutants.py names for it ------------


def initial_weights(ckpt):
    """The weights train() starts a scratch run of that checkpoint's shape from (it seeds with cfg.seed)."""
    torch.manual_seed(1337)
    return GPT(GPTConfig(**torch.load(ckpt, weights_only=True)["model_args"])).state_dict()


def test_grad_clip_bounds_each_step_before_the_optimizer_takes_it(tmp_path):
    """Clipping must act on the gradients the optimizer steps with. AdamW's step is
    lr * m / (sqrt(v) + eps) with m a running mean of gradients, so with every gradient clipped to a
    norm of 1e-12 a weight moves by at most sum(lr) * 1e-12 / eps over the run (weight decay off, as it
    moves weights without gradients). Clipping after the step would clip gradients that are then thrown
    away: the weights would move as far as without clipping (about lr per step)."""
    args = TINY + ["--max_iters=3", "--weight_decay=0"]
    clipped = train.train(parse_config(args + ["--grad_clip=1e-12", f"--out_dir={tmp_path}/clip"]))
    free = train.train(parse_config(args + ["--grad_clip=0", f"--out_dir={tmp_path}/free"]))
    cfg = parse_config(args)
    bound = sum(get_lr(i, cfg) for i in range(3)) * 1e-12 / 1e-8  # AdamW's default eps
    init = initial_weights(clipped["ckpt"])
    moved = lambda out: max(float((w - init[k]).abs().max())  # noqa: E731
                            for k, w in torch.load(out["ckpt"], weights_only=True)["model"].items())
    assert moved(clipped) <= bound
    assert moved(free) > 1000 * bound  # without clipping the same run moves the weights far more


def test_warmup_lr_at_its_first_and_last_steps(tmp_path):
    """Linear warm-up over W steps: step 0 takes lr / (W + 1), step W - 1 takes lr * W / (W + 1), then
    the cosine starts at lr at step W. Checked on get_lr and on the lr the training loop gave the optimizer
    (a checkpoint at step s holds the optimizer as step s - 1 left it)."""
    cfg = Config(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=100)
    assert get_lr(0, cfg) == pytest.approx(1e-3 / 11, rel=1e-12)
    assert get_lr(9, cfg) == pytest.approx(1e-3 * 10 / 11, rel=1e-12)
    assert get_lr(10, cfg) == pytest.approx(1e-3, rel=1e-12)
    run = parse_config(TINY + ["--max_iters=3", "--warmup_iters=3", "--learning_rate=4e-3", "--eval_interval=1",
                               "--snapshot_at=1", f"--out_dir={tmp_path}"])
    train.train(run)
    lr_after = lambda name: torch.load(tmp_path / name, weights_only=True)["optimizer"]["param_groups"][0]["lr"]  # noqa: E731
    assert lr_after("ckpt_1.pt") == pytest.approx(4e-3 * 1 / 4, rel=1e-12)  # step 0
    assert lr_after("ckpt.pt") == pytest.approx(4e-3 * 3 / 4, rel=1e-12)  # step 2, the last of the warm-up


def test_ddp_two_processes_with_two_micro_batches_each_equal_one_process_with_four(tmp_path):
    """grad_accum=4 on 2 processes: 2 micro-batches per process, and together they must read the 4
    batches (and draw the 4 dropout masks) one process reads with grad_accum=4. A key that collides
    across ranks (rank 0's second micro-batch = rank 1's first) gives other weights."""
    args = TINY + ["--max_iters=3", "--grad_accum=4", "--eval_interval=100", "--pause_frac=0.1", "--dropout=0.2",
                   "--device=cpu"]
    a, b, single = two_processes_and_one(tmp_path, args)
    for k in b:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    init = initial_weights(single["ckpt"])
    assert all(not torch.allclose(b[k], init[k]) for k in b if k.endswith("c_attn.weight"))  # it trained


def test_resumed_finetune_keeps_the_fingerprint_of_its_start(tmp_path):
    """A finetune stopped after its step-3 checkpoint (that checkpoint put back as ckpt.pt) and resumed
    with --resume=True must still record the weights it started from (eval.py reuses a finetune only if
    they match the pretrained checkpoint's), and end where the uninterrupted run ended."""
    from common import fingerprint, read_checkpoint
    pt = train.train(parse_config(TINY + ["--max_iters=3", f"--out_dir={tmp_path}/pt"]))["ckpt"]
    ft = parse_config(TINY + ["--phase=finetune", f"--init_from={pt}", "--n_pause=2", "--max_iters=6",
                              "--eval_interval=3", "--snapshot_at=3", f"--out_dir={tmp_path}/ft"])
    path = train.train(ft)["ckpt"]
    whole = read_checkpoint(path)
    start = fingerprint(read_checkpoint(pt)["model"])
    assert whole["init_fingerprint"] == start
    shutil.copyfile(tmp_path / "ft" / "ckpt_3.pt", path)  # as if killed between steps 3 and 6
    assert read_checkpoint(path)["step"] == 3
    train.train(dataclasses.replace(ft, resume=True))
    resumed = read_checkpoint(path)
    assert resumed["step"] == 6 and resumed["init_fingerprint"] == start
    assert all(torch.equal(resumed["model"][k], whole["model"][k]) for k in whole["model"])


def threads_in_job(_):
    return torch.get_num_threads()  # module level: a spawned worker imports it by name


def test_map_jobs_runs_each_job_with_the_threads_it_was_given():
    """common.map_jobs(fn, jobs, workers, threads): every job sees `threads` torch threads, in spawned
    workers (workers=2) as in this process (workers=1, which then gets its own count back). 7 threads
    is no 2-core machine's default, so a job left at the default count shows up."""
    before = torch.get_num_threads()
    assert common.map_jobs(threads_in_job, [(0,), (1,), (2,)], 1, 7) == [7, 7, 7]
    assert torch.get_num_threads() == before
    assert common.map_jobs(threads_in_job, [(0,), (1,), (2,)], 2, 7) == [7, 7, 7]


def test_a_resume_across_a_change_of_code_data_or_torch_is_refused(tmp_path, monkeypatch, capsys):
    """A run killed after its step-1 checkpoint, then resumed after an edit to pause.py (or to its train
    file, or with another torch) would be saved as if all of it had been trained by what runs now: the
    resume is refused with one line naming what changed, and the checkpoint is left as it was."""
    (tmp_path / "train.jsonl").write_text("".join(f'{{"question": "What is {i} plus {i}?", "answer": "#### {2 * i}"}}\n'
                                                  for i in range(24)))
    args = TINY + ["--phase=finetune", "--task=gsm8k", "--vocab=full", "--n_val=4", "--block_size=48", "--max_iters=2",
                   "--eval_interval=1", "--snapshot_at=1", f"--train_file={tmp_path}/train.jsonl", f"--out_dir={tmp_path}/o"]
    assert train.main(args) == 0
    shutil.copyfile(tmp_path / "o" / "ckpt_1.pt", tmp_path / "o" / "ckpt.pt")  # as if killed after step 1
    killed = (tmp_path / "o" / "ckpt.pt").read_bytes()
    real_code, real_torch = common.code_hashes(), torch.__version__

    def refused(why):
        capsys.readouterr()
        assert train.main(args + ["--resume=True"]) == 2
        assert capsys.readouterr().err == (f"train.py: --resume: {tmp_path}/o/ckpt.pt cannot be continued: {why} "
                                           "(--overwrite=True restarts it)\n")
        assert (tmp_path / "o" / "ckpt.pt").read_bytes() == killed
    monkeypatch.setattr(train, "code_hashes", lambda: {**real_code, "pause.py": "0" * 16})  # pause.py edited
    refused("pause.py changed since it was trained")
    monkeypatch.setattr(train, "code_hashes", lambda: real_code)
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    refused(f"it was made with torch {real_torch}, this is 9.9.9")
    monkeypatch.setattr(torch, "__version__", real_torch)
    (tmp_path / "train.jsonl").write_text((tmp_path / "train.jsonl").read_text().replace("#### 2\"", "#### 3\""))
    refused(f"{tmp_path}/train.jsonl changed since it was trained")


def test_float16_gradient_clip_sees_the_unscaled_gradients(tmp_path):
    """float16 trains with a gradient scaler that multiplies the loss by 2^16 before backward: the clip
    must see the gradients divided back. A clip far above the true gradient norm never acts, so it must
    give exactly the weights of no clip at all; clipping the scaled gradients would cut them to its norm."""
    args = TINY + ["--max_iters=3", "--dtype=float16", "--device=cpu"]
    free, clipped = (train.train(parse_config(args + [f"--grad_clip={c}", f"--out_dir={tmp_path}/{c}"])) for c in (0, 100))
    assert common.read_checkpoint(free["ckpt"])["scaler"]["scale"] >= 2 ** 10  # the scaler was on, and large
    a, b = (common.read_checkpoint(r["ckpt"])["model"] for r in (free, clipped))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_float16_finetune_ends_as_the_uninterrupted_run(tmp_path):
    """A float16 finetune killed after its step-3 checkpoint and resumed ends with the uninterrupted run's
    weights, gradient scaler state (its scale and its count of steps since the scale last changed) and
    learning curve (every evaluation, those before the kill too)."""
    pt = train.train(parse_config(TINY + ["--max_iters=3", f"--out_dir={tmp_path}/pt"]))["ckpt"]
    ft = parse_config(TINY + ["--phase=finetune", f"--init_from={pt}", "--n_pause=2", "--n_val=8", "--max_iters=6",
                              "--eval_interval=3", "--snapshot_at=3", "--dtype=float16", "--device=cpu", f"--out_dir={tmp_path}/ft"])
    whole = common.read_checkpoint(train.train(ft)["ckpt"])
    shutil.copyfile(tmp_path / "ft" / "ckpt_3.pt", tmp_path / "ft" / "ckpt.pt")  # as if killed between 3 and 6
    resumed = common.read_checkpoint(train.train(dataclasses.replace(ft, resume=True))["ckpt"])
    assert whole["scaler"]["_growth_tracker"] == 6 and resumed["scaler"] == whole["scaler"]
    assert [h["step"] for h in whole["val_history"]] == [0, 3, 6] and resumed["val_history"] == whole["val_history"]
    assert all(torch.equal(resumed["model"][k], whole["model"][k]) for k in whole["model"])
