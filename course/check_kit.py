"""
Check the course kit before handing it out (instructor-only; standard library + pytest). Each coded
assignment has two handouts: the single one (`A2`: only A2 blanked) and the course one (`A2 --through
A5`: A2 and every later assignment blanked; for A5 the two are the same).

  (a) the solution (this repository) passes all tests
  (b) in the course handout, every graded test of the assignment fails with that assignment's
      NotImplementedError, and every graded test of the earlier assignments passes (a graded test must
      need no later assignment's code: the course handout of A4 blanks A5); the handouts collect the
      same tests as the solution
  (c) each handout fails exactly the tests course/expected_failures.json lists for it: "A2" for the
      single handout, "A2..A5" for the course one (a test that silently depends on another
      assignment's code shows up here)
  (d) no blanked solution line appears anywhere else in the handout (see leaked() for the rule)
  (e) the handout is the source and nothing else: every file it copies equals the source's, byte for
      byte, once the solution is put back into its blanks and the marker lines are dropped; it lacks
      only the instructor's files and the results; it adds only its generated pages
  (f) each plausible wrong solution in course/wrong_solutions.py fails at least one graded test
  (g) the handout's pages are its own: HANDOUT.md's line numbers are its blanks' lines in the handout,
      and no page (.md) names a file of the source that the handout does not hold

  python course/check_kit.py                 # all of it, before a release (about 15 minutes on 2 cores)
  python course/check_kit.py --fast          # (b) without the collection, (d), (e), (g), one wrong solution each
  python course/check_kit.py --write-expected   # record (c)'s failing tests after changing tests on purpose

The test suite runs the fast form (tests/test_course.py).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_handout import (ASSIGNMENTS, BEGIN, CODED, END, GENERATED, ROOT, YOUR_CODE, KitError,  # noqa: E402
                          git_files, make_handout, marked, tracked_files)
from wrong_solutions import WRONG  # noqa: E402

EXPECTED = os.path.join(HERE, "expected_failures.json")
LAST = CODED[-1]  # a course handout blanks its assignment through this one


def pytest(folder, *args):
    """Run pytest in folder; returns {test id: failure message or None} from its JUnit XML."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, "junit.xml")
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *args],
                       cwd=folder, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        if not os.path.exists(xml):
            raise KitError(f"pytest did not run in {folder}")
        results = {}
        for case in ET.parse(xml).iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            bad = case.find("failure")
            bad = bad if bad is not None else case.find("error")
            if case.find("skipped") is None:
                results[name] = None if bad is None else (bad.get("message") or "") + "\n" + (bad.text or "")
        return results


def collect(folder):
    """The ids of the tests pytest collects in folder (the default selection)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only"],
                         cwd=folder, capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines() if "::" in line}


def handout(assignment, tmp, through=None):
    out = os.path.join(tmp, assignment + (f"..{through}" if through else ""))
    return out, make_handout(assignment, out, through=through)


def check_graded_fail_with_the_stub(assignment, folder, solution_ids):
    """(b) the handout collects what the solution collects; every graded test fails with the stub."""
    res = pytest(folder, "-m", assignment.lower())
    if not res:
        raise KitError(f"{assignment}: no graded test collected")
    stub = f"NotImplementedError: {assignment}: see course/{assignment}.md"
    wrong = [t for t, msg in res.items() if msg is None or stub not in msg]
    if wrong:
        raise KitError(f"{assignment}: graded tests that do not fail with the stub: {wrong}")
    collected = collect(folder)
    if solution_ids is not None and collected != solution_ids:
        raise KitError(f"{assignment}: the handout collects other tests than the solution: "
                       f"{sorted(collected ^ solution_ids)[:3]}")
    return sorted(res)


STUB = re.compile(r"NotImplementedError: (A\d+): see course/")


def check_earlier_graded_pass(label, folder, earlier):
    """(b) in a course handout, the graded tests of the assignments before it all pass: none of them
    needs the code of an assignment the handout blanks."""
    if not earlier:
        return 0
    res = pytest(folder, "-m", " or ".join(a.lower() for a in earlier))
    failing = {t: msg for t, msg in res.items() if msg is not None}
    if failing:
        why = sorted(f"{t} ({'needs ' + m.group(1) if (m := STUB.search(msg)) else msg.splitlines()[0][:80]})"
                     for t, msg in failing.items())
        raise KitError(f"{label}: graded tests of earlier assignments fail in this handout, so a student cannot "
                       f"pass them before writing a later assignment: {why}")
    return len(res)


TOKEN = re.compile(r"\w+|==|!=|<=|>=|->|\*\*|//|\S")
SPECIFIC_TOKENS = 6  # a line of fewer tokens is generic (see leaked)
LONG_LINE = 25


def code_tokens(line):
    """The tokens of a line's code, its trailing comment dropped (a '#' outside quotes starts it)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote and line[i - 1] != "\\" else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            line = line[:i]
            break
    return TOKEN.findall(line)


