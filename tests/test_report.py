"""python report.py --annotate: the majority reference and the clipped intervals it writes under the
accuracy tables of a committed result file, checked on tiny result files made here. The expected values
are stored, not computed by a copy of the code: the majority counts are those of tasks.make_examples'
sets named in each test, the intervals those of Student's t by hand."""
import json

import report

TABLE = ("| variant | M_ft | M_inf | accuracy (%) | 95% interval |\n|---|---|---|---|---|\n"
         "| StdPT_StdFT | 0 | 0 | 50.0 | [50.0, 50.0] |\n")


def row(variant, m_inf, per_seed, ci95, delta_ci95=None):
    return {"variant": variant, "M_ft": 10 if m_inf else 0, "M_inf": m_inf, "filler": "pause", "placement": "append",
            "per_seed": per_seed, "ci95": ci95, "delta_ci95": delta_ci95}


def result_files(tmp_path, rows, data_seed=3, after=""):
    """An eval.py result (.json and .md) of keyparity with 40 test prompts, its finetuning config setting
    data_seed, the md holding one accuracy table and then `after`."""
    cfg = tmp_path / "finetune.py"
    cfg.write_text(f'task = "keyparity"\ndata_seed = {data_seed}\n')
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"task": "keyparity", "n_test": 40, "eval_config": {"finetune_config": str(cfg)},
                                "rows": rows}))
    (tmp_path / "results.md").write_text("`python eval.py` at commit abc\n\n" + TABLE + after)
    return str(path)


BASE = row("StdPT_StdFT", 0, [0.5, 0.5], [0.5, 0.5], [0.0, 0.0])


def test_majority_of_the_test_set_eval_py_draws(tmp_path):
    """keyparity's 40 test prompts of data seed 3: 25 answer ' 0' (62.5%); with data seed 0 it would be 28
    (70.0%), so the config's data seed must be read."""
    note = report.annotate(result_files(tmp_path, [BASE]), code="abc1234")
    assert ("Reference (`python report.py --annotate`, at abc1234): always answering ' 0', the most common answer "
            "of the 40 keyparity test prompts, scores 62.5% (25 of 40).") in note
    assert note in (tmp_path / "results.md").read_text()


def test_a_study_file_gets_one_reference_per_task_and_its_own_majority(tmp_path):
    """A study.py result names one test set per task. keysum's 30 test prompts (data seed 0) answer ' 26' 3
    times (10.0%), and study.py's own majority, the most common of 200 training answers (' 20'), also hits 3;
    keyparity_first's 30 test prompts answer ' 1' 17 times (56.7%), while its training answers' most common,
    ' 0', scores 13 of 30 (43.3%): the two references differ, and the line gives both."""
    path = tmp_path / "study.json"
    cell = {"n_layer": 2, "n_embd": 64, "arm": "plain", "M": 0, "M_inf": 0, "per_seed": [0.1, 0.1], "ci95": [0.1, 0.1]}
    path.write_text(json.dumps({"config": {"n_test": 30, "n_train": 200},
                                "cells": [{"task": "keysum", **cell}, {"task": "keyparity_first", **cell}]}))
    (tmp_path / "study.md").write_text("| task | layers | accuracy (%) mean ± std |\n|---|---|---|\n| keysum | 2 | 10.0 |\n")
    note = report.annotate(str(path), code="abc1234")
    assert ("always answering ' 26', the most common answer of the 30 keysum test prompts, scores 10.0% (3 of 30) "
            "(study.py's majority, the training set's most common answer ' 20', scores 10.0%)") in note
    assert ("always answering ' 1', the most common answer of the 30 keyparity_first test prompts, scores 56.7% (17 of 30) "
            "(study.py's majority, the training set's most common answer ' 0', scores 43.3%).") in note


def test_annotating_twice_writes_the_lines_once_under_the_table(tmp_path):
    path = result_files(tmp_path, [BASE], after="\nA paragraph after the table.\n")
    report.annotate(path, code="abc1234")
    once = (tmp_path / "results.md").read_text()
    report.annotate(path, code="abc1234")
    twice = (tmp_path / "results.md").read_text()
    assert twice == once
    assert once.count("Reference (") == 1 and once.count(report.ANNOTATION) == 1
    assert once.index(TABLE) < once.index("Reference (") < once.index("A paragraph after the table.")
    report.annotate(path, code="def5678")  # a later commit rewrites the line, never adds one
    assert (tmp_path / "results.md").read_text().count("Reference (") == 1


def test_clipped_intervals_are_named_with_their_intervals_as_computed(tmp_path):
    """Two seeds, t(1 dof) = 12.706: per_seed [0.9, 1.0] has mean 95.0 and half-width 12.706 x 7.071 / 1.414
    = 63.53 points, so [31.5, 158.5], stored clipped as [31.5, 100.0]; [0.0, 1.0] against the baseline's
    [0.5, 0.5] has a paired delta of mean 0 and half-width 635.3 points, stored as [-100.0, +100.0]. A row
    whose interval is 0 by itself (per_seed [0, 0]) was not clipped."""
    rows = [BASE,
            row("StdPT_HintFT", 10, [0.9, 1.0], [0.31467, 1.0], [0.4, 0.5]),
            row("StdPT_PauseFT", 10, [0.0, 1.0], [0.0, 1.0], [-1.0, 1.0]),
            row("StdPT_PauseFT", 0, [0.0, 0.0], [0.0, 0.0], [-0.5, -0.5])]
    note = report.annotate(result_files(tmp_path, rows), code="abc1234")
    clipped = note.split("\n")[4]
    assert clipped.startswith("Intervals clipped at 0 or 100")
    assert clipped.endswith(": StdPT_HintFT at M_inf = 10, [31.5, 100.0] -> [31.5, 158.5]; "
                            "StdPT_PauseFT at M_inf = 10, [0.0, 100.0] -> [-585.3, 685.3]; "
                            "StdPT_PauseFT at M_inf = 10, delta [-100.0, 100.0] -> [-635.3, 635.3].")
    assert "M_inf = 0," not in clipped


def test_the_command_refuses_what_is_not_a_result_file(tmp_path, capsys):
    assert report.main(["--annotate", str(tmp_path / "missing.json")]) == 2
    assert report.main([]) == 2
    assert report.main(["--annotate"]) == 2  # no files: nothing would be done, so say how
    assert "usage: python report.py --annotate" in capsys.readouterr().err
    (tmp_path / "alone.json").write_text(json.dumps({"task": "keyparity", "n_test": 40, "rows": [BASE]}))
    assert report.main(["--annotate", str(tmp_path / "alone.json")]) == 2  # no .md beside it: one line, no traceback
    assert "alone.md: missing" in capsys.readouterr().err


def test_a_file_without_an_accuracy_table_is_left_as_it_is(tmp_path):
    path = tmp_path / "probe.json"  # probe.py's result: probes, no test accuracy over seeds
    path.write_text(json.dumps({"config": {}, "reports": []}))
    (tmp_path / "probe.md").write_text("probes\n")
    assert report.annotate(str(path)) is None
    assert (tmp_path / "probe.md").read_text() == "probes\n"


def test_the_committed_default_reference():
    """The number results/README.md quotes: keyparity's 2,000 test prompts of data seed 0 (configs/finetune.py
    sets neither), 1,138 of which answer ' 0'."""
    assert report.majority("keyparity", 2000, 0) == (" 0", 1138, 0.569)
