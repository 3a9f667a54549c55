"""
Make a student handout from this repository, which is the complete, tested solution. The regions a
student writes are marked in the real source:

    # BEGIN SOLUTION A2
    ...the solution's statements...
    # END SOLUTION

The handout is a copy of the repository's tracked files (no .git history, no out/, none of the
instructor's files) in which the regions of the blanked assignments become

    # BEGIN YOUR CODE (A2)
    raise NotImplementedError("A2: see course/A2.md")
    # END YOUR CODE

and the marker lines of every other assignment are dropped (their code stays). Nested or unclosed
markers are refused.

One assignment, or one and every later one (--through): the single form blanks only A2 and so holds
the reference solutions of every other assignment; `A2 --through A5` also blanks A3..A5, so the
handout of an earlier assignment never holds the solutions of later ones.

No handout holds the answers of A6: results/ (the committed results, whose numbers answer A6's
questions) and bench/README.md (the instruments' numbers, which point into results/) are left out, and
the repository's README.md (whose first screen reports the findings) is replaced by a student README.
HANDOUT.md names the source commit and the blanks at the handout's own line numbers.

The command line also writes, next to the handout, its Gradescope autograder (course/autograder.py):
handouts/A2-autograder/, to zip and upload; never give it to students.

  python course/make_handout.py A2 --out handouts/A2                 # A2 blanked, the rest solved
  python course/make_handout.py A2 --through A5 --out handouts/A2    # A2..A5 blanked
  cd handouts/A2 && python -m pytest -m a2      # every graded test fails until the blanks are written

Standard library only.
"""
import argparse
import collections
import os
import re
import secrets
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSIGNMENTS = {
    "A1": "pause insertion for pretraining",
    "A2": "loss masking",
    "A3": "the finetuning format",
    "A4": "pause-aware inference",
    "A5": "the KV cache",
    "A6": "an experiment (no code blanks)",
}
CODED = [a for a in ASSIGNMENTS if a != "A6"]  # A6 is an experiment: no blanks, no graded tests
# the instructor's side of the kit: never in a handout (the wrong solutions quote solution lines; this
# page and the checks name files a handout does not have)
INSTRUCTOR_ONLY = {"course/check_kit.py", "course/wrong_solutions.py", "course/expected_failures.json",
                   "course/autograder.py", "course/README.md", "tests/test_course.py", "tests/mutants.py"}
# A6's answers: the committed results (and the page of measurements that points into them)
ANSWERS = ("results/", "bench/README.md")
# pages the handout writes itself instead of copying: README.md replaces the repository's (its first
# screen reports the findings A6 asks for); results/README.md keeps the folder study.py writes into
GENERATED = ("README.md", "HANDOUT.md", "results/README.md")
BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION (\S+)\s*$")
END = re.compile(r"^(\s*)# END SOLUTION\s*$")
YOUR_CODE = re.compile(r"^\s*# BEGIN YOUR CODE \((\S+)\)\s*$")

# one blanked region: first/last are the source's 0-based marker lines, solution the lines between
# them, line the handout's 1-based line of its "# BEGIN YOUR CODE" marker
Blank = collections.namedtuple("Blank", "first last solution tag line")


class KitError(ValueError):
    """A marker or setting the kit cannot use: one line on stderr, exit code 2."""


def regions(text, path):
    """[(assignment, first line, last line, indent)] of the marked regions (0-based, marker lines
    included). Refuses nesting, an END without a BEGIN, an unclosed region and unknown assignments."""
    found, open_at = [], None
    for i, line in enumerate(text.split("\n")):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_at is not None:
                raise KitError(f"{path}:{i + 1}: nested BEGIN SOLUTION (the one at line {open_at[1] + 1} is open)")
            if begin.group(2) not in ASSIGNMENTS:
                raise KitError(f"{path}:{i + 1}: unknown assignment {begin.group(2)!r}")
            open_at = (begin.group(2), i, begin.group(1))
        elif end:
            if open_at is None:
                raise KitError(f"{path}:{i + 1}: END SOLUTION without a BEGIN SOLUTION")
            found.append((open_at[0], open_at[1], i, open_at[2]))
            open_at = None
    if open_at is not None:
        raise KitError(f"{path}:{open_at[1] + 1}: BEGIN SOLUTION {open_at[0]} is never closed")
    return found


