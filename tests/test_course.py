"""The course kit: handouts are made right, the autograder scores them, and the fast form of
course/check_kit.py passes."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "course"))
import check_kit  # noqa: E402
import make_handout  # noqa: E402


def test_markers_are_refused_when_nested_unclosed_or_unknown():
    good = "x = 1\n    # BEGIN SOLUTION A2\n    y = 2\n    # END SOLUTION\n"
    assert make_handout.regions(good, "f.py") == [("A2", 1, 3, "    ")]
    for bad, match in [("# BEGIN SOLUTION A1\n# BEGIN SOLUTION A2\n# END SOLUTION\n# END SOLUTION\n", "nested"),
                       ("# BEGIN SOLUTION A1\nx = 1\n", "never closed"),
                       ("x = 1\n# END SOLUTION\n", "without a BEGIN"),
                       ("# BEGIN SOLUTION A9\n# END SOLUTION\n", "unknown assignment")]:
        with pytest.raises(make_handout.KitError, match=match):
            make_handout.regions(bad, "f.py")


def test_blank_replaces_its_regions_and_drops_other_markers():
    text = ("def f():\n    # BEGIN SOLUTION A2\n    return 2\n    # END SOLUTION\n\n"
            "def g():\n    # BEGIN SOLUTION A1\n    return 1\n    # END SOLUTION\n")
    out, blanks = make_handout.blank(text, "f.py", "A2")
    assert out == ("def f():\n    # BEGIN YOUR CODE (A2)\n    raise NotImplementedError(\"A2: see course/A2.md\")\n"
                   "    # END YOUR CODE\n\ndef g():\n    return 1\n")
    assert blanks == [(1, 3, ["    return 2"], "A2", 2)]  # the last: the handout's own BEGIN YOUR CODE line
    # several at once (--through): each region its own stub, each line number the handout's
    text = "# BEGIN SOLUTION A1\na = 1\nb = 2\nc = 3\n# END SOLUTION\nx = 0\n# BEGIN SOLUTION A2\nd = 4\n# END SOLUTION\n"
    out, blanks = make_handout.blank(text, "f.py", ["A1", "A2"])
    assert [(b.tag, b.line) for b in blanks] == [("A1", 1), ("A2", 5)]
    assert out.split("\n")[4] == "# BEGIN YOUR CODE (A2)"


def test_blanked_range_is_an_assignment_and_every_later_one():
    assert make_handout.blanked_range("A2") == ["A2"]
    assert make_handout.blanked_range("A2", "A5") == ["A2", "A3", "A4", "A5"]
    with pytest.raises(make_handout.KitError, match="comes before"):
        make_handout.blanked_range("A3", "A1")


def make(*args):
    return subprocess.run([sys.executable, "course/make_handout.py", *args], cwd=ROOT, capture_output=True, text=True)


def test_handout_command_line(tmp_path):
    out = tmp_path / "h"
    p = make("A4", f"--out={out}", "--no-autograder")
    assert p.returncode == 0, p.stderr
    assert 'raise NotImplementedError("A4: see course/A4.md")' in (out / "pause.py").read_text()
    assert "SOLUTION" not in (out / "pause.py").read_text() + (out / "model.py").read_text()
    assert not (out / "course" / "wrong_solutions.py").exists() and not (out / ".git").exists()
    assert "A4" in (out / "HANDOUT.md").read_text() and (out / "course" / "A4.md").exists()
    assert not (tmp_path / "h-autograder").exists()
    # what a handout carries: the source's file modes (CI's script runs as ./.ci/run), and no stray wheel
    assert os.access(out / ".ci" / "run", os.X_OK) and not os.access(out / "pause.py", os.X_OK)
    assert [p for p in out.rglob("*.whl")] == []
    for bad, message in [(["A9"], "unknown assignment 'A9'; known: A1, A2, A3, A4, A5, A6"),
                         (["A3", "--through=A1"], "--through A1 comes before A3"),
                         (["A3", "--through=A4", "--grade=A5"], "--grade A5: not blanked in this handout (blanked: A3, A4)")]:
        p = make(*bad, f"--out={tmp_path}/x")
        assert p.returncode == 2 and p.stderr.strip() == f"make_handout.py: {message}"


def test_course_handout_blanks_later_assignments_and_ships_no_answers(tmp_path):
    """A3 --through A5: no solution of A3..A5, no results, a README of its own, HANDOUT.md's line
    numbers the handout's."""
    out = tmp_path / "A3"
    p = make("A3", "--through", "A5", f"--out={out}", "--no-autograder")
    assert p.returncode == 0, p.stderr
    pause, model = (out / "pause.py").read_text(), (out / "model.py").read_text()
    for tag, text in [("A3", pause), ("A4", pause), ("A5", model)]:
        assert f'raise NotImplementedError("{tag}: see course/{tag}.md")' in text
    assert 'NotImplementedError("A2' not in pause and "y[y == pause_id] = -1" in pause  # earlier ones: solved
    assert "SOLUTION" not in pause + model
    assert sorted(os.listdir(out / "results")) == ["README.md"] and not (out / "bench" / "README.md").exists()
    assert not (out / "course" / "README.md").exists() and not (out / "tests" / "mutants.py").exists()
    readme = (out / "README.md").read_text()
    assert "handout A3" in readme and "68.4" not in readme and "mutants" not in readme and "check_kit" not in readme
    cited = check_kit.CITED.findall((out / "HANDOUT.md").read_text())
    assert len(cited) == 4  # A3, A4 in pause.py; A5's two in model.py
    for path, line in cited:
        assert (out / path).read_text().split("\n")[int(line) - 1].strip().startswith("# BEGIN YOUR CODE (")


