"""eval.py: a tiny end-to-end comparison produces the table and the JSON with all four variants."""
import dataclasses
import json

import pytest
import torch
from pathlib import Path

import data
import downstream
import eval as ev
import report
from eval import EvalConfig, compare
from model import GPTConfig, forward_flops

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
                out_dir=str(tmp_path / "out"), progress=False, n_pause=3, variants="paper", workers=1)


def test_tiny_comparison_writes_table_and_json(tiny_configs, capsys):
    result = compare(EvalConfig(**tiny_configs, seeds=2, filler="dot", plot=False))
    rows = {(r["variant"], r["M_inf"], r["filler"]): r for r in result["rows"] if not r.get("reference")}
    sweep = {0, 1, 3, 6}  # M_inf = 0, M_ft/2, M_ft, 2*M_ft with M_ft = 3
    expected = {("StdPT_StdFT", 0, "pause"), ("StdPT_StdFT", 3, "dot"), ("PausePT_StdFT", 0, "pause")}
    expected |= {(v, m, "pause") for v in ("StdPT_PauseFT", "PausePT_PauseFT") for m in sweep}
    assert set(rows) == expected
    for r in rows.values():
        assert len(r["per_seed"]) == 2 and all(0 <= a <= 1 for a in r["per_seed"])
        assert r["M_ft"] == (3 if "PauseFT" in r["variant"] else 0)
        assert r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
    base = rows[("StdPT_StdFT", 0, "pause")]
    for (name, m_inf, _), r in rows.items():  # more positions cost more, and the same positions the same
        assert (r["flops_ratio"] > 1) == (m_inf > 0) and r["flops_ratio"] >= 1
    assert base["delta"] == 0 and base["flops_ratio"] == 1
    assert rows[("PausePT_PauseFT", 6, "pause")]["positions"] == pytest.approx(base["positions"] + 6)
    stem = f"{tiny_configs['out_dir']}/{ev.results_name(EvalConfig(**tiny_configs, seeds=2, filler='dot'))}"
    saved = json.load(open(stem + ".json"))
    assert saved["rows"] == json.loads(json.dumps(result["rows"])) and saved["seeds"] == [1337, 1338]
    assert {"command", "commit", "machine", "seconds"} <= set(saved)
    md = open(stem + ".md").read()
    out = capsys.readouterr().out
    for name in ev.SETS["paper"].split(","):
        assert name in md and f"| {name} |" in out
    assert "| 3 dots |" in md
    # the learning curves: each variant's mean over seeds of the curves its checkpoints recorded, and the
    # plateau column read from them
    curves = {c["variant"]: c for c in saved["curves"]}
    assert list(curves) == ev.SETS["paper"].split(",")
    histories = [torch.load(p, weights_only=True)["val_history"]
                 for s in (1337, 1338) for p in Path(tiny_configs["out_dir"], f"seed{s}").glob("ft_StdPT_PauseFT_M3-*/ckpt.pt")]
    assert len(histories) == 2
    assert curves["StdPT_PauseFT"]["mean"] == pytest.approx(
        [(a["exact_match"] + b["exact_match"]) / 2 for a, b in zip(*histories)])
    assert curves["StdPT_PauseFT"]["step"] == [h["step"] for h in histories[0]]
    plateau = [abs(h[-1]["exact_match"] - next(p for p in h if p["step"] == 7)["exact_match"]) < 0.02 for h in histories]
    assert rows[("StdPT_PauseFT", 3, "pause")]["plateau"] == plateau  # 7 = 3/4 of 10 steps
    assert "steps to 90%" in md and "StdPT_PauseFT @0" in md and "PausePT_StdFT @0" not in md
    # a second run reuses every finished run instead of training again
    compare(EvalConfig(**tiny_configs, seeds=2, plot=False))
    out = capsys.readouterr().out
    assert "  training " not in out and out.count("reusing") == 12


def test_prepend_trains_and_scores_separately(tiny_configs, capsys):
    result = compare(EvalConfig(**{**tiny_configs, "variants": "StdPT_PauseFT"}, placement="prepend", sweep=False,
                                plot=False))
    assert [(r["M_inf"], r["placement"]) for r in result["rows"] if not r.get("reference")] == [(3, "prepend"), (0, "prepend")]
    assert "ft_StdPT_PauseFT_M3_prepend" in capsys.readouterr().out