def blanked_range(assignment, through=None):
    """The assignments a handout blanks: `assignment`, or it and every later one up to `through`."""
    names = list(ASSIGNMENTS)
    for a in (assignment, through or assignment):
        if a not in ASSIGNMENTS:
            raise KitError(f"unknown assignment {a!r}; known: {', '.join(ASSIGNMENTS)}")
    first, last = names.index(assignment), names.index(through or assignment)
    if last < first:
        raise KitError(f"--through {through} comes before {assignment}")
    return names[first:last + 1]


def blank(text, path, blanked):
    """(handout text, [Blank]) of one file; blanked: one assignment or several."""
    blanked = {blanked} if isinstance(blanked, str) else set(blanked)
    lines, out, blanks, at = text.split("\n"), [], [], 0
    for tag, first, last, indent in regions(text, path):
        out += lines[at:first]
        if tag in blanked:
            blanks.append(Blank(first, last, lines[first + 1:last], tag, len(out) + 1))
            out += [f"{indent}# BEGIN YOUR CODE ({tag})",
                    f'{indent}raise NotImplementedError("{tag}: see course/{tag}.md")',
                    f"{indent}# END YOUR CODE"]
        else:
            out += lines[first + 1:last]  # not blanked: drop its marker lines, keep its code
        at = last + 1
    return "\n".join(out + lines[at:]), blanks


def git_files(root):
    """Every file git tracks, as committed paths (a clean checkout's content: no out/, no .git)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise KitError(f"{root} is not a git checkout: the handout copies its tracked files") from None
    return sorted(p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(root, p)))


def shipped(path):
    """Whether a tracked file goes into every handout as it is (blanks aside)."""
    return (path not in INSTRUCTOR_ONLY and path not in GENERATED
            and not any(path == a or (a.endswith("/") and path.startswith(a)) for a in ANSWERS))


def tracked_files(root):
    """The tracked files a handout copies."""
    return [p for p in git_files(root) if shipped(p)]


def marked(path):
    """Python files may hold solution regions; the kit's own files only describe the markers."""
    return path.endswith(".py") and not path.startswith("course/")


def commit(root):
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_handout(assignment, out, root=ROOT, through=None):
    """Write the handout of `assignment` (blanking it, or it and every later one up to `through`) to
    the folder `out`, which must not exist yet or be empty. Returns {path: [Blank]}."""
    blanked = blanked_range(assignment, through)
    if os.path.exists(out) and os.listdir(out):
        raise KitError(f"{out} exists and is not empty; refusing to write into it")
    texts = {}
    for path in tracked_files(root):  # check every file's markers before writing anything
        with open(os.path.join(root, path), "rb") as f:
            raw = f.read()
        texts[path] = raw
        if marked(path):
            regions(raw.decode("utf-8"), path)
    all_blanks = {}
    for path, raw in texts.items():
        if marked(path):
            text, blanks = blank(raw.decode("utf-8"), path, blanked)
            raw = text.encode("utf-8")
            if blanks:
                all_blanks[path] = blanks
        write(out, path, raw, os.stat(os.path.join(root, path)).st_mode)
    command = f"python course/make_handout.py {assignment}" + (f" --through {through}" if through else "")
    write(out, "HANDOUT.md", handout_page(assignment, blanked, all_blanks, commit(root), command))
    write(out, "README.md", student_readme(assignment, blanked, sorted(texts) + list(GENERATED)))
    write(out, "results/README.md", RESULTS_README)
    return all_blanks


def write(out, path, content, mode=None):
    """Write one file of the handout; mode: the source file's, so a script (.ci/run) keeps its run bit."""
    dest = os.path.join(out, path)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    with open(dest, "wb") as f:
        f.write(content.encode("utf-8") if isinstance(content, str) else content)
    if mode is not None:
        os.chmod(dest, mode & 0o777)


def where(blanks):
    return ", ".join(f"`{path}`, line {b.line} ({len([s for s in b.solution if s.strip()])} lines in the "
                     "reference solution)" for path, bs in blanks for b in bs)