def leaked(blanked_lines, text):
    """(d) the blanked lines that appear in text, a file of the handout. Two rules:
    - a line whose code has SPECIFIC_TOKENS or more tokens (names, numbers, operators, brackets; its
      comment dropped) must not appear as a run of tokens on any line of the text, whatever the spacing
      and whatever surrounds it (code, a comment, a string, a page's backticks): `y[y == pause_id] = -1`
      (9 tokens) is the answer of A2 at any length. A line of 5 tokens or fewer is at most one name or
      constant, compared to or assigned to another (`return x, y`, `causal = False`, `if n == 0:`,
      `by_len = {}`): code anywhere writes such lines, and alone they give nothing away;
    - a line of LONG_LINE characters or more (comment included) must not appear verbatim: it catches a
      copied comment that explains the solution.
    A tripwire for copies, not a proof: a test that reimplements a blank with other names passes it."""
    found = []
    specific = {}
    for line in blanked_lines:
        tokens = code_tokens(line.strip())
        if len(tokens) >= SPECIFIC_TOKENS:
            specific[" " + " ".join(tokens) + " "] = line.strip()
    text_lines = [" " + " ".join(TOKEN.findall(t)) + " " for t in text.split("\n")]
    for key, line in specific.items():
        if any(key in t for t in text_lines):
            found.append(line)
    found += [line.strip() for line in blanked_lines if len(line.strip()) >= LONG_LINE and line.strip() in text
              and line.strip() not in found]
    return found


def check_no_leaks(label, folder, blanks):
    """(d) no blanked line anywhere else in the handout, tests and pages included."""
    lines = [s for regions in blanks.values() for b in regions for s in b.solution]
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                text = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            found = leaked(lines, text)
            if found:
                raise KitError(f"{label}: the blanked line {found[0]!r} appears in {os.path.relpath(path, folder)}")


def handout_files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")
                  for d, _, files in os.walk(folder) for f in files)


def check_round_trip(label, folder, blanks):
    """(e) every copied file == the source's, once the solution is back in its blanks and the marker
    lines are dropped; no file missing but the left-out ones, none added but the generated pages."""
    source = tracked_files(ROOT)
    have = handout_files(folder)
    missing, extra = sorted(set(source) - set(have)), sorted(set(have) - set(source) - set(GENERATED))
    if missing or extra:
        raise KitError(f"{label}: the handout lacks {missing[:3]} / has files not from the source {extra[:3]}")
    for path in source:
        raw = open(os.path.join(ROOT, path), "rb").read()
        mine = open(os.path.join(folder, path), "rb").read()
        if not marked(path):
            if mine != raw:
                raise KitError(f"{label}: {path} differs from the source")
            continue
        bare = "\n".join(line for line in raw.decode().split("\n") if not (BEGIN.match(line) or END.match(line)))
        lines, out, solutions = mine.decode().split("\n"), [], iter(blanks.get(path, []))
        i = 0
        while i < len(lines):
            if YOUR_CODE.match(lines[i]):
                out += next(solutions).solution
                i += 3  # the BEGIN YOUR CODE line, the raise and the END YOUR CODE line
            else:
                out.append(lines[i])
                i += 1
        if "\n".join(out) != bare:
            raise KitError(f"{label}: {path} differs from the source outside its blanks")


LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*(?:\.(?:py|md|json|txt|png|sh|ini|yml|yaml|pt|bin)|/))"
                  r"(?![\w/-])")
CITED = re.compile(r"`([^`]+)`, line (\d+)")


def check_pages(label, folder, blanks):
    """(g) HANDOUT.md cites each blank at its line in the handout, and no other line; no page of the
    handout links to a missing file or names a file (or folder) of the source the handout lacks."""
    page = open(os.path.join(folder, "HANDOUT.md")).read()
    cited = {(path, int(n)) for path, n in CITED.findall(page)}
    want = {(path, b.line) for path, regions in blanks.items() for b in regions}
    if cited != want:
        raise KitError(f"{label}: HANDOUT.md cites lines {sorted(cited - want)[:3]} that are not blanks; "
                       f"misses {sorted(want - cited)[:3]}")
    for path, line in want:
        text = open(os.path.join(folder, path)).read().split("\n")
        if not YOUR_CODE.match(text[line - 1]):
            raise KitError(f"{label}: HANDOUT.md's {path}, line {line} is not a BEGIN YOUR CODE line")
    source = git_files(ROOT)
    have = set(handout_files(folder))
    names = {p.rsplit("/", 1)[-1] for p in have}
    folders = {p.rsplit("/", 1)[0] + "/" for p in have if "/" in p}
    folders |= {"/".join(p.split("/")[:i]) + "/" for p in have for i in range(1, p.count("/"))}

    def lacks(ref):  # a source file or folder that the handout does not hold
        ref = os.path.normpath(ref).replace(os.sep, "/") + ("/" if ref.endswith("/") else "")
        if ref.endswith("/"):
            return any(p.startswith(ref) for p in source) and ref not in folders
        if "/" not in ref:
            return any(p.rsplit("/", 1)[-1] == ref for p in source) and ref not in names
        return ref in source and ref not in have

    for md in sorted(p for p in have if p.endswith(".md")):
        text = open(os.path.join(folder, md), encoding="utf-8").read()
        for target in LINK.findall(text):
            target = target.split("#")[0]
            if not target or "://" in target or target.startswith("mailto:"):
                continue
            full = os.path.normpath(os.path.join(os.path.dirname(md), target)).replace(os.sep, "/")
            if not (full in have or full + "/" in folders or full.rstrip("/") + "/" in folders):
                raise KitError(f"{label}: {md} links to {target}, which the handout does not hold")
        for ref in PATH.findall(text):
            if lacks(ref.removeprefix("./")):
                raise KitError(f"{label}: {md} names {ref}, which the handout does not hold")


