"""downstream.py: each loader on a few-line fixture in the source's own format; metrics by hand."""
import json

import pytest

import downstream as d


def test_normalize_and_exact_match():
    assert d.normalize("  The Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
    assert d.exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert d.exact_match("an apple", ["apple", "pear"]) == 1.0
    assert d.exact_match("Eiffel", ["Eiffel Tower"]) == 0.0


def test_f1_by_hand():
    # prediction "the cat sat" -> [cat, sat]; reference "cat sat down" -> [cat, sat, down]
    # overlap 2: precision 2/2, recall 2/3, F1 = 2 * 1 * (2/3) / (1 + 2/3) = 0.8
    assert d.f1("the cat sat", ["cat sat down"]) == pytest.approx(0.8)
    assert d.f1("dog", ["cat sat down", "dog"]) == 1.0  # best over the references
    assert d.f1("", [""]) == 1.0 and d.f1("x", ["the"]) == 0.0


def test_gsm8k_number():
    assert d.gsm8k_number("She pays 3 * 4 = 12 dollars.\n#### 1,234") == "1234"
    assert d.gsm8k_number("so the answer is -7") == "-7"
    assert d.gsm8k_number("2.5 then 3.75") == "3.75"
    assert d.gsm8k_number("no number") == ""
    assert d.gsm8k_correct(" 1234", ["1,234"]) == 1.0 and d.gsm8k_correct(" 12", ["1,234"]) == 0.0


def test_gsm8k_loader(tmp_path):
    rows = [{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
            {"question": "Big?", "answer": "#### 1,000"}]
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ex = d.load("gsm8k", tmp_path / "g.jsonl")
    assert ex[0] == {"prefix": "Question: Tom has 3 apples and buys 4. How many?\nAnswer:", "target": " 7",
                     "answers": ["7"]}
    assert ex[1]["target"] == " 1000"
    assert d.score("gsm8k", ["The answer is 7", "1000"], ex) == 1.0


def test_commonsense_qa_loader(tmp_path):
    row = {"id": "x", "answerKey": "B", "question": {"stem": "Where do fish live?", "choices": [
        {"label": "A", "text": "tree"}, {"label": "B", "text": "water"}]}}
    (tmp_path / "c.jsonl").write_text(json.dumps(row) + "\n")
    ex = d.load("commonsense_qa", tmp_path / "c.jsonl")
    assert ex == [{"prefix": "Question: Where do fish live?\nA. tree\nB. water\nAnswer:", "target": " B",
                   "answers": ["B"]}]
    assert d.score("commonsense_qa", [" B"], ex) == 1.0 and d.score("commonsense_qa", [" A"], ex) == 0.0


def test_squad_loader(tmp_path):
    squad = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{
        "context": "Paris is the capital of France.",
        "qas": [{"id": "1", "question": "What is the capital of France?",
                 "answers": [{"text": "Paris", "answer_start": 0}, {"text": "Paris.", "answer_start": 0}]}]}]}]}
    (tmp_path / "s.json").write_text(json.dumps(squad))
    ex = d.load("squad", tmp_path / "s.json")
    assert ex[0]["prefix"] == "Paris is the capital of France.\nQuestion: What is the capital of France?\nAnswer:"
    assert ex[0]["target"] == " Paris" and ex[0]["answers"] == ["Paris", "Paris."]
    assert d.score("squad", ["the paris"], ex) == 1.0


def test_lambada_loader(tmp_path):
    (tmp_path / "l.jsonl").write_text(json.dumps({"text": "he opened the door and saw his old friend"}) + "\n")
    ex = d.load("lambada", tmp_path / "l.jsonl")
    assert ex == [{"prefix": "he opened the door and saw his old", "target": " friend", "answers": ["friend"]}]


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        d.load("nope", "x")


