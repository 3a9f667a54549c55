"""train.py: config parsing and errors, the lr schedule, that training lowers the loss, checkpoints."""
import dataclasses
import os
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
    with pytest.raises(train.CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path / "missing.pt"))


def test_pretrain_from_token_files(tmp_path):
    import numpy as np
    rng = np.random.default_rng(0)
    for split, n in (("train", 5000), ("val", 1000)):  # nanoGPT's format: uint16 GPT-2 ids
        (rng.integers(0, 50, n) * 7 % 50257).astype(np.uint16).tofile(tmp_path / f"{split}.bin")
    cfg = parse_config(TINY + ["--vocab=full", f"--data_dir={tmp_path}", f"--out_dir={tmp_path}/o",
                               "--pause_frac=0.1", "--learning_rate=3e-3"])
    before = train.train(dataclasses.replace(cfg, max_iters=0))["val_loss"]
    after = train.train(dataclasses.replace(cfg, max_iters=30))["val_loss"]
    assert after < before - 1.0  # ~ln(50304) down towards ln(50)
    with pytest.raises(ConfigError, match="needs phase='pretrain' and vocab='full'"):
        train.check_config(dataclasses.replace(cfg, vocab="compact"))
    with pytest.raises(ConfigError, match="token file not found"):
        train.phase_data(dataclasses.replace(cfg, data_dir=str(tmp_path / "nowhere")))


def test_ddp_two_processes_equal_one_process_with_accumulation(tmp_path):
    """torchrun with 2 gloo processes x 1 micro-batch == 1 process x 2 micro-batches, same weights."""
    args = TINY + ["--max_iters=4", "--grad_accum=2", "--eval_interval=100", "--pause_frac=0.1"]
    root = train.__file__.rsplit("/", 1)[0]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "train.py", *args, f"--out_dir={tmp_path}/ddp"], cwd=root, capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    single = train.train(parse_config(args + [f"--out_dir={tmp_path}/one"]))
    a = torch.load(f"{tmp_path}/ddp/ckpt.pt", weights_only=True)["model"]
    b = torch.load(single["ckpt"], weights_only=True)["model"]
    torch.manual_seed(1337)  # the seed train() builds its model with: the initial weights
    init = GPT(GPTConfig(**torch.load(single["ckpt"], weights_only=True)["model_args"])).state_dict()
    for k in b:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert all(not torch.allclose(b[k], init[k]) for k in b if k.endswith("c_attn.weight"))  # it trained


def test_gpt2_124m_config_runs_on_cpu_when_shrunk(tmp_path):
    import numpy as np
    for split in ("train", "val"):
        np.random.default_rng(0).integers(0, 50257, 4000).astype(np.uint16).tofile(tmp_path / f"{split}.bin")
    config_file = os.path.join(os.path.dirname(train.__file__), "configs", "gpt2_124m.py")
    cfg = parse_config([config_file, f"--data_dir={tmp_path}", f"--out_dir={tmp_path}/o",
                        "--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=32", "--batch_size=2",
                        "--grad_accum=2", "--max_iters=2", "--eval_iters=1", "--progress=False"])
    assert (cfg.vocab, cfg.compile, cfg.bias) == ("full", True, False)  # compile is a no-op on CPU
    out = train.train(cfg)
    assert load_checkpoint(out["ckpt"])[0].config.vocab_size == 50304


def test_help_lists_every_key(capsys):
    with pytest.raises(SystemExit) as e:
        parse_config(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(f"--{f.name}=" in out for f in dataclasses.fields(Config)) and "--n_pause=0" in out
