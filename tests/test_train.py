"""train.py: config parsing and errors, the lr schedule, that training lowers the loss, checkpoints."""
import dataclasses
import subprocess
import sys

import pytest
import torch

import train
from data import Vocab
from model import GPT, GPTConfig
from train import Config, ConfigError, get_lr, load_checkpoint, parse_config, save_checkpoint

TINY = ["--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=32", "--batch_size=8", "--n_pretrain=300",
        "--n_train=200", "--n_val=50", "--eval_iters=2", "--progress=False", "--warmup_iters=2"]


def test_lr_schedule():
    cfg = Config(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=100)
    assert get_lr(0, cfg) > 0  # step 0 already learns
    warm = [get_lr(i, cfg) for i in range(11)]
    assert warm == sorted(warm) and warm[10] == pytest.approx(1e-3)
    decay = [get_lr(i, cfg) for i in range(10, 101)]
    assert decay == sorted(decay, reverse=True) and decay[-1] == pytest.approx(1e-4)


def test_config_layers(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("# a comment\nn_layer = 3\nlearning_rate = 1  # an int is fine for a float\n")
    cfg = parse_config([str(f), "--n_layer=5", "--out_dir=out/x", "--bias=False"])
    assert (cfg.n_layer, cfg.learning_rate, cfg.out_dir, cfg.bias) == (5, 1.0, "out/x", False)
    assert cfg.n_head == Config().n_head  # untouched fields keep the defaults


@pytest.mark.parametrize("args, match", [
    (["--n_layr=3"], "unknown config key 'n_layr' \\(did you mean 'n_layer'"),
    (["--n_layer=three"], "needs a int"),
    (["--n_layer=2.5"], "needs a int"),
    (["--bias=3"], "needs a bool"),
    (["--n_layer"], "expected --key=value"),
    (["no_such_file.py"], "config file not found"),
])
def test_config_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(args)


def test_config_file_typo_is_an_error(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("n_layers = 3\n")
    with pytest.raises(ConfigError, match="unknown config key"):
        parse_config([str(f)])
    f.write_text("import os\n")
    with pytest.raises(ConfigError, match="only `key = value`"):
        parse_config([str(f)])


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
    out = train.train(dataclasses.replace(base, max_iters=60))
    assert out["val_loss"] < before - 0.5
    model, vocab, ckpt = load_checkpoint(out["ckpt"])
    assert ckpt["step"] == 60 and ckpt["config"]["pause_frac"] == 0.1 and ckpt["val_loss"] == out["val_loss"]
    # finetune from it: loads weights and vocab, lowers the target-only loss
    ft = parse_config(TINY + ["--phase=finetune", f"--init_from={out['ckpt']}", "--n_pause=3",
                              f"--out_dir={tmp_path}/ft", "--learning_rate=3e-3"])
    ft0 = train.train(dataclasses.replace(ft, max_iters=0))["val_loss"]
    ft1 = train.train(dataclasses.replace(ft, max_iters=40))
    assert ft1["val_loss"] < ft0
    _, ft_vocab, _ = load_checkpoint(ft1["ckpt"])
    assert (ft_vocab.table == vocab.table).all()


def test_checkpoint_round_trip_identical_logits(tmp_path):
    torch.manual_seed(0)
    vocab = Vocab.compact([1, 2, 3, 500, 7000])
    model = GPT(GPTConfig(block_size=16, vocab_size=vocab.size, n_layer=1, n_head=2, n_embd=8))
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    path = str(tmp_path / "ckpt.pt")
    save_checkpoint(path, model, opt, Config(), 7, 1.5, vocab)
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
    with pytest.raises(FileNotFoundError):
        load_checkpoint(str(tmp_path / "missing.pt"))
