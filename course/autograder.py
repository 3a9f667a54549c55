"""
The Gradescope autograder of a handout (instructor-only; standard library only).

`python course/make_handout.py A2 --out handouts/A2` writes it next to the handout, in
handouts/A2-autograder/:

    setup.sh          Gradescope runs it once, when it builds the grading image: Python, torch (CPU
                      build), the handout's requirements, a check that the graded tests collect
    run_autograder    Gradescope runs it for every submission: grade.py with Gradescope's folders
    grade.py          this file: grades a submission and writes results/results.json
    autograder.json   what it grades: the assignments (pytest markers), the files taken from a submission
    grade_seed        NANOPAUSE_GRADE_SEED of the graded inputs (students never see it)
    handout/          the handout as the students got it: its tests, not the student's, grade
    README.md         how to upload it

Grading a submission: copy handout/ to a fresh folder, collect the graded tests there (one pytest
marker per assignment: `-m a2`), put the submission's files with blanks (pause.py, model.py; found at
their path or by name anywhere in the submission) over the copy's, run the graded tests with
NANOPAUSE_GRADE_SEED, and write one results.json entry per graded test (1 point each, named
"A2: tests/test_pause.py::..."), the failure's last lines as its output. Anything else the student
sends (tests included) is ignored; a test that does not run (a syntax error, a timeout) scores 0.

To try it without Gradescope (the course's tests do):
    AUTOGRADER_ROOT=/tmp/ag NANOPAUSE_PYTHON=python3 bash handouts/A2-autograder/run_autograder
with /tmp/ag/source the autograder folder and /tmp/ag/submission the student's files.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT_CHARS = 3000  # of each failure shown to the student

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the grading image (Ubuntu base image).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
apt-get update
apt-get install -y python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
# the CPU build of the pinned torch first (a plain `pip install torch` on Linux pulls a CUDA build of
# several GB); requirements.txt then keeps it
/autograder/venv/bin/pip install {torch} --index-url https://download.pytorch.org/whl/cpu
/autograder/venv/bin/pip install -r "$HERE/handout/requirements.txt"
# fail the build now, not at the first submission, if the graded tests do not collect
cd "$HERE/handout" && /autograder/venv/bin/python -m pytest -q -p no:cacheprovider --collect-only -m "{markers}"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission (/autograder/submission) and reads
# /autograder/results/results.json. The tests that grade are those of source/handout, never the student's.
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${NANOPAUSE_PYTHON:-$ROOT/venv/bin/python}"
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null || PYTHON=python3
mkdir -p "$ROOT/results"
exec "$PYTHON" "$ROOT/source/grade.py" --source "$ROOT/source" --submission "$ROOT/submission" \\
    --results "$ROOT/results/results.json"
"""

README = """# Gradescope autograder: {what}

Instructor-only: it holds the grade seed. Made by course/make_handout.py with the handout it grades
(a copy of it is in handout/).

**Upload.** Zip this folder's contents, not the folder (Gradescope wants setup.sh and run_autograder at
the root of the zip): `cd {name} && zip -r ../{name}.zip .`. In Gradescope: a Programming Assignment,
Configure Autograder, the Ubuntu base image, upload the zip. Building the image installs Python, the
CPU build of torch and the requirements (a few minutes); allow about 20 minutes per submission at
most (the tests take seconds to a few minutes on 2 cores).

**What it grades.** {graded}, one point per graded test (the test counts are printed by
`python -m pytest -m <marker> --collect-only -q` in the handout); set the assignment's total to their
sum. Students upload {files} (or a zip or repository holding them); only those files are taken, the
tests and everything else come from handout/.

**The grade seed.** grade_seed holds NANOPAUSE_GRADE_SEED, the seed of the graded tests' random inputs
(the handout's students run them with seed 0). Change it by editing that file (or by
`--grade-seed N` when making the handout); an environment variable NANOPAUSE_GRADE_SEED, where set,
overrides it.

**Try it** on your machine before uploading, with the solution's files as the submission:
`mkdir -p /tmp/ag/submission && cp -r . /tmp/ag/source && cp {copies} /tmp/ag/submission/ &&
AUTOGRADER_ROOT=/tmp/ag NANOPAUSE_PYTHON=python3 bash run_autograder && cat /tmp/ag/results/results.json`
(python3: one with the requirements installed; the solution scores every point, the handout's files none).

The student's code runs in the grading process: like any autograder that runs submitted code, a
determined student could subvert it; look at submissions whose score surprises you.
"""


def write_autograder(handout, out, graded, files, seed):
    """Write the Gradescope autograder of the handout folder `handout` to `out`: it scores the
    assignments `graded` (e.g. ["A2"]) from the submitted `files` (e.g. ["pause.py"])."""
    os.makedirs(out, exist_ok=True)
    shutil.copytree(handout, os.path.join(out, "handout"))
    markers = [a.lower() for a in graded]
    torch = "torch"
    with open(os.path.join(handout, "requirements.txt")) as f:
        for line in f:
            if line.strip().startswith("torch"):
                torch = line.split("#")[0].strip()
    texts = {
        "setup.sh": SETUP_SH.format(torch=torch, markers=" or ".join(markers)),
        "run_autograder": RUN_AUTOGRADER,
        "autograder.json": json.dumps({"graded": list(graded), "files": list(files)}, indent=1) + "\n",
        "grade_seed": f"{seed}\n",
        "README.md": README.format(what=", ".join(graded), name=os.path.basename(os.path.normpath(out)),
                                   graded=", ".join(f"{a} (`-m {a.lower()}`)" for a in graded),
                                   files=", ".join(f"`{f}`" for f in files),
                                   copies=" ".join(f"<solution>/{f}" for f in files)),
    }
    for name, text in texts.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)
    shutil.copyfile(os.path.abspath(__file__), os.path.join(out, "grade.py"))
    for name in ("setup.sh", "run_autograder", "grade.py"):
        os.chmod(os.path.join(out, name), 0o755)