def check_handout(label, folder, blanks):
    check_no_leaks(label, folder, blanks)
    check_round_trip(label, folder, blanks)
    check_pages(label, folder, blanks)


def check_expected_failures(key, folder, expected):
    """(c) exactly the listed tests fail in the handout `key` ("A2", or "A2..A5")."""
    failing = sorted(t for t, msg in pytest(folder).items() if msg is not None)
    if expected is not None and key not in expected:
        raise KitError(f"{key}: not in {os.path.basename(EXPECTED)}; record it with --write-expected")
    if expected is not None and failing != sorted(expected.get(key, [])):
        extra = sorted(set(failing) - set(expected.get(key, [])))
        missing = sorted(set(expected.get(key, [])) - set(failing))
        raise KitError(f"{key}: unexpected failures {extra[:3]}, expected but passing {missing[:3]}")
    return failing


def check_wrong_solution(assignment, path, old, new, what):
    """(f) the wrong solution fails at least one graded test."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "repo")
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "out", "__pycache__", "handouts"))
        text = open(os.path.join(copy, path)).read()
        if text.count(old) != 1:
            raise KitError(f"wrong solution {what!r}: its solution text is not in {path} exactly once")
        open(os.path.join(copy, path), "w").write(text.replace(old, new))
        res = pytest(copy, "-m", assignment.lower())
        if not any(msg is not None for msg in res.values()):
            raise KitError(f"{assignment}: the wrong solution {what!r} passes every graded test")


def check(fast=False, write_expected=False, log=print):
    expected = None if write_expected or fast else json.load(open(EXPECTED))
    if not fast:
        failing = [t for t, msg in pytest(ROOT, "--ignore=tests/test_course.py").items() if msg is not None]
        if failing:
            raise KitError(f"(a) the solution fails {failing[:3]}")
        log("(a) the solution passes every test")
    solution_ids = None if fast else {t for t in collect(ROOT) if not t.startswith("tests/test_course.py")}
    recorded, done_wrong = {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in ASSIGNMENTS:
            folder, blanks = handout(assignment, tmp)
            check_handout(assignment, folder, blanks)
            if assignment not in CODED:
                if blanks:
                    raise KitError(f"{assignment} is an experiment but has blanks: {list(blanks)}")
                log(f"{assignment}: no blanks (d, e, g)")
                continue
            course, cfolder = assignment, folder  # the course handout (for the last one, the single one)
            if assignment != LAST:
                course = f"{assignment}..{LAST}"
                cfolder, cblanks = handout(assignment, tmp, through=LAST)
                check_handout(course, cfolder, cblanks)
            graded = check_graded_fail_with_the_stub(assignment, cfolder, solution_ids)
            earlier = check_earlier_graded_pass(course, cfolder, CODED[:CODED.index(assignment)])
            line = (f"{assignment}: {len(graded)} graded tests fail with the stub and {earlier} of earlier "
                    f"assignments pass in {course} (b); no leaks (d); round trip (e); pages (g)")
            if not fast:
                if cfolder != folder:
                    check_graded_fail_with_the_stub(assignment, folder, solution_ids)
                for key, f in [(assignment, folder)] + ([(course, cfolder)] if cfolder != folder else []):
                    recorded[key] = check_expected_failures(key, f, expected)
                line += "; " + ", ".join(f"{len(recorded[k])} tests fail in {k}" for k in recorded
                                         if k.split("..")[0] == assignment)
                line += " (c, " + ("recorded)" if write_expected else "as expected)")
            log(line)
            for a, path, old, new, what in WRONG:
                if a == assignment and (not fast or a not in done_wrong):
                    check_wrong_solution(a, path, old, new, what)
                    done_wrong.add(a)
                    log(f"  (f) caught: {what}")
    if write_expected:
        with open(EXPECTED, "w") as f:
            json.dump(recorded, f, indent=1)
            f.write("\n")
        log(f"wrote {EXPECTED}")


def main(argv):
    parser = argparse.ArgumentParser(description="check the course kit")
    parser.add_argument("--fast", action="store_true", help="(b), (d), (e), (g), one wrong solution per assignment")
    parser.add_argument("--write-expected", action="store_true", help="record (c) instead of checking it")
    args = parser.parse_args(argv)
    try:
        check(fast=args.fast and not args.write_expected, write_expected=args.write_expected)
    except KitError as e:
        print(f"check_kit.py: {e}", file=sys.stderr)
        return 1
    print("the kit is sound")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