def test_coqa_loader_keeps_the_conversation(tmp_path):
    coqa = {"data": [{"story": "Ann has a red bike.", "questions": [
        {"input_text": "Who has a bike?", "turn_id": 1}, {"input_text": "What color?", "turn_id": 2}],
        "answers": [{"input_text": "Ann", "turn_id": 1}, {"input_text": "red", "turn_id": 2}]}]}
    (tmp_path / "c.json").write_text(json.dumps(coqa))
    ex = d.load("coqa", tmp_path / "c.json")
    assert ex[1]["prefix"] == "Ann has a red bike.\nQ: Who has a bike?\nA: Ann\nQ: What color?\nA:"
    assert ex[1]["target"] == " red" and d.METRICS["coqa"] is d.coqa_f1


def test_nq_and_webquestions_loaders(tmp_path):
    (tmp_path / "nq.jsonl").write_text(json.dumps({"question": "who wrote hamlet", "answer": ["Shakespeare",
                                                                                             "W. Shakespeare"]}))
    ex = d.load("natural_questions", tmp_path / "nq.jsonl")
    assert ex[0]["prefix"] == "Question: who wrote hamlet?\nAnswer:" and ex[0]["answers"][1] == "W. Shakespeare"
    wq = [{"url": "u", "utterance": "what is the capital of france?",
           "targetValue": '(list (description Paris) (description "Paris, France"))'}]
    (tmp_path / "wq.json").write_text(json.dumps(wq))
    ex = d.load("web_questions", tmp_path / "wq.json")
    assert ex[0]["answers"] == ["Paris", "Paris, France"] and ex[0]["target"] == " Paris"


def test_choice_loaders(tmp_path):
    (tmp_path / "h.jsonl").write_text(json.dumps({"ctx": "He picks up the", "endings": ["ball.", "sky.", "a", "b"],
                                                  "label": "0"}))
    ex = d.load("hellaswag", tmp_path / "h.jsonl")
    assert ex[0]["choices"][0] == " ball." and ex[0]["label"] == 0 and ex[0]["target"] == " ball."
    (tmp_path / "train.jsonl").write_text(json.dumps({"goal": "open a jar", "sol1": "twist the lid",
                                                      "sol2": "eat the lid"}) + "\n")
    (tmp_path / "train-labels.lst").write_text("0\n")
    ex = d.load("piqa", tmp_path / "train.jsonl")
    assert ex[0]["prefix"] == "Goal: open a jar\nSolution:" and ex[0]["choices"] == [" twist the lid", " eat the lid"]
    assert {"hellaswag", "piqa"} == d.RANKED


def test_length_normalised_ranking_divides_by_characters(monkeypatch):
    from data import Vocab
    from model import GPT, GPTConfig
    vocab = Vocab(None)
    model = GPT(GPTConfig(block_size=64, vocab_size=vocab.size, n_layer=1, n_head=1, n_embd=8)).eval()
    fixed = {" x": -3.0, " a long ending": -6.0}  # raw sum prefers " x"; per character the long one wins
    monkeypatch.setattr(d, "choice_logprob", lambda m, p, c, *a: fixed[vocab.decode(c)])
    examples = [{"prefix": "Q", "choices": [" x", " a long ending"], "label": 1}]
    assert d.rank_accuracy(model, vocab, examples, 2) == (0.0, 1.0)


def test_commonsense_qa_scores_the_letter_exactly():
    item = [{"answers": ["A"]}]
    for wrong in ["", " ", " the", " .", " B", "the A"]:
        assert d.score("commonsense_qa", [wrong], item) == 0.0, wrong  # SQuAD's normalisation made these 1
    for right in [" A", "A", " a", " A. tree"]:
        assert d.score("commonsense_qa", [right], item) == 1.0, right


def test_squad_normalisation_drops_punctuation_before_articles():
    assert d.normalize("A-list") == "alist"  # articles after punctuation: "A-list" must not become "list"
    assert d.exact_match("list", ["A-list"]) == 0.0 and d.exact_match("alist", ["A-list"]) == 1.0