def test_plot_is_optional(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert ev.plot([], str(tmp_path / "p.png")) is None


def test_bad_variant_is_an_error(tiny_configs, capsys):
    assert ev.main([f"--{k}={v}" for k, v in {**tiny_configs, "variants": "Foo"}.items()]) == 2
    assert "unknown variant 'Foo'" in capsys.readouterr().err


class Scripted(torch.nn.Module):
    """A stand-in model whose generate() continues each prompt with a scripted list of tokens."""

    def __init__(self, script, block_size=64):
        super().__init__()
        self.config = GPTConfig(block_size=block_size)
        self.weight = torch.nn.Parameter(torch.zeros(1))  # answer() reads the device from here
        self.script = script

    def generate(self, idx, max_new_tokens, **kw):
        rows = [r + self.script[tuple(r)][:max_new_tokens] for r in idx.tolist()]
        return torch.tensor(rows)


def test_an_answer_that_never_ends_is_wrong():
    """accuracy() must leave room for the end token: a model that writes the right tokens and then goes
    on (never ending its answer) has not given the right answer."""
    vocab = data.task_vocab("keysum")
    pairs = data.make_examples("keysum", 20, "test", 0)
    digit = vocab.encode(" 1")[0]
    script = {tuple(vocab.encode(p).tolist()): vocab.encode(t).tolist() + [digit] * 5 for p, t in pairs}
    assert ev.accuracy(Scripted(script), vocab, pairs, 0) == 0.0
    ended = {k: v[:-5] + [vocab.eot_id] for k, v in script.items()}
    assert ev.accuracy(Scripted(ended), vocab, pairs, 0) == 1.0



def test_exact_match_is_exact():
    """The answer text must equal the target: " 1" is the target's token, "1" (no space) is another
    answer, and exact match does not strip it into the right one."""
    vocab = data.task_vocab("keyparity")
    pairs = data.make_examples("keyparity", 20, "test", 0)
    bare = {tuple(vocab.encode(p).tolist()): vocab.encode(t.strip()).tolist() + [vocab.eot_id] for p, t in pairs}
    assert all(len(v) == 2 for v in bare.values())  # one digit token without its space, then the end
    assert ev.accuracy(Scripted(bare), vocab, pairs, 0) == 0.0
    right = {tuple(vocab.encode(p).tolist()): vocab.encode(t).tolist() + [vocab.eot_id] for p, t in pairs}
    assert ev.accuracy(Scripted(right), vocab, pairs, 0) == 1.0

def test_a_finetune_of_an_older_pretrained_model_is_not_reused(tiny_configs, capsys):
    """Pretrain, finetune; then the pretraining recipe changes and only pretraining reruns (as when a run
    is interrupted before its finetunes): the finetune's config is unchanged, but it is stale."""
    ecfg = EvalConfig(**tiny_configs)
    pt = ev.phase_config(ecfg, "pretrain", 1337, out_dir=f"{ecfg.out_dir}/pt")
    ft = ev.phase_config(ecfg, "finetune", 1337, init_from=f"{ecfg.out_dir}/pt/ckpt.pt", n_pause=3,
                         out_dir=f"{ecfg.out_dir}/ft")
    ev.ensure_trained(pt)
    ev.ensure_trained(ft)
    capsys.readouterr()
    ev.ensure_trained(ft)
    assert "reusing" in capsys.readouterr().out  # same init weights, same config: reused
    ev.ensure_trained(dataclasses.replace(pt, max_iters=pt.max_iters + 5))  # a new pretrained model
    capsys.readouterr()
    ev.ensure_trained(ft)
    assert "training" in capsys.readouterr().out


def spy_on(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, spy)
    return calls


def test_ckpt_scoring_uses_the_checkpoints_placement(tmp_path, monkeypatch, capsys):
    import train
    args = ["--phase=finetune", "--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=32", "--n_train=200",
            "--n_val=40", "--n_test=30", "--batch_size=8", "--max_iters=2", "--eval_iters=1", "--n_pause=3",
            "--placement=prepend", "--progress=False", f"--out_dir={tmp_path}"]
    assert train.main(args) == 0
    calls = spy_on(monkeypatch, train, "answer")
    assert ev.main([f"--ckpt={tmp_path}/ckpt.pt", "--progress=False"]) == 0
    assert calls[-1][1]["placement"] == "prepend" and calls[-1][1]["filler_id"] is None
    assert "M_inf=3 prepended" in capsys.readouterr().out
    vocab = train.load_checkpoint(f"{tmp_path}/ckpt.pt")[1]
    assert ev.main([f"--ckpt={tmp_path}/ckpt.pt", "--progress=False", "--filler=dot", "--n_inf=2"]) == 0
    assert calls[-1][1]["filler_id"] == vocab.dot_id and calls[-1][0][2] == 2


def test_downstream_scoring_threads_placement_and_filler(tmp_path, monkeypatch):
    """On a real task format: the baseline's dot row gives dots, prepend-finetuned models are scored with
    prepended pauses, in generation and in likelihood ranking alike."""
    import json
    rows = [{"question": f"What is {i} plus {i}?", "answer": f"#### {2 * i}"} for i in range(12)]
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    piqa = [{"goal": f"goal {i}", "sol1": "a", "sol2": "b b"} for i in range(12)]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in piqa))
    (tmp_path / "p-labels.lst").write_text("0\n1\n" * 6)
    tiny = "n_layer = 1\nn_head = 1\nn_embd = 8\nblock_size = 32\nbatch_size = 2\nmax_iters = 2\neval_iters = 1\n"
    (tmp_path / "pt.py").write_text(tiny + "vocab = 'full'\nn_pretrain = 200\nn_val = 20\n")
    answers = spy_on(monkeypatch, downstream, "answer")
    choices = spy_on(monkeypatch, downstream, "choice_logprob")
    for task, data_file in (("gsm8k", "g.jsonl"), ("piqa", "p.jsonl")):
        (tmp_path / "ft.py").write_text(f"vocab = 'full'\ntask = '{task}'\nmax_answer_tokens = 4\nn_val = 4\n"
                                        f"batch_size = 2\nmax_iters = 2\neval_iters = 1\n"
                                        f"train_file = '{tmp_path / data_file}'\ntest_file = '{tmp_path / data_file}'\n")
        ev.compare(EvalConfig(pretrain_config=str(tmp_path / "pt.py"), finetune_config=str(tmp_path / "ft.py"),
                              out_dir=str(tmp_path / task), n_pause=2, seeds=1, progress=False, plot=False, workers=1,
                              variants="StdPT_StdFT,StdPT_PauseFT", sweep=False, filler="dot", placement="prepend"))
    from data import Vocab
    dot, pause = Vocab(None).dot_id, Vocab(None).pause_id
    seen = {(a[2], kw["filler_id"], kw["placement"]) for a, kw in answers}
    assert seen == {(0, None, "append"), (2, dot, "append"), (2, None, "prepend"), (0, None, "prepend")}
    seen = {(a[3], a[4], a[6]) for a, kw in choices}
    assert seen == {(0, pause, "append"), (2, dot, "append"), (2, pause, "prepend"), (0, pause, "prepend")}