def handout_page(assignment, blanked, all_blanks, source, command):
    """HANDOUT.md: the source commit, and each blank at its line in this handout."""
    lines = [f"# Handout {assignment}: {ASSIGNMENTS[assignment]}", "",
             f"Made by `{command}` from commit {source}.", "",
             f"The assignment is described in [course/{assignment}.md](course/{assignment}.md)."]
    own = [(path, [b for b in bs if b.tag == assignment]) for path, bs in all_blanks.items()]
    own = [(path, bs) for path, bs in own if bs]
    if own:
        lines += ["", f"Your code goes where a `NotImplementedError(\"{assignment}: ...\")` stands now:", ""]
        lines += [f"- {where([(path, [b])])}" for path, bs in own for b in bs]
        lines += ["", f"Grade yourself with `python -m pytest -m {assignment.lower()}`: every graded test fails "
                  "now and passes once the blanks are written correctly."]
    later = [a for a in blanked if a != assignment and any(b.tag == a for bs in all_blanks.values() for b in bs)]
    if later:
        lines += ["", f"Later assignments are blanked too, so this handout holds none of their solutions: "
                  f"the tests that need them fail until they are written (`python -m pytest` shows which), "
                  f"but the graded tests of {assignment} need only {assignment}'s code.", ""]
        for a in later:
            lines.append(f"- {a} ({ASSIGNMENTS[a]}, [course/{a}.md](course/{a}.md)): " + "; ".join(
                f"`{path}`, line {b.line}" for path, bs in all_blanks.items() for b in bs if b.tag == a))
    if assignment == "A6" or "A6" in blanked:
        lines += ["", "This handout holds no results: the numbers in your report are the ones you produce."]
    return "\n".join(lines) + "\n"


# the student README's file list: what each top-level entry is (entries the handout lacks are skipped)
FILES = {
    "pause.py": "the paper's rules: pause insertion, loss masking, finetuning format, pause-aware answers",
    "model.py": "the GPT (GPTConfig, GPT, generate, KV cache, GPT-2 weights); knows nothing of pauses",
    "decode.py": "fast greedy decoding on a CPU (the same tokens as GPT.generate); skippable",
    "train.py": "Config with every default, the one training loop of both phases",
    "eval.py": "the variants' comparison (default) or one checkpoint's score (--ckpt)",
    "report.py": "the comparison's tables and plots, its learning curves too",
    "tasks.py": "the embedded synthetic tasks (keyparity, keysum, ...) and their train/val/test split",
    "data.py": "tokenizer + <|pause|>, compact vocab, the batches of each phase",
    "downstream.py": "the paper's nine tasks: loaders, official metrics, scoring",
    "prepare.py": "text -> train.bin/val.bin token files",
    "common.py": "errors and exit codes, config parsing, devices, checkpoint files, statistics",
    "study.py": "the study: task x size x arm x M grids (writes into results/)",
    "probe.py": "inside a finetuned model: linear probes per layer and position, attention, read-outs",
    "configs/": "files that override Config fields (pretrain.py, finetune.py, ...)",
    "bench/": "speed and reproducibility instruments",
    "course/": "the assignments' pages",
    "results/": "empty: your results go here",
    "tests/": "the pytest suite; the graded tests carry the markers a1 ... a5",
    "requirements.txt": "the dependencies (torch pinned)",
    "pytest.ini": "the test settings and markers",
    "HANDOUT.md": "what this handout blanks, and where",
    "README.md": "this page",
}


