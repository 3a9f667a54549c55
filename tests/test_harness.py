"""harness.py through lm-eval's own simple_evaluate, offline, on local files of the paper's tasks in their
published formats. Where lm-eval's task definition is downstream.py's, the numbers must be downstream.py's;
where lm-eval's own definition differs (README: "lm-eval and downstream.py"), the difference must be the
one the README names and no other."""
import json
import os

import pytest
import torch

import downstream as d
import harness
from data import EOT_ID, PAUSE_ID, Vocab
from hf_tiny import optional, save_full, tiny_full_model
from tiny import Scripted

lm_eval = optional("lm_eval")
TASKS = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")  # lm-eval's own definitions, as installed
VOCAB = Vocab(None)

HELLASWAG = [  # the published jsonl's fields; endings of unequal lengths, so acc and acc_norm can differ
    {"ind": i, "activity_label": label, "ctx_a": a, "ctx_b": b, "ctx": f"{a} {b}", "endings": endings,
     "source_id": "x", "split": "val", "split_type": "indomain", "label": str(y)}
    for i, (label, a, b, endings, y) in enumerate([
        ("Baking cookies", "A woman stirs dough in a bowl.", "she", ["puts it on a tray.", "sings.", "flies to the moon "
                                                                     "on a paper plane made of flour.", "eats the bowl."], 0),
        ("Fishing", "A man sits by a lake.", "he", ["casts a line into the water.", "melts.", "reads.", "is a fish."], 0),
        ("Running", "[header] How to run faster.", "[title] Warm up first.", ["Stretch.", "Sleep all day long in bed.",
                                                                              "Run.", "Eat a car."], 2),
        ("Painting", "Someone dips a brush in paint.", "then", ["they paint the wall blue.", "the wall paints them.",
                                                                 "a dog barks.", "nothing happens at all, ever."], 1)])]