def test_leak_rule_catches_specific_lines_of_any_length_but_not_generic_ones():
    solution = ["    x, y = seqs[:, :-1], seqs[:, 1:].copy()", "    y[y == pause_id] = -1", "    return x, y",
                "    causal = False  # one new query may attend to every cached key"]
    assert check_kit.leaked(solution, "def test_x():\n    causal = False\n    return x, y\n") == []
    for text in ["    want[want==pause_id]=-1\n    y[y==pause_id] = -1  # the rule\n",  # other spacing, a comment
                 "assert f(s) == 1; y[ y == pause_id ] = -1\n",  # inside a longer line
                 "The rule is `y[y == pause_id] = -1`.\n",  # a page
                 'CODE = "y[y == pause_id] = -1"\n']:  # a string
        assert check_kit.leaked(solution, text) == ["y[y == pause_id] = -1"], text
    assert check_kit.leaked(solution, "# causal = False  # one new query may attend to every cached key\n") == [
        "causal = False  # one new query may attend to every cached key"]  # a long line, verbatim


def test_page_check_refuses_wrong_line_numbers_and_missing_files(tmp_path):
    out = str(tmp_path / "A2")
    blanks = make_handout.make_handout("A2", out)
    check_kit.check_pages("A2", out, blanks)
    handout_md, readme_md = os.path.join(out, "HANDOUT.md"), os.path.join(out, "README.md")
    page, readme = open(handout_md).read(), open(readme_md).read()
    line = blanks["pause.py"][0].line
    open(handout_md, "w").write(page.replace(f"line {line} ", f"line {line + 1} "))
    with pytest.raises(make_handout.KitError, match="HANDOUT.md cites lines"):
        check_kit.check_pages("A2", out, blanks)
    open(handout_md, "w").write(page)
    for named in ["`tests/mutants.py`", "python course/check_kit.py", "(see check_kit.py)",
                  "[the results](results/default.md)", "the numbers in results/paper.md"]:
        open(readme_md, "w").write(readme + named + "\n")
        with pytest.raises(make_handout.KitError, match="README.md (names|links to)"):
            check_kit.check_pages("A2", out, blanks)
    open(readme_md, "w").write(readme + "run `python eval.py`, then read out/default/results.md\n")
    check_kit.check_pages("A2", out, blanks)  # a file the student makes is no missing file


def test_kit_fast_form():
    """(b) every graded test of each course handout fails with its own stub and the earlier ones pass,
    (d) no leaks, (e) round trip, (g) pages, (f) one wrong solution per assignment is caught. The full
    check: python course/check_kit.py."""
    lines = []
    check_kit.check(fast=True, log=lines.append)
    assert [line[:3] for line in lines if line.startswith("A")] == ["A1:", "A2:", "A3:", "A4:", "A5:", "A6:"]
    assert sum("(f) caught" in line for line in lines) == 5


