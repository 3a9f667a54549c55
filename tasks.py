"""
The embedded synthetic tasks: each a function from a numpy Generator to one (prefix, target) text pair,
with its alphabet (strings whose tokens cover every text it can write: its compact vocab), and the
hash-based split that keeps train, val and test prompts apart. Add a task by writing its function and
registering it in TASKS.

  python -c "import numpy as np, tasks; print(tasks.keysum(np.random.default_rng(0)))"
"""
import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from common import DataError


def keysum(rng, n=6):
    """Digits x_1..x_n, then a key k that arrives last; answer sum_i (x_i * k mod 10).
    Every digit must be combined with the late key, and without pauses only the positions after the key
    can do that work: a task where extra positions plausibly help."""
    xs, k = rng.integers(0, 10, n), int(rng.integers(1, 10))
    return " ".join(map(str, xs)) + f" | {k} =", f" {int(((xs * k) % 10).sum())}"


def addition(rng, n=3):
    """n-digit + n-digit addition, digits space separated (one token each)."""
    a, b = rng.integers(0, 10, n), rng.integers(0, 10, n)
    s = int("".join(map(str, a))) + int("".join(map(str, b)))
    return f"{' '.join(map(str, a))} + {' '.join(map(str, b))} =", " " + " ".join(str(s))


def summod(rng, n=8):
    """Sum of n digits mod 10: every digit matters (a parity-like task)."""
    xs = rng.integers(0, 10, n)
    return " ".join(map(str, xs)) + " =", f" {int(xs.sum() % 10)}"


def mult(rng):
    """3-digit x 2-digit multiplication, digits space separated, answer digits too."""
    a, b = rng.integers(0, 10, 3), rng.integers(0, 10, 2)
    p = int("".join(map(str, a))) * int("".join(map(str, b)))
    return f"{' '.join(map(str, a))} * {' '.join(map(str, b))} =", " " + " ".join(str(p))


def hops(rng, chain=4, letters="abcdefgh"):
    """Variable binding: two chains x1 = digit, x2 = x1, ... of `chain` variables each, statements
    shuffled; the query names the end of one chain, whose digit is the answer (chain-1 hops). Each hop
    depends on the one before: a task whose answer needs serial steps."""
    names = rng.permutation(list(letters))[: 2 * chain]
    digits = rng.choice(10, 2, replace=False)
    stmts = []
    for c in range(2):
        v = names[c * chain:(c + 1) * chain]
        stmts += [f"{v[0]} = {digits[c]}"] + [f"{v[i]} = {v[i - 1]}" for i in range(1, chain)]
    q = int(rng.integers(0, 2))
    order = rng.permutation(len(stmts))
    return " , ".join(stmts[i] for i in order) + f" ; {names[q * chain + chain - 1]} =", f" {digits[q]}"


def hops_hints(prefix):
    """Slot j names the variable j + 1 hops from the query (the last slot before the answer names the
    variable that holds the digit): one hop per slot, each needing the one before."""
    stmts = dict(s.split(" = ") for s in prefix.split(" ; ")[0].split(" , "))
    var, out = prefix.split(" ; ")[1].split()[0], []
    while not stmts[var].isdigit():
        var = stmts[var]
        out.append(f" {var}")
    return out


# --- parity tasks with hints: where pause slots can be given a job ------------------------------------
# Each prompt token is one word of the prompt (a digit, "|" or "="), so per-token hints are per word.


def parity(rng, n=16):
    """n random bits; the answer is their parity. A small transformer does not learn it from the answer
    alone (a count mod 2 is hard to read off an attention average)."""
    xs = rng.integers(0, 2, n)
    return " ".join(map(str, xs)) + " =", f" {int(xs.sum() % 2)}"


def parity_hints(prefix):
    """Pause j (j = 0..n) is trained to say whether exactly j of the bits are 1: each slot does one
    comparison, in parallel, and the answer is an OR of the odd slots."""
    ones = sum(int(w) for w in prefix.split()[:-1])
    return [f" {int(ones == j)}" for j in range(len(prefix.split()))]


def parity_input_hints(prefix):
    """The same kind of supervision on the prompt: the bit at position i is trained to predict the
    running count of ones up to i (no pauses needed: the count can be computed where the bits are)."""
    bits = [int(w) for w in prefix.split()[:-1]]
    return [f" {c}" for c in np.cumsum(bits)] + [None]


def keyparity(rng, n=8, key_first=False):
    """Late-key threshold parity: digits x_1..x_n and a key k; the answer is the parity of #{i: x_i > k}.
    With the key last, no position before k can count the digits above k (k is not there yet): only k's
    own position, `=` and any pauses after them can (results/README.md: the baseline learns it there given
    enough steps). key_first=True is the control."""
    xs, k = rng.integers(0, 10, n), int(rng.integers(0, 10))
    digits = " ".join(map(str, xs))
    prompt = f"{k} | {digits} =" if key_first else f"{digits} | {k} ="
    return prompt, f" {int((xs > k).sum() % 2)}"


