"""eval.py: a tiny end-to-end comparison produces the table and the JSON with all four variants."""
import json

import pytest

import eval as ev
from eval import EvalConfig, compare

PT = """n_layer = 1
n_head = 2
n_embd = 16
block_size = 32
batch_size = 16
max_iters = 15
n_pretrain = 400
n_val = 40
n_test = 60
eval_iters = 2
"""
FT = """n_train = 200
n_val = 40
n_test = 60
batch_size = 16
max_iters = 10
eval_iters = 2
"""


@pytest.fixture
def tiny_configs(tmp_path):
    (tmp_path / "pt.py").write_text(PT)
    (tmp_path / "ft.py").write_text(FT)
    return dict(pretrain_config=str(tmp_path / "pt.py"), finetune_config=str(tmp_path / "ft.py"),
                out_dir=str(tmp_path / "out"), progress=False, n_pause=3)


def test_tiny_comparison_writes_table_and_json(tiny_configs, capsys):
    result = compare(EvalConfig(**tiny_configs, seeds=2, filler="dot", plot=False))
    rows = {(r["variant"], r["M_inf"], r["filler"]): r for r in result["rows"]}
    sweep = {0, 1, 3, 6}  # M_inf = 0, M_ft/2, M_ft, 2*M_ft with M_ft = 3
    expected = {("StdPT_StdFT", 0, "pause"), ("StdPT_StdFT", 3, "dot"), ("PausePT_StdFT", 0, "pause")}
    expected |= {(v, m, "pause") for v in ("StdPT_PauseFT", "PausePT_PauseFT") for m in sweep}
    assert set(rows) == expected
    for r in rows.values():
        assert len(r["per_seed"]) == 2 and all(0 <= a <= 1 for a in r["per_seed"])
        assert r["M_ft"] == (3 if "PauseFT" in r["variant"] else 0)
        assert r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
        assert r["flops_ratio"] == pytest.approx(r["positions"] / rows[("StdPT_StdFT", 0, "pause")]["positions"])
    base = rows[("StdPT_StdFT", 0, "pause")]
    assert base["delta"] == 0 and base["flops_ratio"] == 1
    assert rows[("PausePT_PauseFT", 6, "pause")]["positions"] == pytest.approx(base["positions"] + 6)
    saved = json.load(open(f"{tiny_configs['out_dir']}/results.json"))
    assert saved["rows"] == json.loads(json.dumps(result["rows"])) and saved["seeds"] == [1337, 1338]
    assert {"command", "commit", "machine", "seconds"} <= set(saved)
    md = open(f"{tiny_configs['out_dir']}/results.md").read()
    out = capsys.readouterr().out
    for name in ev.VARIANTS:
        assert name in md and f"| {name} |" in out
    assert "| 3 dots |" in md
    # a second run reuses every finished run instead of training again
    compare(EvalConfig(**tiny_configs, seeds=2, plot=False))
    out = capsys.readouterr().out
    assert "training" not in out and out.count("reusing") == 12


def test_prepend_trains_and_scores_separately(tiny_configs, capsys):
    result = compare(EvalConfig(**tiny_configs, variants="StdPT_PauseFT", placement="prepend", sweep=False,
                                plot=False))
    assert [(r["M_inf"], r["placement"]) for r in result["rows"]] == [(3, "prepend"), (0, "prepend")]
    assert "ft_StdPT_PauseFT_M3_prepend" in capsys.readouterr().out


def test_interval95_and_paired_delta():
    lo, hi = ev.interval95([1.0, 2.0, 3.0], -10, 10)  # mean 2, std 1, t(2 dof) = 4.303
    assert (lo, hi) == pytest.approx((2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5))
    assert ev.interval95([0.1, 0.9], 0.0, 1.0) == (0.0, 1.0)  # an accuracy's interval stays in [0, 1]
    assert ev.interval95([0.5]) == (0.5, 0.5)
    per_seed = [{("StdPT_StdFT", 0, "pause"): 0.5, ("PausePT_PauseFT", 8, "pause"): 0.6},
                {("StdPT_StdFT", 0, "pause"): 0.7, ("PausePT_PauseFT", 8, "pause"): 0.8}]
    rows = ev.summarize(per_seed, EvalConfig(), (10.0, 2.0))
    pause = rows[1]
    assert pause["delta"] == pytest.approx(0.1)
    assert pause["delta_ci95"] == pytest.approx((0.1, 0.1))  # the same gain on both seeds: no spread
    assert pause["positions"] == 20 and pause["flops_ratio"] == pytest.approx(20 / 12)


def test_plot_is_optional(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert ev.plot([], str(tmp_path / "p.png")) is None


def test_bad_variant_is_an_error(tiny_configs, capsys):
    assert ev.main([f"--{k}={v}" for k, v in tiny_configs.items()] + ["--variants=Foo"]) == 2
    assert "unknown variant 'Foo'" in capsys.readouterr().err
