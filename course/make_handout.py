"""
Make the student handout of one course assignment from this repository, which is the complete, tested
solution. The regions a student writes are marked in the real source:

    # BEGIN SOLUTION A2
    ...the solution's statements...
    # END SOLUTION

The handout is a copy of the repository's tracked files (no .git history, no out/, none of the
instructor's files) in which the regions of the chosen assignment become

    # BEGIN YOUR CODE (A2)
    raise NotImplementedError("A2: see course/A2.md")
    # END YOUR CODE

and the marker lines of every other assignment are dropped (their code stays). Nested or unclosed
markers are refused. HANDOUT.md names the source commit and the blanks.

  python course/make_handout.py A2 --out handouts/A2
  cd handouts/A2 && python -m pytest -m a2      # every graded test fails until the blanks are written

Standard library only.
"""
import argparse
import os
import re
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
# the instructor's side of the kit: never in a handout (the wrong solutions quote solution lines)
INSTRUCTOR_ONLY = {"course/check_kit.py", "course/wrong_solutions.py", "course/expected_failures.json",
                   "tests/test_course.py", "tests/mutants.py"}
BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION (\S+)\s*$")
END = re.compile(r"^(\s*)# END SOLUTION\s*$")


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


def blank(text, path, assignment):
    """(handout text, [(first, last, [solution lines])] of the blanked regions) of one file."""
    lines, out, blanks, at = text.split("\n"), [], [], 0
    for tag, first, last, indent in regions(text, path):
        out += lines[at:first]
        if tag == assignment:
            out += [f"{indent}# BEGIN YOUR CODE ({tag})",
                    f'{indent}raise NotImplementedError("{tag}: see course/{tag}.md")',
                    f"{indent}# END YOUR CODE"]
            blanks.append((first, last, lines[first + 1:last]))
        else:
            out += lines[first + 1:last]  # another assignment: drop its marker lines, keep its code
        at = last + 1
    return "\n".join(out + lines[at:]), blanks


def tracked_files(root):
    """The files git tracks, as committed paths (a clean checkout's content: no out/, no .git)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise KitError(f"{root} is not a git checkout: the handout copies its tracked files") from None
    return sorted(p for p in out.decode().split("\0") if p and p not in INSTRUCTOR_ONLY and os.path.isfile(
        os.path.join(root, p)))


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


def make_handout(assignment, out, root=ROOT):
    """Write the handout of `assignment` to the folder `out` (which must not exist yet or be empty).
    Returns {path: [(first, last, [solution lines])]} of the blanks."""
    if assignment not in ASSIGNMENTS:
        raise KitError(f"unknown assignment {assignment!r}; known: {', '.join(ASSIGNMENTS)}")
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
        dest = os.path.join(out, path)
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        if marked(path):
            text, blanks = blank(raw.decode("utf-8"), path, assignment)
            raw = text.encode("utf-8")
            if blanks:
                all_blanks[path] = blanks
        with open(dest, "wb") as f:
            f.write(raw)
    with open(os.path.join(out, "HANDOUT.md"), "w") as f:
        f.write(handout_page(assignment, all_blanks, commit(root)))
    return all_blanks


def handout_page(assignment, all_blanks, source):
    lines = [f"# Handout {assignment}: {ASSIGNMENTS[assignment]}", "",
             f"Made by `python course/make_handout.py {assignment}` from commit {source}.", "",
             f"The assignment is described in [course/{assignment}.md](course/{assignment}.md)."]
    if all_blanks:
        lines += ["", "Your code goes where a `NotImplementedError` stands now:", ""]
        for path, blanks in all_blanks.items():
            for first, last, solution in blanks:
                lines.append(f"- `{path}`, the region that starts at line {first + 1} "
                             f"({len([s for s in solution if s.strip()])} lines in the reference solution)")
        lines += ["", f"Grade yourself with `python -m pytest -m {assignment.lower()}`: every graded test fails "
                  "now and passes once the blanks are written correctly."]
    return "\n".join(lines) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(description="make the handout of one course assignment")
    parser.add_argument("assignment", help=", ".join(ASSIGNMENTS))
    parser.add_argument("--out", required=True, help="the folder to write (new or empty)")
    args = parser.parse_args(argv)
    try:
        blanks = make_handout(args.assignment.upper(), args.out)
    except KitError as e:
        print(f"make_handout.py: {e}", file=sys.stderr)
        return 2
    n = sum(len(b) for b in blanks.values())
    print(f"{args.out}: handout of {args.assignment.upper()} with {n} blank(s) in {', '.join(blanks) or 'no file'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