def _keyparity_parts(prefix):
    words = prefix.split()
    if words[1] == "|":  # key first: "k | x_1 .. x_n ="
        return int(words[0]), [int(w) for w in words[2:-1]], True
    return int(words[-2]), [int(w) for w in words[:-3]], False  # "x_1 .. x_n | k ="


def keyparity_hints(prefix):
    """Pause j (j = 0..n) is trained to say whether exactly j digits are above the key."""
    k, xs, _ = _keyparity_parts(prefix)
    above = sum(x > k for x in xs)
    return [f" {int(above == j)}" for j in range(len(xs) + 1)]


def keyparity_input_hints(prefix):
    """The same intermediate on the prompt, where it can be computed: with the key first, digit i is
    trained to predict the running count of digits above k. With the key last, k is unknown there; the
    fairest such supervision is the running count above the middle threshold 4 (None: no hint)."""
    k, xs, key_first = _keyparity_parts(prefix)
    counts = [f" {c}" for c in np.cumsum([x > (k if key_first else 4) for x in xs])]
    return [None, None] + counts + [None] if key_first else counts + [None, None, None]


@dataclass(frozen=True)
class Task:
    sample: callable
    alphabet: tuple
    hints: callable = None         # prefix -> the text each pause slot is trained to predict (the hint rule)
    input_hints: callable = None   # prefix -> the text each prompt position is trained to predict (None: none)


def _n(fn, **kw):
    return lambda rng: fn(rng, **kw)


DIGITS = tuple(str(d) for d in range(10))
SPACED = tuple(f" {i}" for i in range(25))
HOPS = tuple("abcdefgh") + tuple(f" {c}" for c in "abcdefgh") + tuple(f" {d}" for d in DIGITS) + (" =", " ,", " ;")
TASKS = {
    "keysum": Task(keysum, DIGITS + tuple(f" {i}" for i in range(55)) + (" |", " =")),
    "addition": Task(addition, DIGITS + tuple(f" {d}" for d in DIGITS) + (" +", " =")),
    "summod": Task(summod, DIGITS + tuple(f" {d}" for d in DIGITS) + (" =",)),
    "mult": Task(mult, DIGITS + tuple(f" {d}" for d in DIGITS) + (" *", " =")),
    "hops": Task(hops, HOPS, hops_hints),
    "hops3": Task(_n(hops, chain=3), HOPS, hops_hints),
    "parity": Task(parity, DIGITS + SPACED + (" =",), parity_hints, parity_input_hints),
    "keyparity": Task(keyparity, DIGITS + SPACED + (" |", " ="), keyparity_hints, keyparity_input_hints),
    "keyparity_first": Task(_n(keyparity, key_first=True), DIGITS + SPACED + (" |", " ="), keyparity_hints,
                            keyparity_input_hints),
    "keyparity6": Task(_n(keyparity, n=6), DIGITS + SPACED + (" |", " ="), keyparity_hints, keyparity_input_hints),
    "keyparity12": Task(_n(keyparity, n=12), DIGITS + SPACED + (" |", " ="), keyparity_hints, keyparity_input_hints),
    "keyparity12_first": Task(_n(keyparity, n=12, key_first=True), DIGITS + SPACED + (" |", " ="), keyparity_hints,
                              keyparity_input_hints),
}
# size of each task's prompt space, to say how much of it training covers
SPACE = {"keysum": 9 * 10**6, "addition": 10**6, "summod": 10**8, "mult": 10**5, "hops": None, "hops3": None, "parity": 2**16,
         "keyparity": 10**9, "keyparity_first": 10**9, "keyparity6": 10**7, "keyparity12": 10**13, "keyparity12_first": 10**13}


SPLITS = ("train", "val", "test")


def split_of(prefix):
    """Which split a prompt belongs to, from a hash of its text: 80/10/10. Because the split is a
    function of the prompt, no prompt can ever land in two splits, whatever the seeds or sizes."""
    h = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:8], "little") % 10
    return "test" if h == 0 else "val" if h == 1 else "train"


@lru_cache(maxsize=16)  # eval.py asks for the same sets in several runs
def make_examples(task, n, split, seed):
    """n distinct (prefix, target) pairs of one split, deterministic in (task, split, seed)."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    rng = np.random.default_rng([seed, SPLITS.index(split), sum(map(ord, task))])
    seen, out = set(), []
    for _ in range(50 * n + 1000):  # bounded: a task whose space is too small fails loudly below
        if len(out) == n:
            return tuple(out)
        prefix, target = TASKS[task].sample(rng)
        if prefix not in seen and split_of(prefix) == split:
            seen.add(prefix)
            out.append((prefix, target))
    raise DataError(f"task {task!r} has fewer than {n} distinct {split} prompts")


def corpus_text(examples):
    """Task instances written out with their answers, as pretraining text."""
    return [p + t for p, t in examples]
