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