def test_coqa_uses_additional_answers_with_leave_one_out(tmp_path):
    coqa = {"data": [{"story": "Ann has a red bike.", "questions": [{"input_text": "What color?", "turn_id": 1}],
                      "answers": [{"input_text": "red", "turn_id": 1}],
                      "additional_answers": {"0": [{"input_text": "red bike", "turn_id": 1}],
                                             "1": [{"input_text": "a red one", "turn_id": 1}],
                                             "2": [{"input_text": "blue", "turn_id": 1}]}}]}
    (tmp_path / "c.json").write_text(json.dumps(coqa))
    ex = d.load("coqa", tmp_path / "c.json")
    assert ex[0]["answers"] == ["red", "red bike", "a red one", "blue"] and ex[0]["target"] == " red"
    # F1 of "red" vs each reference: 1, 2/3, 2/3 ("a" is an article), 0. Leaving out each reference in turn
    # and taking the best of the rest: 2/3, 1, 1, 1 -> mean 11/12 (CoQA's official scorer)
    assert d.score("coqa", ["red"], ex) == pytest.approx(11 / 12)
    assert d.coqa_f1("red", ["red"]) == 1.0  # one reference: plain F1


def test_lambada_is_exact_match_of_the_word():
    item = [{"answers": ["friend"]}]
    assert d.score("lambada", [" friend"], item) == 1.0
    for wrong in [" Friend", " friend.", " the friend", " friends", ""]:
        assert d.score("lambada", [wrong], item) == 0.0, wrong


def test_webquestions_answers_keep_their_parentheses(tmp_path):
    wq = [{"url": "u", "utterance": "what game?", "targetValue":
           '(list (description "Sonic the Hedgehog (2006)") (description Sonic) (description "say \\"hi\\""))'}]
    (tmp_path / "wq.json").write_text(json.dumps(wq))
    ex = d.load("web_questions", tmp_path / "wq.json")
    assert ex[0]["answers"] == ["Sonic the Hedgehog (2006)", "Sonic", 'say "hi"']
    assert ex[0]["target"] == " Sonic the Hedgehog (2006)"


# --- through the scoring path: answers decoded and scored, choices ranked, long prompts cut -----------


def scripted(next_of):
    """A full-vocab model whose next token is next_of[last token] (tests/tiny.py's Successor)."""
    from data import Vocab
    from tiny import Successor
    vocab = Vocab(None)
    return Successor({vocab.encode(a)[0]: vocab.encode(b)[0] if b else vocab.eot_id for a, b in next_of.items()},
                     vocab_size=vocab.size), vocab


def test_lambada_scores_zero_for_the_right_word_followed_by_more_words():
    """LAMBADA asks for the one target word: a prediction that starts with it and goes on is wrong."""
    item = [{"answers": ["friend"]}]
    for wrong in [" friend and then", "friend friend", " friend ."]:
        assert d.score("lambada", [wrong], item) == 0.0, wrong
    # and through evaluate: the model's greedy answer, decoded, scored
    examples = [{"prefix": "he saw his old", "target": " friend", "answers": ["friend"]}]
    model, vocab = scripted({" old": " friend", " friend": " and", " and": ""})  # answers " friend and"
    assert d.evaluate(model, vocab, "lambada", examples, 0, 4)["score"] == 0.0
    model, vocab = scripted({" old": " friend", " friend": ""})  # answers " friend", then ends
    assert d.evaluate(model, vocab, "lambada", examples, 0, 4)["score"] == 1.0


