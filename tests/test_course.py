"""The course kit: handouts are made right, and the fast form of course/check_kit.py passes."""
import os
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
    assert blanks == [(1, 3, ["    return 2"])]


def test_handout_command_line(tmp_path):
    out = tmp_path / "h"
    p = subprocess.run([sys.executable, "course/make_handout.py", "A4", f"--out={out}"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert 'raise NotImplementedError("A4: see course/A4.md")' in (out / "pause.py").read_text()
    assert "SOLUTION" not in (out / "pause.py").read_text() + (out / "model.py").read_text()
    assert not (out / "course" / "wrong_solutions.py").exists() and not (out / ".git").exists()
    assert "A4" in (out / "HANDOUT.md").read_text() and (out / "course" / "A4.md").exists()
    p = subprocess.run([sys.executable, "course/make_handout.py", "A9", f"--out={tmp_path}/x"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip() == "make_handout.py: unknown assignment 'A9'; known: A1, A2, A3, A4, A5, A6"


def test_kit_fast_form():
    """(b) every graded test of each handout fails with its own stub, (d) no leaks, (e) round trip,
    (f) one wrong solution per assignment is caught. The full check: python course/check_kit.py."""
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