def test_stub_check_refuses_a_graded_test_that_fails_for_another_reason(monkeypatch):
    """check_kit's (b): a graded test of a blanked handout must fail *because of that assignment's stub*.
    One that fails on an ImportError, an AssertionError or another assignment's stub would pass the
    kit while telling a student nothing about their code. Failure messages crafted as pytest's JUnit
    XML gives them (message, newline, traceback)."""
    ok = "NotImplementedError: A2: see course/A2.md\nE   NotImplementedError: A2: see course/A2.md"
    monkeypatch.setattr(check_kit, "collect", lambda folder: {"tests/test_x.py::a", "tests/test_x.py::b"})

    def graded(results):
        monkeypatch.setattr(check_kit, "pytest", lambda folder, *args: results)
        return check_kit.check_graded_fail_with_the_stub("A2", "handout", None)

    assert graded({"t::a": ok, "t::b": ok}) == ["t::a", "t::b"]
    for other in ["ImportError: cannot import name 'lm_targets' from 'pause'\nE   ImportError: cannot import",
                  "AssertionError: assert [1, 2] == [1, 3]\nE   AssertionError",
                  "NotImplementedError: A1: see course/A1.md\nE   NotImplementedError: A1: see course/A1.md",
                  None]:  # None: the test passed
        with pytest.raises(make_handout.KitError, match=r"A2: graded tests that do not fail with the stub: \['t::b'\]"):
            graded({"t::a": ok, "t::b": other})


def test_earlier_graded_tests_must_not_need_a_later_assignment(monkeypatch):
    """check_kit's (b) in a course handout: A4's graded tests must pass while A5 is blank, or a student
    given `A4 --through A5` can never pass A4."""
    stub = "NotImplementedError: A5: see course/A5.md\nE   NotImplementedError: A5: see course/A5.md"
    monkeypatch.setattr(check_kit, "pytest", lambda folder, *args: {"t::a": None, "t::b": stub})
    with pytest.raises(make_handout.KitError, match=r"A5: graded tests of earlier .* \['t::b \(needs A5\)'\]"):
        check_kit.check_earlier_graded_pass("A5", "handout", ["A4"])
    monkeypatch.setattr(check_kit, "pytest", lambda folder, *args: {"t::a": None, "t::b": None})
    assert check_kit.check_earlier_graded_pass("A5", "handout", ["A4"]) == 2


def graded_ids(marker):
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-m", marker, "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    return sorted(line.strip() for line in out.splitlines() if "::" in line)


def gradescope(grader, root, files, **limits):
    """Run the autograder folder `grader` as Gradescope does (run_autograder, its folders under root) on a
    submission of {path: text}, with autograder.json's limits changed by `limits`; (results.json, seconds)."""
    import time
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(grader, root / "source")
    config = json.loads((root / "source" / "autograder.json").read_text())
    (root / "source" / "autograder.json").write_text(json.dumps({**config, **limits}))
    for path, text in files.items():
        (root / "submission" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / path).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "NANOPAUSE_GRADE_SEED"}
    t = time.time()
    p = subprocess.run(["bash", str(grader / "run_autograder")], capture_output=True, text=True,
                       env={**env, "AUTOGRADER_ROOT": str(root), "NANOPAUSE_PYTHON": sys.executable})
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads((root / "results" / "results.json").read_text()), time.time() - t


def test_gradescope_autograder_scores_the_solution_full_and_the_stub_zero(tmp_path):
    """The autograder made with the A2 handout, run as Gradescope runs it (run_autograder with its
    folders under AUTOGRADER_ROOT): exactly A2's graded tests, one point each; the solution's pause.py
    scores all, the handout's stub none, and a test file sent along with it changes nothing. The made
    folder's scripts run as they are, and its handout holds no instructor's file."""
    p = make("A2", f"--out={tmp_path}/A2", "--grade-seed=7")
    assert p.returncode == 0, p.stderr
    grader = tmp_path / "A2-autograder"
    assert json.loads((grader / "autograder.json").read_text()) == {"graded": ["A2"], "files": ["pause.py"],
                                                                  "timeout": 540, "test_timeout": 60}
    assert (grader / "grade_seed").read_text().strip() == "7" and (grader / "handout" / "HANDOUT.md").exists()
    assert all(os.access(grader / name, os.X_OK) for name in ("setup.sh", "run_autograder", "grade.py"))
    shipped = {str(f.relative_to(grader / "handout")) for f in (grader / "handout").rglob("*") if f.is_file()}
    instructors = {"course/autograder.py", "course/check_kit.py", "course/wrong_solutions.py", "course/README.md",
                   "course/expected_failures.json", "tests/test_course.py", "tests/mutants.py"}  # named here, not read
    assert not shipped & (instructors | {"grade.py", "autograder.json", "grade_seed"})
    assert not any(f.startswith("results/") and f != "results/README.md" for f in shipped)
    want = ["A2: " + t for t in graded_ids("a2")]
    assert len(want) >= 2

    def grade(files):
        results, _ = gradescope(grader, tmp_path / "gradescope", files)
        assert sorted(t["name"] for t in results["tests"]) == want
        assert all(t["max_score"] == 1 for t in results["tests"])
        return results

    solution = open(os.path.join(ROOT, "pause.py")).read()
    solved = grade({"pause.py": solution})
    assert solved["score"] == len(want) and all(t["status"] == "passed" for t in solved["tests"])
    cheat = "def test_lm_targets_on_random_windows():\n    pass\n"
    stub = grade({"repo/pause.py": (tmp_path / "A2" / "pause.py").read_text(), "repo/tests/test_pause.py": cheat})
    assert stub["score"] == 0 and all("NotImplementedError: A2" in t["output"] for t in stub["tests"])
    assert "graded repo/pause.py as pause.py" in stub["output"]


