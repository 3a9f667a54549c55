"""
Check the course kit before handing it out (instructor-only; standard library + pytest):

  (a) the solution (this repository) passes all tests
  (b) each assignment's handout imports, collects the same tests as the solution, and every graded
      test of that assignment fails with that assignment's NotImplementedError
  (c) blanking one assignment fails exactly the tests course/expected_failures.json lists for it (a
      test that silently depends on another assignment's code shows up here)
  (d) no blanked solution line of 25 characters or more appears anywhere else in the handout
  (e) putting the solution back into the handout's blanks gives the source, byte for byte, minus the
      marker lines (so the handout differs from the source in its blanks and nowhere else)
  (f) each plausible wrong solution in course/wrong_solutions.py fails at least one graded test

  python course/check_kit.py                 # all of it, before a release (about 10 minutes on 2 cores)
  python course/check_kit.py --fast          # (b), (d), (e) and one wrong solution per assignment
  python course/check_kit.py --write-expected   # record (c)'s failing tests after changing tests on purpose

The test suite runs the fast form (tests/test_course.py).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_handout import ASSIGNMENTS, BEGIN, END, ROOT, KitError, make_handout  # noqa: E402
from wrong_solutions import WRONG  # noqa: E402

CODED = [a for a in ASSIGNMENTS if a != "A6"]  # A6 is an experiment: no blanks, no graded tests
EXPECTED = os.path.join(HERE, "expected_failures.json")


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


def handout(assignment, tmp):
    out = os.path.join(tmp, assignment)
    return out, make_handout(assignment, out)


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


def check_no_leaks(assignment, folder, blanks):
    """(d) no blanked line (25+ characters) anywhere else in the handout, tests included."""
    lines = {s.strip() for regions in blanks.values() for _, _, sol in regions for s in sol if len(s.strip()) >= 25}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                text = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            for line in lines:
                if line in text:
                    raise KitError(f"{assignment}: the blanked line {line!r} appears in {os.path.relpath(path, folder)}")


def check_round_trip(assignment, folder, blanks):
    """(e) handout + solution regions == source without its marker lines, byte for byte."""
    for path, regions in blanks.items():
        source = open(os.path.join(ROOT, path), encoding="utf-8").read()
        bare = "\n".join(line for line in source.split("\n") if not (BEGIN.match(line) or END.match(line)))
        lines, out, solutions = open(os.path.join(folder, path), encoding="utf-8").read().split("\n"), [], iter(regions)
        i = 0
        while i < len(lines):
            if lines[i].strip() == f"# BEGIN YOUR CODE ({assignment})":
                out += next(solutions)[2]
                i += 3  # the BEGIN YOUR CODE line, the raise and the END YOUR CODE line
            else:
                out.append(lines[i])
                i += 1
        if "\n".join(out) != bare:
            raise KitError(f"{assignment}: {path} differs from the source outside its blanks")


def check_expected_failures(assignment, folder, expected):
    """(c) exactly the listed tests fail when the assignment is blanked."""
    failing = sorted(t for t, msg in pytest(folder).items() if msg is not None)
    if expected is not None and failing != sorted(expected.get(assignment, [])):
        extra = sorted(set(failing) - set(expected.get(assignment, [])))
        missing = sorted(set(expected.get(assignment, [])) - set(failing))
        raise KitError(f"{assignment}: unexpected failures {extra[:3]}, expected but passing {missing[:3]}")
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
            check_no_leaks(assignment, folder, blanks)
            check_round_trip(assignment, folder, blanks)
            if assignment not in CODED:
                if blanks:
                    raise KitError(f"{assignment} is an experiment but has blanks: {list(blanks)}")
                log(f"{assignment}: no blanks (d, e)")
                continue
            graded = check_graded_fail_with_the_stub(assignment, folder, solution_ids)
            line = f"{assignment}: {len(graded)} graded tests fail with the stub (b); no leaks (d); round trip (e)"
            if not fast:
                recorded[assignment] = check_expected_failures(assignment, folder, expected)
                line += f"; {len(recorded[assignment])} tests fail in all, " + ("recorded (c)" if write_expected else "as expected (c)")
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
    parser.add_argument("--fast", action="store_true", help="(b), (d), (e), one wrong solution per assignment")
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
