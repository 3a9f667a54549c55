"""common.py: config files and flags, statistics over seeds."""
import dataclasses

import pytest

from common import ConfigError, interval95, parse_config, seed_stats
from train import Config


def test_config_layers(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("# a comment\nn_layer = 3\nlearning_rate = 1  # an int is fine for a float\n")
    cfg = parse_config([str(f), "--n_layer=5", "--out_dir=out/x", "--bias=False"], Config)
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
        parse_config(args, Config)


def test_config_file_typo_is_an_error(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("n_layers = 3\n")
    with pytest.raises(ConfigError, match="unknown config key"):
        parse_config([str(f)], Config)
    f.write_text("import os\n")
    with pytest.raises(ConfigError, match="only `key = value`"):
        parse_config([str(f)], Config)


def test_help_lists_every_key(capsys):
    with pytest.raises(SystemExit) as e:
        parse_config(["--help"], Config)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(f"--{f.name}=" in out for f in dataclasses.fields(Config)) and "--n_pause=0" in out


def test_interval95_and_paired_delta():
    lo, hi = interval95([1.0, 2.0, 3.0])  # mean 2, std 1, t(2 dof) = 4.303
    assert (lo, hi) == pytest.approx((2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5))
    # as computed, not clipped to [0, 1]: mean 0.5, std 0.566, t(1 dof) = 12.706
    assert interval95([0.1, 0.9]) == pytest.approx((0.5 - 12.706 * 0.8 / 2 ** 0.5 / 2 ** 0.5,
                                                    0.5 + 12.706 * 0.8 / 2 ** 0.5 / 2 ** 0.5))
    assert interval95([0.5]) == (0.5, 0.5)
    row = seed_stats([0.6, 0.8], base=[0.5, 0.7])
    assert row["delta"] == pytest.approx(0.1)
    assert row["delta_ci95"] == pytest.approx((0.1, 0.1))  # the same gain on both seeds: no spread
    assert row["accuracy"] == pytest.approx(0.7) and row["std"] == pytest.approx(0.1 * 2 ** 0.5)


def test_file_hash_sees_a_change_past_the_first_chunk(tmp_path):
    """common.file_hash reads a file in chunks of 16 MiB: a large token file that differs only after its
    first chunk (one byte at the very end) has another hash."""
    from common import file_hash
    path = tmp_path / "train.bin"
    with open(path, "wb") as f:
        f.truncate((1 << 24) + 100)  # 16 MiB + 100 zero bytes
    before = file_hash(path)
    with open(path, "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x01")
    assert file_hash(path) != before