MINI_TESTS = """import pytest

import mod


@pytest.mark.a2
def test_one():
    assert mod.one() == 1


@pytest.mark.a2
def test_two():
    assert mod.two() == 2


@pytest.mark.a2
def test_three():
    assert mod.three() == 3
"""
MINI_SOLUTION = "def one():\n    return 1\n\n\ndef two():\n    return 2\n\n\ndef three():\n    return 3\n"


@pytest.fixture
def mini_autograder(tmp_path):
    """grade.py's source folder for a handout of three graded tests (marker a2) of one submitted file,
    mod.py: the grading as on Gradescope, without torch to import, so each grading takes a second."""
    import autograder
    source = tmp_path / "source"
    (source / "handout" / "tests").mkdir(parents=True)
    (source / "handout" / "pytest.ini").write_text("[pytest]\ntestpaths = tests\npythonpath = .\nmarkers =\n    a2: graded\n")
    (source / "handout" / "mod.py").write_text("def one():\n    raise NotImplementedError\n")
    (source / "handout" / "tests" / "test_mod.py").write_text(MINI_TESTS)
    (source / "autograder.json").write_text(json.dumps({"graded": ["A2"], "files": ["mod.py"]}))
    (source / "grade_seed").write_text("7\n")

    def grade(submission, timeout=60, test_timeout=1):
        folder = tmp_path / f"submission{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "mod.py").write_text(submission)
        results = autograder.grade(str(source), str(folder), timeout, test_timeout)
        assert [t["name"] for t in results["tests"]] == [f"A2: tests/test_mod.py::test_{n}" for n in ("one", "two", "three")]
        return {t["name"].split("::test_")[1]: (t["score"], t["output"]) for t in results["tests"]}, results
    return grade


def test_autograder_gives_each_test_a_time_limit_and_the_others_keep_their_points(mini_autograder):
    """A function that loops forever: its test scores 0 and says it timed out, the others keep their
    points. One that catches the timeout and loops on is stopped from outside a few seconds later, and
    the tests after it still run. The grading ends within its limits."""
    import time
    from autograder import GRACE
    t = time.time()
    scores, results = mini_autograder(MINI_SOLUTION.replace("    return 2\n", "    while True:\n        pass\n"))
    assert scores["one"] == (1.0, "") and scores["three"] == (1.0, "")
    assert scores["two"][0] == 0 and "timed out: the test ran past its limit of 1 s" in scores["two"][1]
    assert results["score"] == 2 and "1 test(s) timed out (each may take 1 s) and scored 0" in results["output"]
    stubborn = ("    import time\n    while True:\n        try:\n            time.sleep(0.1)\n"
                "        except BaseException:\n            pass\n")
    t = time.time()
    scores, results = mini_autograder(MINI_SOLUTION.replace("    return 2\n", stubborn))
    assert scores["one"] == (1.0, "") and scores["three"] == (1.0, "")  # three: run again after two was stopped
    assert scores["two"] == (0.0, f"timed out: still running {1 + GRACE} s after it started (its limit is 1 s), "
                                  "so it was stopped")
    assert time.time() - t < 2 * 60  # within the two gradings' overall limits (60 s each; seconds unloaded)


def test_autograder_keeps_within_its_overall_limit_and_scores_what_it_left_unrun(mini_autograder):
    """A test that hangs past the grading's overall limit is stopped there; the tests it leaves unrun
    score 0 and say why."""
    import time
    stubborn = ("    import time\n    while True:\n        try:\n            time.sleep(0.1)\n"
                "        except BaseException:\n            pass\n")
    t = time.time()
    scores, results = mini_autograder(MINI_SOLUTION.replace("    return 2\n", stubborn), timeout=10, test_timeout=60)
    assert time.time() - t < 10 + 2
    overall = "the grading reached its overall time limit"
    assert scores["two"][0] == 0 and scores["two"][1] in (f"timed out: {overall} during this test",
                                                          f"did not run: {overall} before this test ran")
    assert scores["three"] == (0.0, f"did not run: {overall} before this test ran")
    assert scores["one"] == (1.0, "") or scores["two"][1].startswith("did not run")  # on a machine too slow to reach it


