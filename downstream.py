"""
The paper's downstream tasks, read from their public files into (prefix, target) pairs, and their
metrics. Each loader takes a local file in the source's own format (download it once yourself; nothing
here touches the network) and returns a list of dicts {"prefix", "target", "answers"}: prefix and target
are what pause finetuning trains on (data.format_example appends the pauses), answers are every
reference a prediction is scored against.

  python -c "import downstream as d; ex = d.load('gsm8k', 'test.jsonl'); print(ex[0])"

Metrics (exact match after normalisation, F1 for CoQA-style answers, GSM8k's final number):
  exact_match(prediction, answers)   SQuAD's normalisation: lower case, no punctuation, no a/an/the
  f1(prediction, answers)            token-overlap F1 after the same normalisation, best over answers
  gsm8k_number(text)                 the number after '####', else the last number; commas dropped
"""
import json
import re
import string
from collections import Counter

# --- metrics ---------------------------------------------------------------------------------------


PUNCTUATION = set(string.punctuation)


def normalize(text):
    """Lower case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = "".join(c for c in text.lower() if c not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction, answers):
    return float(any(normalize(prediction) == normalize(a) for a in answers))


def f1(prediction, answers):
    def one(pred, ref):
        p, r = normalize(pred).split(), normalize(ref).split()
        common = sum((Counter(p) & Counter(r)).values())
        if not p or not r:
            return float(p == r)  # both empty: 1; one empty: 0
        if common == 0:
            return 0.0
        precision, recall = common / len(p), common / len(r)
        return 2 * precision * recall / (precision + recall)
    return max(one(prediction, a) for a in answers)


def gsm8k_number(text):
    """GSM8k's final answer: what follows '####' (the dataset's own marker), else the last number."""
    if "####" in text:
        text = text.split("####")[-1]
    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return numbers[-1].replace(",", "") if numbers else ""


def gsm8k_correct(prediction, answers):
    return float(gsm8k_number(prediction) != "" and gsm8k_number(prediction) == gsm8k_number(answers[0]))

# --- loaders: the sources' own file formats ----------------------------------------------------------


def _jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def gsm8k(path):
    """GSM8k jsonl: {"question", "answer"}; the answer's reasoning ends with '#### <number>'."""
    return [{"prefix": f"Question: {r['question']}\nAnswer:", "target": " " + gsm8k_number(r["answer"]),
             "answers": [gsm8k_number(r["answer"])]} for r in _jsonl(path)]


def commonsense_qa(path):
    """CommonsenseQA jsonl: {"question": {"stem", "choices": [{"label", "text"}]}, "answerKey"}; the
    model answers with the choice's letter."""
    out = []
    for r in _jsonl(path):
        choices = "\n".join(f"{c['label']}. {c['text']}" for c in r["question"]["choices"])
        out.append({"prefix": f"Question: {r['question']['stem']}\n{choices}\nAnswer:",
                    "target": " " + r["answerKey"], "answers": [r["answerKey"]]})
    return out


def squad(path):
    """SQuAD v1.1 json: data -> paragraphs (context) -> qas (question, answers[].text)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = [a["text"] for a in qa["answers"]]
                out.append({"prefix": f"{para['context']}\nQuestion: {qa['question']}\nAnswer:",
                            "target": " " + answers[0], "answers": answers})
    return out


def lambada(path):
    """LAMBADA jsonl: {"text"}; the target is the last word, the prefix everything before it."""
    out = []
    for r in _jsonl(path):
        prefix, word = r["text"].rstrip().rsplit(" ", 1)
        out.append({"prefix": prefix, "target": " " + word, "answers": [word]})
    return out


LOADERS = {"gsm8k": gsm8k, "commonsense_qa": commonsense_qa, "squad": squad, "lambada": lambada}
METRICS = {"gsm8k": gsm8k_correct, "commonsense_qa": exact_match, "squad": exact_match, "lambada": exact_match}


def load(name, path):
    if name not in LOADERS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](path)


def score(name, predictions, examples):
    """Mean of the task's metric over (prediction, example) pairs."""
    metric = METRICS[name]
    return sum(metric(p, e["answers"]) for p, e in zip(predictions, examples)) / max(1, len(examples))
