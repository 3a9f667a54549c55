"""
The paper's nine downstream tasks: loaders from their public files, their metrics, and scoring a
model on them. Each loader takes a local file in the source's own format (download it once yourself;
nothing here touches the network) and returns a list of dicts {"prefix", "target", "answers"}: prefix
and target are what pause finetuning trains on (pause.format_example adds the pauses), answers are
every reference a prediction is scored against.

  python -c "import downstream as d; ex = d.load('gsm8k', 'test.jsonl'); print(ex[0])"

Metrics, each following its task's official definition (the reference is named at the function):
  exact_match(prediction, answers)   SQuAD v1.1's normalisation (lower case, drop punctuation, then the
                                     articles a/an/the); SQuAD, Natural Questions, WebQuestions
  letter_match(prediction, answers)  CommonsenseQA: the answer letter, compared exactly
  lambada_match(prediction, answers) LAMBADA: the predicted last word must equal the target word exactly
  coqa_f1(prediction, answers)       CoQA's official F1: token overlap, leave-one-out over its 4 references
  gsm8k_correct(prediction, answers) GSM8k's final number ('####', else the last number; commas dropped)
HellaSwag and PIQA are scored by ranking their choices by likelihood (rank_accuracy).
"""
import json
import re
import string
from collections import Counter

import numpy as np

from decode import fast
from pause import answer, choice_logprob

# --- metrics ---------------------------------------------------------------------------------------


PUNCTUATION = set(string.punctuation)


def normalize(text):
    """SQuAD v1.1's normalize_answer (its evaluate-v1.1.py): lower case, drop punctuation, *then* drop
    the articles a/an/the, collapse whitespace. The order matters: "A-list" becomes "alist", not "list"."""
    text = "".join(c for c in text.lower() if c not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction, answers):
    """SQuAD v1.1's exact match, best over the references (also NQ-open's and WebQuestions' EM)."""
    return float(any(normalize(prediction) == normalize(a) for a in answers))


def f1(prediction, answers):
    """SQuAD v1.1's token F1 after normalize, best over the references."""
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


def coqa_f1(prediction, answers):
    """CoQA's official F1 (evaluate-v1.0.py, _compute_turn_score): with several references (the answer
    and the additional_answers of the dev set), each reference is left out in turn and the prediction
    scored against the best of the others; the turn's F1 is the mean of those. One reference: plain F1."""
    if len(answers) == 1:
        return f1(prediction, answers)
    return sum(f1(prediction, answers[:i] + answers[i + 1:]) for i in range(len(answers))) / len(answers)


def letter_match(prediction, answers):
    """CommonsenseQA: the first non-space character of the prediction, upper-cased, must be the answer
    key. SQuAD's normalisation would delete the letter "A" as an article, so it is not used here."""
    letter = prediction.strip()[:1].upper()
    return float(letter != "" and letter == answers[0].strip().upper())


def lambada_match(prediction, answers):
    """LAMBADA (Paperno et al. 2016): accuracy of predicting the exact target word; the prediction is
    the generated text without its surrounding whitespace, compared case- and punctuation-exactly."""
    return float(prediction.strip() == answers[0])


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


def coqa(path):
    """CoQA json: data -> {story, questions[].input_text, answers[].input_text} by turn; each turn's
    prefix holds the story and the earlier turns of the conversation. The dev set's additional_answers
    (three more references per turn) join the answer as references, as the official scorer uses them."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    out = []
    for story in data:
        history, extra = "", list(story.get("additional_answers", {}).values())
        for i, (q, a) in enumerate(zip(story["questions"], story["answers"])):
            refs = [a["input_text"]] + [more[i]["input_text"] for more in extra]
            out.append({"prefix": f"{story['story']}\n{history}Q: {q['input_text']}\nA:",
                        "target": " " + a["input_text"], "answers": refs})
            history += f"Q: {q['input_text']}\nA: {a['input_text']}\n"
    return out


def natural_questions(path):
    """Natural Questions, open-domain jsonl (NQ-open): {"question", "answer": [references]}."""
    return [{"prefix": f"Question: {r['question']}?\nAnswer:", "target": " " + r["answer"][0],
             "answers": list(r["answer"])} for r in _jsonl(path)]


# one (description X) of WebQuestions' targetValue: X is a quoted string (which may hold parentheses
# and backslash-escaped quotes, e.g. "Sonic the Hedgehog (2006)") or a bare word
WQ_DESCRIPTION = re.compile(r'\(description (?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))\)')


def web_questions(path):
    """WebQuestions json list: {"utterance", "targetValue": '(list (description "X") ...)'}; the
    references are every description (Berant et al. 2013's answer lists)."""
    with open(path, encoding="utf-8") as f:
        rows = json.load(f)
    out = []
    for r in rows:
        answers = [re.sub(r"\\(.)", r"\1", quoted) if quoted else bare
                   for quoted, bare in WQ_DESCRIPTION.findall(r["targetValue"])]
        out.append({"prefix": f"Question: {r['utterance']}\nAnswer:", "target": " " + answers[0],
                    "answers": answers})
    return out


def hellaswag(path):
    """HellaSwag jsonl: {"ctx", "endings": [4], "label"}; scored by ranking the endings."""
    return [_choice(r["ctx"], [" " + e for e in r["endings"]], int(r["label"])) for r in _jsonl(path)]


def piqa(path):
    """PIQA jsonl {"goal", "sol1", "sol2"} with its labels beside it: X.jsonl -> X-labels.lst (0/1 a
    line), as published. Scored by ranking the two solutions."""
    with open(re.sub(r"\.jsonl$", "-labels.lst", str(path))) as f:
        labels = [int(line) for line in f if line.strip()]
    return [_choice(f"Goal: {r['goal']}\nSolution:", [" " + r["sol1"], " " + r["sol2"]], y)
            for r, y in zip(_jsonl(path), labels)]


def _choice(prefix, choices, label):
    return {"prefix": prefix, "choices": choices, "label": label, "target": choices[label],
            "answers": [choices[label]]}


LOADERS = {"gsm8k": gsm8k, "commonsense_qa": commonsense_qa, "squad": squad, "lambada": lambada, "coqa": coqa,
           "natural_questions": natural_questions, "web_questions": web_questions, "hellaswag": hellaswag,
           "piqa": piqa}
METRICS = {"gsm8k": gsm8k_correct, "commonsense_qa": letter_match, "squad": exact_match, "lambada": lambada_match,
           "coqa": coqa_f1, "natural_questions": exact_match, "web_questions": exact_match}
RANKED = {"hellaswag", "piqa"}  # scored by the likelihood of each choice, not by generation


def load(name, path):
    if name not in LOADERS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](path)