def test_summary_rows_pair_deltas_by_seed_and_count_positions():
    per_seed = [{("StdPT_StdFT", 0, "pause"): 0.5, ("PausePT_PauseFT", 8, "pause"): 0.6},
                {("StdPT_StdFT", 0, "pause"): 0.7, ("PausePT_PauseFT", 8, "pause"): 0.8}]
    pairs = [("1 2 3 | 4 =", " 25")]  # 6 prompt tokens; answer " 25" is 1 token, + the end token
    assert len(data.get_encoding().encode_ordinary(pairs[0][0])) == 6
    plateaus = [{"StdPT_StdFT": (True, -0.001), "PausePT_PauseFT": (False, -0.2)}] * 2
    base, pause = ev.summarize(per_seed, plateaus, EvalConfig(), pairs)
    assert pause["delta"] == pytest.approx(0.1) and pause["delta_ci95"] == pytest.approx((0.1, 0.1))
    assert base["positions"] == 8 and pause["positions"] == 16 and base["sequential"] == pause["sequential"] == 1
    # FLOPs of the default's model (3 layers, 64 wide, keyparity's compact vocab): 7 positions read and 2
    # tokens emitted without pauses, 15 read with 8
    shape = GPTConfig(n_layer=3, n_head=4, n_embd=64, vocab_size=data.task_vocab("keyparity").size)
    assert pause["flops_ratio"] == pytest.approx(forward_flops(shape, 15, 2) / forward_flops(shape, 7, 2))
    # finetuning FLOPs over the baseline's: the default finetunes on keyparity (13 positions per example:
    # 11 prompt tokens, the answer and the end; 12 inputs) with M_ft = n_pause = 10
    assert base["train_ratio"] == 1 and pause["train_ratio"] == pytest.approx(forward_flops(shape, 22, 22) / forward_flops(shape, 12, 12))
    assert base["plateau"] == [True, True] and pause["plateau"] == [False, False]


