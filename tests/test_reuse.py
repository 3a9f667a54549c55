"""Nothing stale, nothing overwritten: a finished run is reused only while everything that made it is
unchanged (settings, code, data files, initial weights), and no command replaces finished work it was
not told to replace."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import common
import data
import eval as ev
import report
import train
from common import read_checkpoint
from eval import EvalConfig
from tiny import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PT = ("task = 'keyparity'\nn_layer = 1\nn_head = 2\nn_embd = 16\nblock_size = 40\nbatch_size = 16\nmax_iters = 8\n"
      "n_pretrain = 300\nn_val = 40\nn_test = 80\neval_iters = 2\n")
FT = "task = 'keyparity'\nn_train = 200\nn_val = 40\nn_test = 80\nbatch_size = 16\nmax_iters = 8\neval_iters = 2\n"


def test_training_code_is_what_train_imports():
    """common.TRAINING_CODE, the files whose change retrains a run, is exactly the project's files that
    train.py imports (directly or not)."""
    code = ("import os, sys, train; files = [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]; "
            f"print(sorted(os.path.basename(f) for f in files if os.path.isabs(f) and os.path.dirname(f) == {ROOT!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert eval(out) == sorted(common.TRAINING_CODE)


def copy_of_repo(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", "out", "results", "__pycache__", "tests",
                                                               "course", "*.md"))
    (repo / "pt.py").write_text(PT)
    (repo / "ft.py").write_text(FT)
    return repo


def comparison(repo, out_dir):
    """A tiny comparison in the copy of the repo; (stdout, per-seed accuracies of every row)."""
    p = subprocess.run([sys.executable, "eval.py", "--pretrain_config=pt.py", "--finetune_config=ft.py", "--seeds=1",
                        "--n_pause=3", "--variants=StdPT_StdFT,StdPT_PauseFT", "--workers=1", "--progress=False",
                        "--plot=False", f"--out_dir={out_dir}"], cwd=repo, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    [results] = (repo / out_dir).glob("results*.json")  # named by the settings (results_name)
    rows = json.load(open(results))["rows"]
    return p.stdout, [(r["variant"], r["M_inf"], r["per_seed"]) for r in rows]


def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_editing_a_task_or_a_rule_retrains_and_the_numbers_follow_the_new_code(tmp_path):
    repo = copy_of_repo(tmp_path)
    first, before = comparison(repo, "out")
    again, same = comparison(repo, "out")  # nothing changed: every run reused, the same numbers
    assert again.count("reusing") == 3 and "training out" not in again and same == before
    # a task: keyparity's answer counts the digits at or above the key
    edit(repo / "tasks.py", 'return prompt, f" {int((xs > k).sum() % 2)}"', 'return prompt, f" {int((xs >= k).sum() % 2)}"')
    out, after = comparison(repo, "out")
    assert "reusing" not in out and out.count("tasks.py changed since it was trained") == 3
    assert after == comparison(repo, "fresh")[1]  # exactly what a run from scratch of the new code gives
    # a pause rule: the finetuning format also supervises the position before the last pause
    edit(repo / "pause.py", "n_pause - 1] = -1", "n_pause - 2] = -1")  # (not the whole line: it is A3's answer)
    out, after_rule = comparison(repo, "out")
    assert "reusing" not in out and out.count("pause.py changed since it was trained") == 3
    assert after_rule == comparison(repo, "fresh2")[1]
    # scoring code is not training code: an edit to eval.py reuses every run
    edit(repo / "eval.py", '"""One model on one test set', '"""One model (edited) on one test set')
    out, _ = comparison(repo, "out")
    assert out.count("reusing") == 3


def gsm8k_file(path, n, offset=0):
    path.write_text("\n".join(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"#### {2 * i + offset}"})
                              for i in range(n)) + "\n")


def test_a_changed_train_file_at_the_same_path_is_retrained(tmp_path, capsys):
    gsm8k_file(tmp_path / "train.jsonl", 24)
    cfg = common.parse_config(TINY + ["--phase=finetune", "--task=gsm8k", "--vocab=full", "--n_val=4",
                                      "--block_size=48", "--max_iters=2", f"--train_file={tmp_path}/train.jsonl",
                                      f"--out_dir={tmp_path}/ft"], train.Config)
    assert ev.ensure_trained(cfg)[1] is False
    assert ev.ensure_trained(cfg)[1] is True  # the same file: reused
    gsm8k_file(tmp_path / "train.jsonl", 24, offset=1)  # other answers, same path
    capsys.readouterr()
    assert ev.ensure_trained(cfg)[1] is False
    assert f"retraining {tmp_path}/ft: {tmp_path}/train.jsonl changed since it was trained" in capsys.readouterr().out
    assert read_checkpoint(f"{tmp_path}/ft/ckpt.pt")["data"] == {f"{tmp_path}/train.jsonl": common.file_hash(
        tmp_path / "train.jsonl")}


def test_reuse_is_refused_when_only_n_pause_differs(tmp_path, capsys):
    cfg = common.parse_config(TINY + ["--phase=finetune", "--task=keyparity", "--block_size=40", "--n_pause=3",
                                      "--max_iters=2", f"--out_dir={tmp_path}/ft"], train.Config)
    ev.ensure_trained(cfg)
    assert ev.stale(cfg, f"{tmp_path}/ft/ckpt.pt") is None
    assert ev.stale(dataclasses.replace(cfg, n_pause=4), f"{tmp_path}/ft/ckpt.pt") == "its settings differ (n_pause)"


def test_train_refuses_an_out_dir_that_holds_a_checkpoint(tmp_path, capsys):
    args = TINY + ["--max_iters=3", f"--out_dir={tmp_path}"]
    assert train.main(args) == 0
    finished = (tmp_path / "ckpt.pt").read_bytes()
    capsys.readouterr()
    assert train.main(args) == 2  # a second run in the same folder
    err = capsys.readouterr().err
    assert err == (f"train.py: {tmp_path} holds a checkpoint: --resume=True continues it, --overwrite=True "
                   "replaces it\n")
    assert (tmp_path / "ckpt.pt").read_bytes() == finished
    assert train.main(args + ["--resume=True"]) == 0  # continued (it had finished: nothing to do)
    assert (tmp_path / "ckpt.pt").read_bytes() == finished
    assert train.main(args + ["--overwrite=True", "--max_iters=2"]) == 0  # replaced
    assert read_checkpoint(f"{tmp_path}/ckpt.pt")["step"] == 2
    capsys.readouterr()
    assert train.main(TINY + ["--resume=True", f"--out_dir={tmp_path}/nothing"]) == 2
    assert f"--resume=True, but there is no {tmp_path}/nothing/ckpt.pt to continue" in capsys.readouterr().err


def test_switching_settings_back_and_forth_trains_each_once_and_keeps_both_results(tmp_path, capsys):
    """n_pause changes the matched control's steps, pause_frac the PausePT model: each setting gets its
    own folders and its own results file, so going back reuses everything and overwrites nothing."""
    (tmp_path / "pt.py").write_text(PT)
    (tmp_path / "ft.py").write_text(FT)
    cfg = dict(pretrain_config=str(tmp_path / "pt.py"), finetune_config=str(tmp_path / "ft.py"), seeds=1,
               variants="StdPT_StdFT_matched,PausePT_StdFT", workers=1, progress=False, plot=False,
               out_dir=str(tmp_path / "out"), sweep=False)
    first, second = EvalConfig(**cfg, n_pause=10, pause_frac=0.1), EvalConfig(**cfg, n_pause=4, pause_frac=0.2)
    ev.compare(first)
    first_md = tmp_path / "out" / (ev.results_name(first) + ".md")
    first_results = first_md.read_text()
    ev.compare(second)
    assert (tmp_path / "out" / (ev.results_name(second) + ".md")).exists() and first_md.read_text() == first_results
    capsys.readouterr()
    ev.compare(EvalConfig(**cfg, n_pause=10, pause_frac=0.1))
    out = capsys.readouterr().out
    assert "training out" not in out and out.count("reusing") == 4  # 2 pretrains, 2 finetunes
    folders = sorted(os.listdir(tmp_path / "out" / "seed1337"))
    assert [f.split("-")[0] for f in folders] == ["ft_PausePT_StdFT_M0"] * 2 + ["ft_StdPT_StdFT_matched_M0"] * 2 + \
        ["pt_pause"] * 2 + ["pt_std"]
    # the first command's results, rewritten by its rerun: the same table (the first line is provenance)
    assert first_md.read_text().split("\n", 1)[1].replace("0 of 4", "4 of 4") == first_results.split("\n", 1)[1]


def test_results_name_follows_the_settings_that_change_the_numbers():
    assert ev.results_name(EvalConfig()) == "results"
    assert ev.results_name(EvalConfig(out_dir="x", progress=False, workers=2, plot=False)) == "results"
    assert ev.results_name(EvalConfig(n_pause=4, seeds=2)) == "results_seeds=2,n_pause=4"
    long = ev.results_name(EvalConfig(variants="all", pretrain_config="/a/very/long/path/" * 5 + "pt.py"))
    assert long.startswith("results_pretrain_config=_a_very") and len(long) <= 8 + 60 + 9


def test_learning_curve_scores_a_run_as_it_was_finetuned_and_without_pauses(monkeypatch):
    """Each point of the curve (which the plateau check reads) answers with the run's own number and
    placement of pauses, and once with none."""
    calls = []
    monkeypatch.setattr(train, "accuracy", lambda model, vocab, pairs, n, **kw: calls.append((n, kw)) or 0.5)
    monkeypatch.setattr(train, "estimate_loss", lambda *args: 1.0)
    cfg = train.Config(phase="finetune", task="keyparity", n_val=10, n_pause=4, placement="prepend")
    model = torch.nn.Linear(1, 1)
    point = train.evaluate(model, [], [("1 =", " 0")], data.task_vocab("keyparity"), cfg, "cpu", None)
    assert point == {"val_loss": 1.0, "exact_match": 0.5, "exact_match_no_pause": 0.5}
    assert calls == [(4, {"filler": "pause", "placement": "prepend", "repeat": False, "cot_task": ""}), (0, {})]
    assert model.training


def test_mixed_pause_counts_apply_to_a_downstream_task(tmp_path):
    gsm8k_file(tmp_path / "train.jsonl", 40)
    cfg = common.parse_config(TINY + ["--phase=finetune", "--task=gsm8k", "--vocab=full", "--n_val=4",
                                      "--block_size=48", "--n_pause=6", "--n_pause_min=2",
                                      f"--train_file={tmp_path}/train.jsonl"], train.Config)
    vocab = data.Vocab(None)
    train_set, _ = data.phase_data(cfg)
    x, _, _ = data.make_batcher(cfg, train_set, vocab, 48).get(32, np.random.default_rng(0))
    counts = {int((row == vocab.pause_id).sum()) for row in x}
    assert len(counts) > 2 and counts <= set(range(2, 7))


def test_intervals_are_shown_as_computed():
    row = common.seed_stats([0.99, 0.9, 1.0])  # mean 96.3, its t-interval reaches past 100
    assert row["ci95"][1] > 1.0
    table = report.table_rows([{**row, "variant": "StdPT_HintFT", "M_ft": 10, "M_inf": 10, "filler": "pause",
                            "placement": "append", "positions": 23.0, "flops_ratio": 1.77, "train_ratio": 1.77,
                            "plateau": [True] * 3}])
    assert f"{100 * row['ci95'][1]:.1f}]" in table and "100.0]" not in table


def test_resume_wins_over_overwrite_and_keeps_the_snapshots(tmp_path):
    """--resume=True --overwrite=True continues the run (resume is the safer reading): its snapshot stays."""
    args = TINY + ["--max_iters=4", "--eval_interval=2", "--snapshot_at=2", f"--out_dir={tmp_path}"]
    assert train.main(args) == 0
    snapshot = (tmp_path / "ckpt_2.pt").read_bytes()
    assert train.main(args + ["--resume=True", "--overwrite=True"]) == 0
    assert (tmp_path / "ckpt_2.pt").read_bytes() == snapshot
    assert train.main(args + ["--overwrite=True"]) == 0  # replaced: the new run writes its own snapshot
    assert read_checkpoint(f"{tmp_path}/ckpt_2.pt")["step"] == 2


def test_a_comparison_moved_and_spelled_another_way_is_reused_whole(tmp_path, monkeypatch, capsys):
    """A finished comparison copied to another folder (another disk, say) and rerun there under a path
    spelled another way (./moved) retrains nothing and gives the same numbers: runs are compared by what
    their paths hold (the fingerprint of the weights a finetune started from), not by the paths."""
    (tmp_path / "pt.py").write_text(PT)
    (tmp_path / "ft.py").write_text(FT)
    cfg = dict(pretrain_config=str(tmp_path / "pt.py"), finetune_config=str(tmp_path / "ft.py"), seeds=1, n_pause=3,
               variants="StdPT_StdFT,StdPT_PauseFT", workers=1, progress=False, plot=False, sweep=False)
    first = ev.compare(EvalConfig(**cfg, out_dir=str(tmp_path / "out")))
    shutil.copytree(tmp_path / "out", tmp_path / "disk" / "moved")
    monkeypatch.chdir(tmp_path / "disk")
    capsys.readouterr()
    again = ev.compare(EvalConfig(**cfg, out_dir="./moved"))
    out = capsys.readouterr().out
    assert "  training " not in out and "retraining" not in out and out.count("reusing") == 3  # 1 pretrain, 2 finetunes
    assert "0 of 3 training runs ran in this command" in out
    assert [r["per_seed"] for r in again["rows"]] == [r["per_seed"] for r in first["rows"]]


def test_a_retrain_that_stops_halfway_leaves_the_old_run(tmp_path, monkeypatch, capsys):
    """A stale run is replaced only by a complete one: a retrain that dies after its first checkpoints
    leaves the old run's ckpt.pt as it was (reused again once nothing differs any more); a retrain that
    completes replaces it and leaves no other folder behind."""
    cfg = common.parse_config(TINY + ["--max_iters=4", "--eval_interval=1", "--snapshot_at=2",
                                      f"--out_dir={tmp_path}/run/"], train.Config)  # a trailing /: the new run trains beside it
    path, _ = ev.ensure_trained(cfg)
    finished = open(path, "rb").read()
    real_code, real_lr = common.code_hashes(), train.get_lr
    monkeypatch.setattr(train, "code_hashes", lambda: {**real_code, "model.py": "0" * 16})  # model.py edited: stale

    def dies_at_step_3(it, cfg):
        if it == 3:
            raise KeyboardInterrupt  # killed, after the checkpoints of steps 0 to 3
        return real_lr(it, cfg)
    monkeypatch.setattr(train, "get_lr", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        ev.ensure_trained(cfg)
    assert open(path, "rb").read() == finished and sorted(os.listdir(tmp_path)) == ["run", "run.partial"]
    monkeypatch.setattr(train, "code_hashes", lambda: real_code)  # the edit undone: the old run is current
    monkeypatch.setattr(train, "get_lr", real_lr)
    assert ev.ensure_trained(cfg) == (path, True) and open(path, "rb").read() == finished
    monkeypatch.setattr(train, "code_hashes", lambda: {**real_code, "model.py": "0" * 16})
    assert ev.ensure_trained(cfg) == (path, False)  # completes this time: replaced, nothing else left
    assert read_checkpoint(path)["code"]["model.py"] == "0" * 16 and os.listdir(tmp_path) == ["run"]
    assert sorted(os.listdir(tmp_path / "run")) == ["ckpt.pt", "ckpt_2.pt"]


def drop_pause_py(ckpt):
    del ckpt["code"]["pause.py"]  # as if pause.py had not been a training file when it was made


def older_torch(ckpt):
    ckpt["torch"] = "2.0.0"


def no_torch(ckpt):
    del ckpt["torch"]  # a checkpoint from before the torch version was recorded


@pytest.mark.parametrize("doctor, why", [
    (drop_pause_py, "pause.py changed since it was trained"),
    (older_torch, f"it was made with torch 2.0.0, this is {torch.__version__}"),
    (no_torch, f"it was made with torch unknown, this is {torch.__version__}"),
    ("stopped", "it stopped at step 2 of 4"),
])
def test_what_made_a_run_that_differs_retrains_it(tmp_path, capsys, doctor, why):
    """eval.py retrains a finished run whose code record lacks a training file, that another torch made
    (its kernels change the bits), or that stopped before max_iters (killed after its step-2 checkpoint),
    and says why in one line."""
    cfg = common.parse_config(TINY + ["--max_iters=4", "--eval_interval=2", "--snapshot_at=2",
                                      f"--out_dir={tmp_path}/run"], train.Config)
    path, _ = ev.ensure_trained(cfg)
    if doctor == "stopped":
        shutil.copyfile(tmp_path / "run" / "ckpt_2.pt", path)
    else:
        ckpt = read_checkpoint(path)
        doctor(ckpt)
        common.save_checkpoint(path, ckpt)
    capsys.readouterr()
    assert ev.ensure_trained(cfg) == (path, False)
    assert f"  retraining {tmp_path}/run: {why}\n" in capsys.readouterr().out
    assert ev.stale(cfg, path) is None  # the new run is current


def test_the_run_folder_does_not_depend_on_where_out_dir_is(tmp_path, monkeypatch):
    """A run's folder name (its settings' hash) is the same whatever out_dir is and however it is
    spelled: the checkpoint a finetune starts from enters the hash relative to out_dir."""
    monkeypatch.chdir(tmp_path)
    names = set()
    for out in (str(tmp_path / "a"), "./b", "b", "c/../d"):
        init = os.path.join(out, "seed1337", "pt_std-12345678", "ckpt.pt")
        os.makedirs(os.path.dirname(init), exist_ok=True)
        open(init, "w").close()
        cfg = ev.run_dir(EvalConfig(out_dir=out), train.Config(phase="finetune", init_from=init), "ft_StdPT_StdFT_M0")
        assert os.path.dirname(cfg.out_dir) == os.path.join(out, "seed1337")
        names.add(os.path.basename(cfg.out_dir))
    assert len(names) == 1


def test_every_setting_that_changes_the_bits_changes_the_folder_or_the_results_name():
    """Each train.Config setting but where the run lies and how it is shown changes its folder's name;
    each eval.py setting but those that cannot change a number changes the results file's name."""
    def other(value):
        return not value if isinstance(value, bool) else value + (1 if isinstance(value, int) else
                                                                   0.5 if isinstance(value, float) else "x")
    ecfg, cfg = EvalConfig(), train.Config()
    name = lambda c: os.path.basename(ev.run_dir(ecfg, c, "run").out_dir)  # noqa: E731
    same = {f.name for f in dataclasses.fields(cfg) if name(dataclasses.replace(cfg, **{f.name: other(getattr(cfg, f.name))}))
            == name(cfg)}
    assert same == {"out_dir", "progress", "overwrite", "resume"}
    same = {f.name for f in dataclasses.fields(ecfg)
            if ev.results_name(dataclasses.replace(ecfg, **{f.name: other(getattr(ecfg, f.name))})) == "results"}
    assert same == {"out_dir", "progress", "plot", "workers", "ckpt", "n_inf", "test_file", "mistakes"}