def pytest(folder, env, timeout, *args):
    """Run pytest in folder; ({test id: None (passed) or failure text}, [collection errors], note)."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, "junit.xml")
        try:
            p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
                                *args], cwd=folder, capture_output=True, text=True, env=env, timeout=timeout)
            note = "" if os.path.exists(xml) else (p.stdout + p.stderr)[-OUTPUT_CHARS:]
        except subprocess.TimeoutExpired:
            return {}, [], f"the tests did not finish within {timeout} s"
        results, errors = {}, []
        if os.path.exists(xml):
            for case in ET.parse(xml).iter("testcase"):
                bad = case.find("failure")
                bad = bad if bad is not None else case.find("error")
                text = None if bad is None else ((bad.get("message") or "") + "\n" + (bad.text or "")).strip()
                if not case.get("classname"):  # a module that did not import: no test of it ran
                    errors.append(f"{case.get('name')}: {text}")
                elif case.find("skipped") is None:
                    results[f"{case.get('classname')}::{case.get('name')}"] = text
        return results, errors, note


def collect(folder, env, marker):
    """The ids of the graded tests of one marker, as pytest prints them (tests/test_x.py::test_y[p])."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                          "-m", marker], cwd=folder, capture_output=True, text=True, env=env).stdout
    return [line.strip() for line in out.splitlines() if "::" in line]


def junit_id(test_id):
    """tests/test_x.py::TestC::test_y[p] as JUnit XML names it: tests.test_x.TestC::test_y[p]."""
    parts = test_id.split("::")
    return ".".join([parts[0][:-3].replace("/", ".")] + parts[1:-1]) + "::" + parts[-1]


def find(submission, path):
    """The submitted copy of a handout file: at its own path, else the shallowest file of that name."""
    if os.path.isfile(os.path.join(submission, path)):
        return os.path.join(submission, path)
    found = []
    for dirpath, dirs, files in os.walk(submission):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        if os.path.basename(path) in files:
            found.append(os.path.join(dirpath, os.path.basename(path)))
    return min(found, key=lambda p: (p.count(os.sep), p)) if found else None


def grade(source, submission, timeout=1800):
    """The results.json of one submission (a dict)."""
    t0 = time.time()
    config = json.load(open(os.path.join(source, "autograder.json")))
    seed = os.environ.get("NANOPAUSE_GRADE_SEED") or open(os.path.join(source, "grade_seed")).read().strip()
    env = {**os.environ, "NANOPAUSE_GRADE_SEED": seed, "PYTHONDONTWRITEBYTECODE": "1"}
    print(f"grading {', '.join(config['graded'])} with NANOPAUSE_GRADE_SEED={seed}")
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "handout")
        shutil.copytree(os.path.join(source, "handout"), work)
        graded = {a: collect(work, env, a.lower()) for a in config["graded"]}  # before the student's code
        for a, ids in graded.items():
            if not ids:
                raise RuntimeError(f"the handout collects no test of {a} (-m {a.lower()})")
        notes = []
        for path in config["files"]:
            found = find(submission, path)
            if found is None:
                notes.append(f"{path} is not in the submission: graded with the handout's, which raises "
                             "NotImplementedError")
            else:
                shutil.copyfile(found, os.path.join(work, path))
                notes.append(f"graded {os.path.relpath(found, submission)} as {path}")
        results, errors, note = pytest(work, env, timeout, "-m", " or ".join(a.lower() for a in graded))
    tests = []
    for a, ids in graded.items():
        for test_id in ids:
            key = junit_id(test_id)
            ran = key in results
            failure = results.get(key) if ran else ("did not run: " + ("\n".join(errors) or note or "not collected"))
            tests.append({"name": f"{a}: {test_id}", "score": 0.0 if failure else 1.0, "max_score": 1.0,
                          "status": "failed" if failure else "passed", "visibility": "visible",
                          "output": (failure or "")[-OUTPUT_CHARS:]})
    lines = notes + [f"{a}: {sum(t['score'] for t in tests if t['name'].startswith(a + ':')):.0f} of {len(ids)} "
                     f"graded tests pass" for a, ids in graded.items()]
    return {"score": sum(t["score"] for t in tests), "execution_time": round(time.time() - t0),
            "output": "\n".join(lines), "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def main(argv):
    parser = argparse.ArgumentParser(description="grade one submission; write Gradescope's results.json")
    parser.add_argument("--source", default=HERE, help="the autograder's folder (autograder.json, handout/)")
    parser.add_argument("--submission", required=True, help="the student's files")
    parser.add_argument("--results", required=True, help="the results.json to write")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds for the graded tests")
    args = parser.parse_args(argv)
    try:
        results = grade(args.source, args.submission, args.timeout)
    except Exception as e:  # the autograder's own failure: say so, score nothing
        results = {"score": 0.0, "output": f"the autograder failed: {type(e).__name__}: {e}", "tests": []}
        print(results["output"], file=sys.stderr)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, "w") as f:
        json.dump(results, f, indent=1)
    print(results["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