def test_accuracy_can_show_wrong_answers(capsys):
    vocab = data.task_vocab("keysum")
    pairs = data.make_examples("keysum", 5, "test", 0)
    wrong = vocab.encode(" 0").tolist() + [vocab.eot_id]
    script = {tuple(vocab.encode(p).tolist()): wrong for p, _ in pairs}
    assert ev.accuracy(Scripted(script), vocab, pairs, 0, mistakes=2) == pytest.approx(
        sum(t == " 0" for _, t in pairs) / 5)
    shown = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("wrong:")]
    assert len(shown) == 2 and "-> ' 0', expected" in shown[0]


def test_default_set_hints_and_matched_control_and_workers_give_the_same_numbers(tmp_path):
    """The default's variants on keyparity: the hint variant trains hinted pause slots, the matched
    control trains without pauses for proportionally more steps, and running the seeds in worker
    processes (one thread each) gives exactly the numbers of running them here (one thread)."""
    pt = PT.replace("n_layer = 1", "task = 'keyparity'\nn_layer = 1")
    (tmp_path / "pt.py").write_text(pt)
    (tmp_path / "ft.py").write_text(FT + "task = 'keyparity'\neval_interval = 5\n")
    cfg = dict(pretrain_config=str(tmp_path / "pt.py"), finetune_config=str(tmp_path / "ft.py"), progress=False,
               n_pause=3, seeds=2, plot=False)
    here = compare(EvalConfig(**cfg, out_dir=str(tmp_path / "here"), workers=1))
    there = compare(EvalConfig(**cfg, out_dir=str(tmp_path / "there"), workers=2))
    assert [r["per_seed"] for r in here["rows"]] == [r["per_seed"] for r in there["rows"]]
    names = {r["variant"] for r in here["rows"] if not r.get("reference")}
    assert names == {"StdPT_StdFT", "StdPT_PauseFT", "StdPT_HintFT", "StdPT_StdFT_matched"}
    [hinted] = [torch.load(p, weights_only=True)["config"] for p in (tmp_path / "here/seed1337").glob("ft_StdPT_HintFT_M3-*/ckpt.pt")]
    [matched] = [torch.load(p, weights_only=True)["config"]
                 for p in (tmp_path / "here/seed1337").glob("ft_StdPT_StdFT_matched_M0-*/ckpt.pt")]
    assert hinted["hints"] and hinted["n_pause"] == 3 and not matched["hints"] and matched["n_pause"] == 0
    assert matched["max_iters"] == round(10 * ev.compute_ratio("keyparity", 3))  # 13 positions -> 16: 12 steps
    at_m_ft = {r["variant"]: r for r in here["rows"] if r["M_inf"] == r["M_ft"] and not r.get("reference")}
    # the matched control runs the baseline's positions at inference, and 12 of its 10 finetuning steps
    assert at_m_ft["StdPT_StdFT_matched"]["flops_ratio"] == 1 and at_m_ft["StdPT_StdFT_matched"]["train_ratio"] == 1.2
    shape = GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=data.task_vocab("keyparity").size)
    assert at_m_ft["StdPT_PauseFT"]["train_ratio"] == pytest.approx(  # 3 pauses on 13 positions (12 inputs)
        forward_flops(shape, 15, 15) / forward_flops(shape, 12, 12))
    assert all(len(r["plateau"]) == 2 for r in here["rows"] if not r.get("reference"))