def test_length_normalisation_divides_by_characters_not_tokens(monkeypatch):
    """acc_norm divides a choice's log-likelihood by its length in characters. Here characters and tokens
    disagree: " a b c d" is 8 characters in 4 tokens, " understanding" 14 characters in 1 token. Per
    character the second wins (-5/14 > -4/8); per token the first would (-4/4 > -5/1)."""
    from data import Vocab
    from model import GPT, GPTConfig
    vocab = Vocab(None)
    assert [len(vocab.encode(c)) for c in (" a b c d", " understanding")] == [4, 1]
    model = GPT(GPTConfig(block_size=64, vocab_size=vocab.size, n_layer=1, n_head=1, n_embd=8)).eval()
    fixed = {" a b c d": -4.0, " understanding": -5.0}
    monkeypatch.setattr(d, "choice_logprob", lambda m, p, c, *a: fixed[vocab.decode(c)])
    examples = [{"prefix": "Q", "choices": [" a b c d", " understanding"], "label": 1, "answers": [" understanding"]}]
    for task in ("hellaswag", "piqa"):
        res = d.evaluate(model, vocab, task, examples, 2, 8)
        assert res["score"] == 1.0 and res["also"] == {"ranking accuracy (raw sum)": 0.0}


def test_long_prompts_lose_their_start_and_keep_the_question():
    """A prompt longer than the model's room is cut from the left: the question and "Answer:" at its end
    must reach the model. The scripted model answers " 7" only after "Answer:"'s last token."""
    assert d.fit_prefix([1, 2, 3, 4, 5, 6], 4) == [3, 4, 5, 6]
    prefix = "Question: " + "and then " * 40 + "how many?\nAnswer:"
    examples = [{"prefix": prefix, "target": " 7", "answers": ["7"]}]
    model, vocab = scripted({":": " 7", " 7": ""})
    assert len(vocab.encode(prefix)) > model.config.block_size  # it must be cut
    assert d.evaluate(model, vocab, "gsm8k", examples, 0, 4)["score"] == 1.0


def test_long_finetuning_prompts_lose_their_start_and_keep_the_question(tmp_path):
    """The same rule in the finetuning batches of a real task's file: each row holds the last tokens of
    its prompt (ending in "Answer:"), then the pauses and the target, within block_size."""
    import numpy as np
    import data
    from common import parse_config
    from tiny import TINY
    from train import Config
    rows = [{"question": f"{i} and then " + "more and more " * 30 + "how many?", "answer": f"#### {i}"} for i in range(3)]
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = parse_config(TINY + ["--phase=finetune", "--task=gsm8k", f"--train_file={tmp_path / 'g.jsonl'}",
                               "--n_val=1", "--n_pause=3", "--block_size=48"], Config)
    train_set, _ = data.phase_data(cfg)
    vocab = data.Vocab(None)
    x, y, _ = data.make_batcher(cfg, train_set, vocab, 48).get(8, np.random.default_rng(0))
    for xr, yr in zip(x, y):
        first = int(np.flatnonzero(yr != -1)[0])  # the last pause predicts the first target token
        prompt = xr[:first - 2]  # before the three pauses
        assert (xr[first - 2:first + 1] == vocab.pause_id).all()
        full = [vocab.encode(p) for p, _ in train_set]
        assert any(len(f) > len(prompt) and list(f[-len(prompt):]) == list(prompt) for f in full)  # its end
        assert vocab.decode(prompt).endswith("how many?\nAnswer:")


def test_length_normalisation_does_not_count_the_space_before_a_choice(monkeypatch):
    """acc_norm divides by the choice's own characters: the space the loaders put before each choice joins
    it to the prompt (lm-eval's target_delimiter) and lm-eval does not count it. " x" scores -1.0 and " xy"
    -1.9: per own character -1.0 < -0.95, so " xy" wins; counting the space, -0.5 > -0.633 would pick " x"."""
    from data import Vocab
    from model import GPT, GPTConfig
    vocab = Vocab(None)
    model = GPT(GPTConfig(block_size=64, vocab_size=vocab.size, n_layer=1, n_head=1, n_embd=8)).eval()
    fixed = {" x": -1.0, " xy": -1.9}
    monkeypatch.setattr(d, "choice_logprob", lambda m, p, c, *a: fixed[vocab.decode(c)])
    examples = [{"prefix": "Q", "choices": [" x", " xy"], "label": 1}]
    assert d.rank_accuracy(model, vocab, examples, 0) == (0.0, 1.0)