PIQA = [({"goal": "open a jar", "sol1": "twist the lid", "sol2": "eat the lid"}, 0),
        ({"goal": "dry wet hair", "sol1": "use a towel", "sol2": "use a bucket of water to dry it"}, 0),
        ({"goal": "cool a drink", "sol1": "add a hot stone", "sol2": "add ice"}, 1)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def task_yaml(folder, name, data, splits=("validation",), include=None, **fields):
    """A task YAML of our own (lm-eval's format) on a local json file, optionally on top of one of lm-eval's."""
    lines = [f"task: {name}", "dataset_path: json", "dataset_name: null", "dataset_kwargs:", "  data_files:"]
    lines += [f"    {split}: {data}" for split in splits]
    lines += [f"include: {include}"] if include else []
    lines += [f"{k}: {json.dumps(v)}" for k, v in fields.items()]
    (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")


MC = dict(output_type="multiple_choice", validation_split="validation", test_split=None, training_split=None,
          metric_list=[{"metric": "acc"}, {"metric": "acc_norm"}])


def run(lm, folder, tasks, **kw):
    from lm_eval.tasks import TaskManager
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    return harness.evaluate(lm, tasks, manager, num_fewshot=0, **kw)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The fixtures in their published formats, and task YAMLs on them: ours (downstream.py's prompts)
    and lm-eval's own definitions (include:) with only the data source changed."""
    f = tmp_path_factory.mktemp("tasks")
    h = write_jsonl(f / "hellaswag.jsonl", HELLASWAG)
    write_jsonl(f / "piqa.jsonl", [g for g, _ in PIQA])
    (f / "piqa-labels.lst").write_text("".join(f"{y}\n" for _, y in PIQA))
    p = write_jsonl(f / "piqa_hf.jsonl", [{**g, "label": y} for g, y in PIQA])  # as lm-eval's copy holds it
    task_yaml(f, "hellaswag_nanopause", h, doc_to_text="{{ctx}}", doc_to_choice="{{endings}}",
              doc_to_target="{{label}}", **MC)
    task_yaml(f, "piqa_nanopause", p, doc_to_text="Goal: {{goal}}\nSolution:", doc_to_choice="{{[sol1, sol2]}}",
              doc_to_target="{{label}}", **MC)
    task_yaml(f, "hellaswag_own", h, include=f"{TASKS}/hellaswag/hellaswag.yaml", training_split=None)
    task_yaml(f, "piqa_own", p, include=f"{TASKS}/piqa/piqa.yaml", training_split=None)
    return f


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A tiny random full-vocab GPT saved as a nanopause checkpoint, read by the harness with M_inf = 3."""
    ckpt = save_full(tiny_full_model(seed=5), tmp_path_factory.mktemp("ckpt") / "ckpt.pt")
    return harness.NanopauseLM(ckpt=ckpt, n_pause=3)


def downstream_mc(lm, task, path, m_inf, prefix=None, choices=None):
    """downstream.py's (acc, acc_norm) and per-choice log-likelihoods, prompts optionally replaced."""
    examples = d.load(task, path)
    for i, e in enumerate(examples):
        e["prefix"] = prefix(i, e) if prefix else e["prefix"]
        e["choices"] = choices(i, e) if choices else e["choices"]
    lls = [[d.choice_logprob(lm.model, VOCAB.encode(e["prefix"]), VOCAB.encode(c), m_inf, PAUSE_ID, EOT_ID)
            for c in e["choices"]] for e in examples]
    return d.rank_accuracy(lm.model, VOCAB, examples, m_inf), lls


def harness_mc(res, name):
    acc = res["results"][name]["acc,none"], res["results"][name]["acc_norm,none"]
    samples = sorted(res["samples"][name], key=lambda s: s["doc_id"])
    return acc, [[r[0][0] for r in s["resps"]] for s in samples]


@pytest.mark.parametrize("task", ["hellaswag", "piqa"])
def test_multiple_choice_with_pauses_scores_as_downstream(task, local, lm):
    """Same prompts: lm-eval's acc and acc_norm are downstream.py's raw and length-normalised ranking
    accuracies, and every choice's log-likelihood is pause.choice_logprob's after M_inf = 3 pauses."""
    res = run(lm, local, [f"{task}_nanopause"])
    (acc, lls_h) = harness_mc(res, f"{task}_nanopause")
    (ds_acc, lls_d) = downstream_mc(lm, task, local / f"{task}.jsonl", 3)
    assert acc == pytest.approx(ds_acc, abs=1e-9)
    assert torch.allclose(torch.tensor(lls_h), torch.tensor(lls_d), atol=1e-4)
    (_, lls_0) = downstream_mc(lm, task, local / f"{task}.jsonl", 0)
    assert not torch.allclose(torch.tensor(lls_h), torch.tensor(lls_0), atol=1e-2)  # the pauses are there


def test_lm_evals_own_piqa_and_hellaswag_differ_from_downstream_only_in_the_prompt(local, lm):
    """lm-eval's own definitions on the same files: the same numbers as downstream.py once downstream.py is
    given lm-eval's prompts (PIQA: "Question: ...\\nAnswer:"; HellaSwag: the activity label, ctx_a + ctx_b
    capitalised, WikiHow's [bracket] markup removed from the context and the endings)."""
    from lm_eval.tasks.hellaswag.utils import preprocess  # lm-eval's own cleaning, used as its task uses it
    res = run(lm, local, ["piqa_own", "hellaswag_own"])
    piqa = downstream_mc(lm, "piqa", local / "piqa.jsonl", 3,
                         prefix=lambda i, e: f"Question: {PIQA[i][0]['goal']}\nAnswer:")
    assert harness_mc(res, "piqa_own")[0] == pytest.approx(piqa[0], abs=1e-9)
    r = HELLASWAG
    hs = downstream_mc(lm, "hellaswag", local / "hellaswag.jsonl", 3,
                       prefix=lambda i, e: preprocess(r[i]["activity_label"] + ": " + r[i]["ctx_a"] + " "
                                                      + r[i]["ctx_b"].capitalize()),
                       choices=lambda i, e: [" " + preprocess(x) for x in r[i]["endings"]])
    assert harness_mc(res, "hellaswag_own")[0] == pytest.approx(hs[0], abs=1e-9)
    assert torch.allclose(torch.tensor(harness_mc(res, "hellaswag_own")[1]), torch.tensor(hs[1]), atol=1e-4)


# --- generation: lm-eval's own gsm8k on a local file, a scripted model --------------------------------


def ids(text):
    (i,) = VOCAB.encode(text)
    return int(i)


def scripted_answerer(m, stop_after=True):
    """A full-vocab GPT that answers a GSM8k prompt only after exactly m pauses that follow "Answer:":
    " 7" if the question says "seven", else first a padding row (never to be produced; the next best
    id 0 is "!") and then " 8"; then the end token, or (stop_after=False) "\\nQuestion: 9" and the end."""
    colon, seven, eight, nl = ids(":"), ids(" 7"), ids(" 8"), ids("\n")
    cue = [ids("Answer"), colon] + [PAUSE_ID] * m  # what the context must end with to be answered

    def rule(ctx):
        if ctx[-len(cue):] == cue and (m == 0 or ctx[-m - 3] != PAUSE_ID):  # exactly m pauses
            return seven if ids(" seven") in ctx else 50300
        follow = {0: eight, seven: EOT_ID if stop_after else nl, eight: EOT_ID if stop_after else nl,
                  nl: ids("Question"), ids("Question"): colon, colon: ids(" 9"), ids(" 9"): EOT_ID}
        return follow.get(ctx[-1], ids(" 0"))
    model = Scripted(rule, vocab_size=50304)
    model.config.block_size = 64
    return model


GSM8K = [{"question": "What is three plus four, seven?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
         {"question": "Five plus three is eight?", "answer": "5 + 3 = <<5+3=8>>8\n#### 8"},
         {"question": "Is it seven or five?", "answer": "#### 5"}]


@pytest.fixture(scope="module")
def gsm8k(tmp_path_factory):
    f = tmp_path_factory.mktemp("gsm8k")
    data = write_jsonl(f / "test.jsonl", GSM8K)
    task_yaml(f, "gsm8k_own", data, splits=("test", "train"), include=f"{TASKS}/gsm8k/gsm8k.yaml")
    return f


def gsm8k_scores(res):
    r = res["results"]["gsm8k_own"]
    return r["exact_match,flexible-extract"], r["exact_match,strict-match"]


@pytest.mark.parametrize("m", [0, 4])
def test_generation_with_pauses_scores_as_downstream(m, gsm8k):
    """Greedy answers after M_inf pauses, the pause and padding rows never produced: lm-eval's gsm8k
    (flexible-extract: the last number) gives downstream.py's gsm8k score, 2 of 3 here; strict-match asks
    for GSM8k's "#### N", which a model finetuned on the number alone (downstream.py's target) never writes."""
    model = scripted_answerer(m)
    lm = harness.NanopauseLM(model=model, vocab=VOCAB, n_pause=m)
    res = run(lm, gsm8k, ["gsm8k_own"], gen_kwargs="max_gen_toks=8")
    samples = sorted((s for s in res["samples"]["gsm8k_own"] if s["filter"] == "flexible-extract"),
                     key=lambda s: s["doc_id"])
    assert [s["resps"][0][0] for s in samples] == [" 7", "! 8", " 7"]
    examples = d.load("gsm8k", gsm8k / "test.jsonl")
    ours = d.evaluate(model, VOCAB, "gsm8k", examples, m, 8)["score"]
    assert gsm8k_scores(res) == (pytest.approx(ours), 0.0) and ours == pytest.approx(2 / 3)


def test_generation_stops_at_the_tasks_stop_sequence(gsm8k):
    """lm-eval's gsm8k stops at "Question:"; downstream.py reads the answer up to the end token. A model
    that goes on to a new question after its answer scores by its answer in lm-eval, by the last number
    it wrote in downstream.py."""
    model = scripted_answerer(2, stop_after=False)
    lm = harness.NanopauseLM(model=model, vocab=VOCAB, n_pause=2)
    res = run(lm, gsm8k, ["gsm8k_own"], gen_kwargs="max_gen_toks=8")
    samples = sorted((s for s in res["samples"]["gsm8k_own"] if s["filter"] == "flexible-extract"),
                     key=lambda s: s["doc_id"])
    assert [s["resps"][0][0] for s in samples] == [" 7\n", "! 8\n", " 7\n"]
    assert gsm8k_scores(res)[0] == pytest.approx(2 / 3)
    assert d.evaluate(model, VOCAB, "gsm8k", d.load("gsm8k", gsm8k / "test.jsonl"), 2, 8)["score"] == 0.0


def test_rolling_loglikelihood_has_no_pauses_and_covers_every_token(lm):
    """Perplexity requests: every token of a text longer than block_size predicted once, no pauses, in
    lm-eval's windows: block_size tokens after <|endoftext|>, the next block_size after the one token
    before them, and the last few after a full block_size of context."""
    from lm_eval.api.instance import Instance
    text = "the cat sat on the mat " * 30
    toks = list(VOCAB.encode(text))
    B = lm.block
    assert 2 * B < len(toks) < 3 * B and len(toks) % B
    got = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])[0]
    windows = [([EOT_ID] + toks[:B - 1], B), (toks[B - 1:2 * B - 1], B), (toks[len(toks) - B - 1:-1], len(toks) - 2 * B)]
    want = 0.0
    with torch.no_grad():
        for inputs, n in windows:
            logits = lm.model(torch.tensor([inputs]), torch.zeros(1, len(inputs), dtype=torch.long))[0][0]
            targets = torch.tensor((inputs + [toks[-1]])[1:] if n < B else (toks[:B] if inputs[0] == EOT_ID else toks[B:2 * B]))
            want += torch.log_softmax(logits[-n:], -1).gather(1, targets[-n:, None]).sum().item()
    assert got == pytest.approx(want, abs=1e-3)


def test_bad_input_is_one_line_and_exit_2(tmp_path, local, lm, capsys):
    from common import save_checkpoint
    from model import GPT, GPTConfig
    from train import Config, checkpoint
    compact = GPT(GPTConfig(block_size=16, vocab_size=12, n_layer=1, n_head=1, n_embd=8))
    save_checkpoint(str(tmp_path / "compact.pt"), checkpoint(compact, compact.configure_optimizers(
        0.1, 1e-3, (0.9, 0.95), "cpu"), Config(), 0, 1.0, Vocab.compact(range(9)), None))
    good = save_full(tiny_full_model(seed=6, block_size=16), tmp_path / "good.pt")
    base = [f"--include_path={local}", "--include_defaults=False", f"--out={tmp_path}/r"]
    cases = [([f"--ckpt={tmp_path}/none.pt", "--tasks=piqa_nanopause"], "checkpoint not found"),
             ([f"--ckpt={tmp_path}/compact.pt", "--tasks=piqa_nanopause"], "compact vocab"),
             ([f"--ckpt={good}", "--tasks=piqa_nanopause,no_such_task"], "knows no task 'no_such_task'"),
             ([f"--ckpt={good}", "--tasks="], "--tasks"),
             ([f"--ckpt={good}", "--tasks=piqa_nanopause", "--n_pauses=3"], "unknown config key"),
             ([f"--ckpt={good}", "--tasks=piqa_nanopause", f"--include_path={tmp_path}/nowhere"], "not a folder"),
             ([f"--ckpt={good}", "--tasks=hellaswag_nanopause", "--n_pause=15"], "leave no room")]
    for args, message in cases:
        capsys.readouterr()
        assert harness.main(base + args) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (args, err)
    assert not os.path.exists(f"{tmp_path}/r.json")


def test_command_writes_table_and_json_beside_the_checkpoint(tmp_path, local, capsys):
    ckpt = save_full(tiny_full_model(seed=7), tmp_path / "ckpt.pt", n_pause=2)
    assert harness.main([f"--ckpt={ckpt}", "--tasks=piqa_nanopause", f"--include_path={local}",
                         "--include_defaults=False", "--num_fewshot=0"]) == 0
    stem = tmp_path / "harness_M2_piqa_nanopause"  # M_inf: the checkpoint's own n_pause
    saved = json.loads(stem.with_suffix(".json").read_text())
    assert saved["M_inf"] == 2 and "acc_norm,none" in saved["lm_eval"]["results"]["piqa_nanopause"]
    assert "piqa_nanopause" in stem.with_suffix(".md").read_text() and "acc_norm" in capsys.readouterr().out


def test_is_greedy_means_what_generation_would_produce(tmp_path):
    """lm-eval's loglikelihood also asks whether the continuation is the greedy one (LAMBADA's accuracy):
    it must be exactly what pause.answer generates after the same pauses, where the pause and the padding
    rows are never produced, even when one of them has the highest logit (row 50300 here)."""
    from pause import answer
    model = tiny_full_model(seed=8)
    prompt = list(VOCAB.encode("He opened the door and saw his old"))
    with torch.no_grad():
        x = torch.tensor([prompt + [PAUSE_ID] * 3])
        first = model(x, torch.zeros_like(x))[0][0, -1, :PAUSE_ID].argmax()
        model.transformer.wte.weight[50300] = 1.5 * model.transformer.wte.weight[first]
    lm = harness.NanopauseLM(model=model, vocab=VOCAB, n_pause=3)
    greedy = answer(model, [prompt], 3, PAUSE_ID, EOT_ID, max_new_tokens=3, ban_ids=VOCAB.unused_ids)[0]
    assert len(greedy) == 3 and greedy[0] == first.item()
    other = greedy[:2] + [(greedy[2] + 1) % PAUSE_ID]
    (lp_g, is_g), (lp_o, is_o) = lm._score([(prompt, greedy), (prompt, other)], 3)
    assert is_g and not is_o
    want = d.choice_logprob(model, prompt, greedy, 3, PAUSE_ID, EOT_ID)
    assert lp_g == pytest.approx(want, abs=1e-4)


def test_space_at_the_end_of_a_context_joins_the_continuation(lm):
    """A task may write "Answer: " + "7": scored as "Answer:" + " 7", as the prompt reads, since GPT-2's
    BPE has " 7" as one token and the model was finetuned on that split (lm-eval's convention)."""
    from lm_eval.api.instance import Instance
    reqs = [Instance("loglikelihood", {}, args, 0) for args in [("Answer: ", "7"), ("Answer:", " 7")]]
    (a, _), (b, _) = lm.loglikelihood(reqs)
    assert a == b


def test_pauses_go_where_the_checkpoint_put_them_in_finetuning(tmp_path):
    """A checkpoint finetuned with placement="prepend" is scored with its pauses before the context, as
    downstream.py scores it (choice_logprob with the same placement)."""
    model = tiny_full_model(seed=9)
    lm = harness.NanopauseLM(ckpt=save_full(model, tmp_path / "ckpt.pt", placement="prepend", n_pause=3))
    assert (lm.n_pause, lm.placement) == (3, "prepend")  # M_inf and placement: the checkpoint's own
    prompt, cont = list(VOCAB.encode("Goal: open a jar\nSolution:")), list(VOCAB.encode(" twist the lid"))
    [(got, _)] = lm._score([(prompt, cont)], 3)
    want = d.choice_logprob(model, prompt, cont, 3, PAUSE_ID, EOT_ID, placement="prepend")
    assert got == pytest.approx(want, abs=1e-4)
    assert abs(got - d.choice_logprob(model, prompt, cont, 3, PAUSE_ID, EOT_ID)) > 1e-3