def test_plateau_and_levels_are_read_from_the_learning_curve():
    """The plateau criterion compares validation exact match at 3/4 of the run (here step 30) with the
    end; steps_to is the first evaluation at or above a level."""
    curve = {"step": [0, 10, 20, 30, 40], "exact_match": [0.1, 0.5, 0.8, 0.97, 1.0], "no_pause": [0.0] * 5}
    assert report.plateaued(curve, 30) == (False, pytest.approx(3.0))
    assert report.plateaued({**curve, "exact_match": [0.1, 0.5, 0.8, 0.99, 1.0]}, 30) == (True, pytest.approx(1.0))
    assert report.plateaued({**curve, "exact_match": [0.1, 0.5, 0.8, 1.0, 0.97]}, 30) == (False, pytest.approx(-3.0))
    assert report.plateaued({}, 30)[0] is None and report.plateaued(curve, 25)[0] is None
    assert [report.steps_to(curve, lv) for lv in (0.5, 0.8, 0.95, 1.0)] == [10, 20, 30, 40]
    assert report.steps_to(curve, 1.01) is None
    other = {**curve, "exact_match": [0.0, 0.3, 0.6, 0.9, 0.92]}
    c = report.summarize_curve("StdPT_PauseFT", [curve, other], pause_ft=True)
    assert c["mean"] == pytest.approx([0.05, 0.4, 0.7, 0.935, 0.96]) and c["min"] == other["exact_match"]
    assert c["max"] == curve["exact_match"] and c["final"] == [1.0, 0.92] and c["pause_ft"]
    assert (c["final_mean"], c["final_std"]) == pytest.approx((0.96, 0.04 * 2 ** 0.5))
    assert c["steps_to"] == {"0.8": [20, 30], "0.9": [30, 30], "0.95": [30, None]}
    assert report.summarize_curve("StdPT_StdFT", [curve, {}]) == {}  # a seed without a curve: no summary
    # against a baseline, paired by seed: seed 1 is `curve` against `other`, seed 2 `other` against itself
    c = report.summarize_curve("StdPT_HintFT", [curve, other], base=[other, other])
    assert c["vs_baseline"]["step"] == curve["step"]
    assert c["vs_baseline"]["delta"] == pytest.approx([0.05, 0.1, 0.1, 0.035, 0.04])
    assert c["baseline_steps_to"] == {"0.8": [30, 30], "0.9": [30, 30], "0.95": [None, None]}
    table = report.curve_markdown([report.summarize_curve("StdPT_StdFT", [other, other]), c])
    hint_row = next(line for line in table.splitlines() if line.startswith("| StdPT_HintFT |"))
    # 80%: seed 1 got there at 20, the baseline at 30 (1.5x); 95%: the baseline never did in 40 steps
    assert hint_row == "| StdPT_HintFT | 96.0 ± 5.7 | 20 · 30 | 1.5 · 1.0 | 30 · 30 | 1.0 · 1.0 | 30 · - | > 1.3 · - |"


def test_curve_against_a_baseline_evaluated_at_other_steps():
    """The matched control runs more steps than the baseline and is evaluated at other steps: the paired
    difference is taken at the steps both were evaluated at, each curve read at its own index of that
    step; where the baseline never reached a level, the bound on `baseline ÷ this` is the baseline's run
    length (its last step) over this variant's steps, not this variant's longer run."""
    base = {"step": [0, 10, 20, 30, 40], "exact_match": [0.0, 0.2, 0.4, 0.6, 0.8], "no_pause": [0.0] * 5}
    longer = {"step": [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60],
              "exact_match": [0.0, 0.1, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99], "no_pause": [0.0] * 13}
    c = report.summarize_curve("StdPT_StdFT_matched", [longer], base=[base])
    assert c["vs_baseline"]["step"] == [0, 10, 20, 30, 40]
    assert c["vs_baseline"]["delta"] == pytest.approx([0.0, 0.3, 0.3, 0.25, 0.15])
    assert c["baseline_last_step"] == 40
    row = next(line for line in report.curve_markdown([c]).splitlines() if line.startswith("| StdPT_StdFT_matched |"))
    # 80% at 25 (the baseline at 40: 1.6); 90% at 35 and 95% at 40, never by the baseline in its 40 steps
    assert row == "| StdPT_StdFT_matched | 99.0 | 25 | 1.6 | 35 | > 1.1 | 40 | - |"


def test_one_seed_curve_shows_no_spread():
    """With one seed there is no spread to show: the final value alone, not `± 0.0`."""
    curve = {"step": [0, 10], "exact_match": [0.5, 0.75], "no_pause": [0.0, 0.0]}
    row = lambda curves: next(line for line in report.curve_markdown(curves).splitlines()  # noqa: E731
                              if line.startswith("| StdPT_StdFT |"))
    assert row([report.summarize_curve("StdPT_StdFT", [curve])]).startswith("| StdPT_StdFT | 75.0 | - |")
    assert row([report.summarize_curve("StdPT_StdFT", [curve, curve])]).startswith("| StdPT_StdFT | 75.0 ± 0.0 | - · - |")


def test_a_curve_that_moves_over_its_last_quarter_is_no_plateau():
    """Plateau: validation exact match within 2 points over the last quarter. A curve that swings in its
    last quarter and comes back to where it was at 3/4 has not settled; a move of exactly 2 points is a
    move (`less than 2`)."""
    steps = [0, 10, 20, 30, 40, 50, 60, 70, 80]
    swing = {"step": steps, "exact_match": [0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.5, 0.9], "no_pause": [0.0] * 9}
    assert report.plateaued(swing, 60) == (False, pytest.approx(0.0))
    two = {**swing, "exact_match": [0.0] * 8 + [0.02]}
    assert report.plateaued(two, 60) == (False, pytest.approx(2.0))
    flat = {**swing, "exact_match": [0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.91, 0.9]}
    assert report.plateaued(flat, 60) == (True, pytest.approx(0.0))
