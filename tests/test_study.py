"""study.py: a tiny grid writes its stamped markdown and JSON."""
import json

import study


def test_tiny_study_writes_results(tmp_path):
    out = tmp_path / "s"
    assert study.main(["--tasks=keysum,hops", "--layers=1", "--pauses=0,2", "--seeds=2", "--max_iters=3",
                       "--n_train=300", "--n_test=50", f"--out={out}", f"--work_dir={tmp_path}/w"]) == 0
    res = json.load(open(f"{out}.json"))
    assert [(c["task"], c["n_layer"], c["M"]) for c in res["cells"]] == [
        ("keysum", 1, 0), ("keysum", 1, 2), ("hops", 1, 0), ("hops", 1, 2)]
    for c in res["cells"]:
        assert len(c["per_seed"]) == 2 and c["ci95"][0] <= c["accuracy"] <= c["ci95"][1]
        assert 0 <= c["majority"] <= 1
    assert {"command", "commit", "machine", "seeds", "train_coverage"} <= set(res)
    assert res["train_coverage"]["keysum"] == 300 / (0.8 * 9e6)
    assert "| keysum | 1 | 2 |" in open(f"{out}.md").read()


def test_study_bad_key_exit_2(capsys):
    assert study.main(["--taks=keysum"]) == 2
    assert "unknown config key 'taks'" in capsys.readouterr().err