def score(name, predictions, examples):
    """Mean of the task's metric over (prediction, example) pairs."""
    metric = METRICS[name]
    return sum(metric(p, e["answers"]) for p, e in zip(predictions, examples)) / max(1, len(examples))

# --- scoring a model ----------------------------------------------------------------------------------


def fit_prefix(prefix, room):
    """The last `room` tokens of a prefix: what fits before the pauses and the answer (a long context is
    cut from the left, so the question at its end stays)."""
    if room < 1:
        raise ValueError("no room for a prefix: block_size is too small for the pauses and the answer")
    return prefix[-room:]


def rank_accuracy(model, vocab, examples, m_inf, filler="pause", placement="append"):
    """HellaSwag/PIQA: the choice with the highest likelihood after the pauses must be the label.
    Returns (accuracy by the raw sum of log-probabilities, accuracy by that sum divided by the choice's
    length in characters). The length-normalised one is the headline: the choices differ in length,
    and a raw sum favours short ones whatever they say (lm-evaluation-harness's acc_norm, as GPT-3's
    paper reports HellaSwag and PIQA with a length normalisation)."""
    fill = vocab.dot_id if filler == "dot" else vocab.pause_id
    raw, norm = [], []
    for e in examples:
        choices = vocab.encode_batch(e["choices"])
        prefix = fit_prefix(vocab.encode(e["prefix"]), model.config.block_size - m_inf - max(map(len, choices)))
        scores = np.array([choice_logprob(model, prefix, c, m_inf, fill, vocab.eot_id, placement) for c in choices])
        raw.append(int(np.argmax(scores)) == e["label"])
        # per character of the choice itself: the space the loaders put before it joins it to the prompt
        # (lm-eval's target_delimiter) and is not counted, as lm-eval's acc_norm does not count it
        norm.append(int(np.argmax(scores / np.array([len(c.removeprefix(" ")) for c in e["choices"]]))) == e["label"])
    return float(np.mean(raw)), float(np.mean(norm))


def evaluate(model, vocab, task, examples, m_inf, max_answer_tokens, progress=False, filler="pause",
             placement="append"):
    """Score a model on a task: greedy answers after m_inf pauses (or '.' fillers; placed as in
    finetuning) with the task's own metric, or, for HellaSwag and PIQA, the choices ranked by
    likelihood. Returns {"score", "metric"} and, for the ranked tasks, "also": the raw-sum accuracy."""
    if task in RANKED:
        acc, acc_norm = rank_accuracy(model, vocab, examples, m_inf, filler, placement)
        return {"score": acc_norm, "metric": "ranking accuracy (length-normalised)",
                "also": {"ranking accuracy (raw sum)": acc}}
    room = model.config.block_size - m_inf - max_answer_tokens + 1
    prompts = [fit_prefix(p, room) for p in vocab.encode_batch([e["prefix"] for e in examples])]
    outs = answer(fast(model), prompts, m_inf, vocab.pause_id, vocab.eot_id, max_answer_tokens, progress=progress,
                  filler_id=vocab.dot_id if filler == "dot" else None, placement=placement,
                  ban_ids=vocab.unused_ids)
    return {"score": score(task, [vocab.decode(o) for o in outs], examples), "metric": METRICS[task].__name__}
