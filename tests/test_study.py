"""study.py: a tiny grid writes its stamped markdown and JSON; the arms train what they say."""
import json

import torch

import study


def test_tiny_study_writes_results(tmp_path):
    out = tmp_path / "s"
    assert study.main(["--tasks=keysum,hops", "--layers=1", "--pauses=0,2", "--seeds=2", "--max_iters=3",
                       "--n_train=300", "--n_test=50", f"--out={out}", f"--work_dir={tmp_path}/w", "--plot=False",
                       "--workers=1"]) == 0
    res = json.load(open(f"{out}.json"))
    assert [(c["task"], c["n_layer"], c["M"]) for c in res["cells"]] == [
        ("keysum", 1, 0), ("keysum", 1, 2), ("hops", 1, 0), ("hops", 1, 2)]
    for c in res["cells"]:
        assert len(c["per_seed"]) == 2 and c["ci95"][0] <= c["accuracy"] <= c["ci95"][1]
        assert 0 <= c["majority"] <= 1
    assert {"command", "commit", "machine", "seeds", "train_coverage"} <= set(res)
    assert res["train_coverage"]["keysum"] == 300 / (0.8 * 9e6)
    assert "| keysum | 1 | 64 | plain | 2 | 2 |" in open(f"{out}.md").read()


def test_study_arms_train_what_they_say(tmp_path):
    out = tmp_path / "s"
    assert study.main(["--tasks=keyparity", "--layers=1", "--widths=16", "--arms=plain,hints,input_hints,mixed,matched",
                       "--pauses=0,4", "--m_inf=0,4", "--seeds=1", "--max_iters=4", "--n_train=300", "--n_test=40",
                       f"--out={out}", f"--work_dir={tmp_path}/w", "--plot=False", "--workers=2"]) == 0
    cells = {(c["arm"], c["M"], c["M_inf"]) for c in json.load(open(f"{out}.json"))["cells"]}
    # hints and mixed need M >= 2; matched needs an M; every cell is scored at both M_inf
    assert cells == {(a, m, mi) for a, m in [("plain", 0), ("plain", 4), ("hints", 4), ("input_hints", 0),
                                            ("input_hints", 4), ("mixed", 4), ("matched", 4)] for mi in (0, 4)}

    def config(arm, m):
        return torch.load(f"{tmp_path}/w/keyparity_L1_W16_{arm}_M{m}_s1337/ckpt.pt", weights_only=True)["config"]
    assert config("hints", 4)["hints"] and not config("plain", 4)["hints"]
    assert config("input_hints", 0)["input_hints"] and config("mixed", 4)["n_pause_min"] == 2
    matched = config("matched", 4)
    assert matched["n_pause"] == 0 and matched["max_iters"] == round(4 * 17 / 13)  # 13 positions + 4 pauses


def test_study_bad_key_exit_2(capsys):
    assert study.main(["--taks=keysum"]) == 2
    assert "unknown config key 'taks'" in capsys.readouterr().err
    assert study.main(["--arms=plain,nope"]) == 2
    assert "unknown arm 'nope'" in capsys.readouterr().err


def test_mixed_plain_arm_mixes_the_number_of_pauses(tmp_path):
    """The mixed_plain arm: plain pauses (no hints), each example finetuned with its own M_ft in
    [M/2, M]. Its checkpoint's config says so, and the batches that config builds (data.make_batcher,
    what train() uses) hold rows with different numbers of pauses."""
    import numpy as np

    import data
    from train import Config
    out = tmp_path / "s"
    assert study.main(["--tasks=keyparity", "--layers=1", "--widths=16", "--arms=mixed_plain", "--pauses=0,6",
                       "--seeds=1", "--max_iters=2", "--n_train=200", "--n_test=20", f"--out={out}",
                       f"--work_dir={tmp_path}/w", "--plot=False", "--workers=1"]) == 0
    assert [(c["arm"], c["M"]) for c in json.load(open(f"{out}.json"))["cells"]] == [("mixed_plain", 6)]
    saved = torch.load(f"{tmp_path}/w/keyparity_L1_W16_mixed_plain_M6_s1337/ckpt.pt", weights_only=True)["config"]
    assert (saved["n_pause"], saved["n_pause_min"], saved["hints"], saved["input_hints"]) == (6, 3, False, False)
    cfg = Config(**saved)
    train_set, _ = data.phase_data(cfg)
    vocab = data.task_vocab(cfg.task)
    counts = (data.make_batcher(cfg, train_set, vocab, cfg.block_size).X == vocab.pause_id).sum(1)
    assert set(np.unique(counts)) == {3, 4, 5, 6}