def student_readme(assignment, blanked, files):
    """The handout's README.md: what a student needs, naming only files the handout holds."""
    tops = []
    for path in files:
        top = path.split("/")[0] + ("/" if "/" in path else "")
        if top not in tops and not top.startswith("."):
            tops.append(top)
    tops.sort(key=lambda t: (list(FILES).index(t) if t in FILES else len(FILES), t))
    coded = [a for a in blanked if a in CODED]
    lines = [f"# nanopause: handout {assignment}", "",
             "A small nanoGPT-style codebase for *pause tokens* (Goyal et al., \"Think before you speak: Training",
             "Language Models With Pause Tokens\", ICLR 2024, arXiv 2310.02226), with parts left for you to write.",
             f"Your assignment is [course/{assignment}.md](course/{assignment}.md); [HANDOUT.md](HANDOUT.md) says "
             "where your code goes.", "",
             "## Start", "",
             "```",
             "pip install -r requirements.txt    # Python 3.11"]
    if coded:
        lines.append(f"python -m pytest -m {assignment.lower():<15}# your grade: the graded tests of {assignment}")
    lines += ["python -m pytest                   # the whole suite (a test that needs a blank fails until it is written)",
              "python eval.py                     # the default comparison: 10 to 25 minutes on 2 CPU cores",
              "```", "",
              "## Read the code in this order", "",
              "1. `pause.py`: the paper's rules, one short function each, tested by `tests/test_pause.py`.",
              "2. `model.py`: a plain GPT-2 with a KV cache; it knows nothing about pauses (one more token id, and",
              "   a loss that ignores targets of -1).",
              "3. `train.py`: `Config` (every default, one comment each), then one loop for both training phases.",
              "4. `eval.py`: the variants of the comparison, top-down: `compare` -> `run_all` -> `ensure_trained`.",
              "", "## Files", "", "```"]
    lines += [f"{t:<20}{FILES.get(t, '')}".rstrip() if len(t) < 20 else t for t in tops]
    lines += ["```"]
    return "\n".join(lines) + "\n"


RESULTS_README = """# results

Empty in a handout: the committed results of nanopause answer the questions of A6, so the handout holds
none. `python study.py` writes its tables here (its default `--out`); `python eval.py` writes into
`out/`.
"""


def main(argv):
    parser = argparse.ArgumentParser(description="make the handout of a course assignment (and its autograder)")
    parser.add_argument("assignment", help=", ".join(ASSIGNMENTS))
    parser.add_argument("--through", help="also blank every later assignment up to this one (e.g. A5)")
    parser.add_argument("--out", required=True, help="the folder to write (new or empty)")
    parser.add_argument("--autograder", help="the Gradescope autograder's folder (default: <out>-autograder)")
    parser.add_argument("--no-autograder", action="store_true", help="write the handout only")
    parser.add_argument("--grade", help="the assignments the autograder scores, e.g. A2,A3 "
                        "(default: the handout's own; 'all': every blanked one)")
    parser.add_argument("--grade-seed", type=int, help="NANOPAUSE_GRADE_SEED of the autograder (default: random)")
    args = parser.parse_args(argv)
    assignment, through = args.assignment.upper(), args.through.upper() if args.through else None
    try:
        blanked = blanked_range(assignment, through)
        coded = [a for a in blanked if a in CODED]
        graded = (coded if args.grade and args.grade.lower() == "all" else
                  [a.strip().upper() for a in args.grade.split(",")] if args.grade else coded[:1])
        for a in graded:
            if a not in coded:
                raise KitError(f"--grade {a}: not blanked in this handout (blanked: {', '.join(coded) or 'none'})")
        grader = None
        if coded and not args.no_autograder:
            grader = args.autograder or args.out.rstrip("/\\") + "-autograder"
            if os.path.exists(grader) and os.listdir(grader):
                raise KitError(f"{grader} exists and is not empty; refusing to write into it")
        blanks = make_handout(assignment, args.out, through=through)
        if grader:
            from autograder import write_autograder  # course/autograder.py, next to this file
            seed = args.grade_seed if args.grade_seed is not None else secrets.randbelow(10**9)
            files = sorted(path for path, bs in blanks.items() if any(b.tag in graded for b in bs))
            write_autograder(args.out, grader, graded, files, seed)
    except KitError as e:
        print(f"make_handout.py: {e}", file=sys.stderr)
        return 2
    n = sum(len(b) for b in blanks.values())
    print(f"{args.out}: handout of {assignment} " + (f"({', '.join(coded)} blanked) with {n} blank(s) in "
          f"{', '.join(blanks)}" if coded else "(no code blanks)"))
    if grader:
        print(f"{grader}: its Gradescope autograder, scoring {', '.join(graded)} (instructor-only: "
              f"see {os.path.join(grader, 'README.md')})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