def test_autograder_scores_skipped_and_unimportable_submissions_zero(mini_autograder):
    """A graded test the submission skips scores 0 (a graded test must run); a submission that does not
    import scores 0 on every test, each saying it did not run and why."""
    scores, _ = mini_autograder(MINI_SOLUTION.replace("    return 1\n", "    import pytest\n    pytest.skip('not today')\n"))
    assert scores["one"][0] == 0 and scores["one"][1].startswith("skipped, so it scores 0") and "not today" in scores["one"][1]
    assert scores["two"] == (1.0, "") and scores["three"] == (1.0, "")
    scores, results = mini_autograder(MINI_SOLUTION.replace("def two():", "def two(:"))
    assert results["score"] == 0
    assert all(out.startswith("did not run: ") and "SyntaxError" in out for _, out in scores.values())


def test_autograder_always_writes_results_json(tmp_path, monkeypatch):
    """Written before grading starts (a grading killed from outside leaves a reason, not nothing), and
    rewritten when the autograder itself fails."""
    import autograder
    out = tmp_path / "results" / "results.json"

    def killed(*args):
        assert json.loads(out.read_text())["output"] == "the autograder did not finish"
        raise KeyboardInterrupt
    monkeypatch.setattr(autograder, "grade", killed)
    with pytest.raises(KeyboardInterrupt):
        autograder.main(["--submission", str(tmp_path), "--results", str(out)])
    assert json.loads(out.read_text()) == {"score": 0.0, "output": "the autograder did not finish", "tests": []}
    monkeypatch.undo()
    assert autograder.main(["--source", str(tmp_path / "nothing"), "--submission", str(tmp_path), "--results", str(out)]) == 0
    assert json.loads(out.read_text())["output"].startswith("the autograder failed: FileNotFoundError")


def test_full_check_records_and_checks_single_and_course_handouts(tmp_path, monkeypatch):
    """The full check's bookkeeping, with pytest faked (the real one takes minutes): --write-expected
    records the failing tests of each single handout ("A2") and each course handout ("A2..A5"), and
    the full check then holds every handout to its own list."""
    def fake_pytest(folder, *args):
        name = os.path.basename(folder)
        if args[:1] == ("-m",):
            markers = args[1].split(" or ")
            if name == "repo":  # a wrong solution: caught
                return {"t::wrong": "AssertionError"}
            if markers == [name.split("..")[0].lower()]:  # the handout's own graded tests: the stub
                a = name.split("..")[0]
                return {f"t::{a}": f"NotImplementedError: {a}: see course/{a}.md"}
            return {f"t::{m}": None for m in markers}  # earlier assignments' graded tests: pass
        if args[:1] and args[0].startswith("--ignore"):  # (a) the solution
            return {"t::all": None}
        return {f"t::needs_{name}": "NotImplementedError", "t::other": None}  # (c) the whole suite

    monkeypatch.setattr(check_kit, "pytest", fake_pytest)
    monkeypatch.setattr(check_kit, "collect", lambda folder: {"tests/test_x.py::t"})
    monkeypatch.setattr(check_kit, "EXPECTED", str(tmp_path / "expected.json"))
    check_kit.check(write_expected=True, log=lambda line: None)
    recorded = json.loads((tmp_path / "expected.json").read_text())
    assert sorted(recorded) == ["A1", "A1..A5", "A2", "A2..A5", "A3", "A3..A5", "A4", "A4..A5", "A5"]
    assert recorded["A2..A5"] == ["t::needs_A2..A5"]
    lines = []
    check_kit.check(log=lines.append)
    assert [line for line in lines if line.startswith("A2:")] == [
        "A2: 1 graded tests fail with the stub and 1 of earlier assignments pass in A2..A5 (b); no leaks (d); "
        "round trip (e); pages (g); 1 tests fail in A2, 1 tests fail in A2..A5 (c, as expected)"]
    recorded["A3..A5"] = []
    (tmp_path / "expected.json").write_text(json.dumps(recorded))
    with pytest.raises(make_handout.KitError, match=r"A3..A5: unexpected failures \['t::needs_A3..A5'\]"):
        check_kit.check(log=lambda line: None)
    del recorded["A3..A5"]
    (tmp_path / "expected.json").write_text(json.dumps(recorded))
    with pytest.raises(make_handout.KitError, match=r"A3..A5: not in expected.json; record it with --write-expected"):
        check_kit.check(log=lambda line: None)
