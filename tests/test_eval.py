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
    result = compare(EvalConfig(**tiny_configs, seeds=2))
    rows = {(r["variant"], r["M_inf"]): r for r in result["rows"]}
    assert set(rows) == {("StdPT_StdFT", 0), ("StdPT_PauseFT", 3), ("StdPT_PauseFT", 0),
                         ("PausePT_StdFT", 0), ("PausePT_PauseFT", 3), ("PausePT_PauseFT", 0)}
    for r in rows.values():
        assert len(r["per_seed"]) == 2 and all(0 <= a <= 1 for a in r["per_seed"])
        assert r["M_ft"] == (3 if "PauseFT" in r["variant"] else 0)
    assert rows[("StdPT_StdFT", 0)]["delta"] == 0
    saved = json.load(open(f"{tiny_configs['out_dir']}/results.json"))
    assert saved["rows"] == result["rows"] and saved["seeds"] == [1337, 1338]
    assert {"command", "commit", "machine", "seconds"} <= set(saved)
    md = open(f"{tiny_configs['out_dir']}/results.md").read()
    out = capsys.readouterr().out
    for name in ev.VARIANTS:
        assert name in md and f"| {name} |" in out
    # a second run reuses every finished run instead of training again
    compare(EvalConfig(**tiny_configs, seeds=2))
    out = capsys.readouterr().out
    assert "training" not in out and out.count("reusing") == 12


def test_bad_variant_is_an_error(tiny_configs, capsys):
    assert ev.main([f"--{k}={v}" for k, v in tiny_configs.items()] + ["--variants=Foo"]) == 2
    assert "unknown variant 'Foo'" in capsys.readouterr().err
