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
sends (tests included) is ignored; a test that does not run (a syntax error) or is skipped scores 0.

Time: Gradescope gives an autograder half a virtual CPU, 768 MB and 10 minutes by default, and kills it
past that: the student then sees 0 and no test. So each graded test has its own limit (TEST_LIMIT; a
test past it scores 0 and says it timed out, the others keep their points), the whole grading has one
under the platform's (TOTAL_LIMIT; tests it leaves unrun score 0 and say so), both set in
autograder.json, and results.json is written before grading starts and rewritten at the end.

To try it without Gradescope (the course's tests do):
    AUTOGRADER_ROOT=/tmp/ag NANOPAUSE_PYTHON=python3 bash handouts/A2-autograder/run_autograder
with /tmp/ag/source the autograder folder and /tmp/ag/submission the student's files.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT_CHARS = 3000  # of each failure shown to the student
# Gradescope's default limit is 10 minutes for everything; 9 of them for the tests leaves one for
# starting Python, copying the handout and writing results.json. A solution grades in 12-18 s on one
# core (every assignment), its slowest graded test takes 5 s: 60 s per test is 6-12 times that at
# Gradescope's half a CPU, and a hanging test costs a minute, not the whole grade.
TOTAL_LIMIT = 540  # seconds for all the grading (autograder.json "timeout")
TEST_LIMIT = 60    # seconds for one graded test (autograder.json "test_timeout")
GRACE = 5          # past a test's limit, seconds before a test that ignores its timeout is stopped from outside

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
CPU build of torch and the requirements (a few minutes).

**Time.** Gradescope's defaults for an autograder are half a virtual CPU, 768 MB of memory and 10
minutes, past which it is killed and the student sees 0 and no test. With the solution, every
assignment grades in 12-18 s on one core (the slowest graded test, 5 s); expect about twice that on
half a CPU. Each graded test may take {test_timeout} s (a test past it scores 0 and says it timed out,
the others keep their points), all of the grading {timeout} s (tests left unrun score 0 and say so):
"test_timeout" and "timeout" in autograder.json. If you raise the assignment's limit in Gradescope's
settings, raise "timeout" with it, a minute under it.

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
        "autograder.json": json.dumps({"graded": list(graded), "files": list(files), "timeout": TOTAL_LIMIT,
                                       "test_timeout": TEST_LIMIT}, indent=1) + "\n",
        "grade_seed": f"{seed}\n",
        "README.md": README.format(what=", ".join(graded), name=os.path.basename(os.path.normpath(out)),
                                   graded=", ".join(f"{a} (`-m {a.lower()}`)" for a in graded),
                                   files=", ".join(f"`{f}`" for f in files),
                                   copies=" ".join(f"<solution>/{f}" for f in files),
                                   timeout=TOTAL_LIMIT, test_timeout=TEST_LIMIT),
    }
    for name, text in texts.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)
    shutil.copyfile(os.path.abspath(__file__), os.path.join(out, "grade.py"))
    for name in ("setup.sh", "run_autograder", "grade.py"):
        os.chmod(os.path.join(out, name), 0o755)


# Written into the copy being graded and loaded with -p: each test under an alarm of its own, and every
# result appended to a log as it comes, so that the results of a run stopped from outside are kept.
PLUGIN = """\"\"\"grade.py's pytest plugin: a time limit per test, and each result on disk as it comes.\"\"\"
import json
import os
import signal
import time

import pytest

LIMIT = float(os.environ["GRADE_TEST_LIMIT"])
LOG = os.environ["GRADE_LOG"]


class TestTimedOut(BaseException):  # not an Exception: a submission's `except Exception` cannot swallow it
    pass


def log(**entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\\n")


def alarm(signum, frame):
    raise TestTimedOut(f"timed out: the test ran past its limit of {LIMIT:g} s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    log(started=item.nodeid, at=time.time())
    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, LIMIT)  # setup, call and teardown together
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def pytest_runtest_logreport(report):
    text = "" if report.passed else str(report.longrepr)
    log(test=report.nodeid, when=report.when, outcome=report.outcome, text=text,
        timed_out="TestTimedOut: timed out" in text)


def pytest_collectreport(report):
    if report.failed:
        log(collect_error=report.nodeid or "collection", text=str(report.longrepr))
"""


def read_log(path):
    entries = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    entries.append(json.loads(line))
                except ValueError:  # a line cut short by a kill
                    pass
    return entries


def run_tests(folder, env, ids, test_limit, deadline):
    """Run the graded tests `ids` in folder, each under test_limit seconds, all by the time.time()
    `deadline`; {test id: (status, text)}, status one of passed, failed, skipped, timed out, not run.
    A test the alarm cannot stop (a hang in C code, a submission that catches the timeout) is stopped
    from outside GRACE seconds past its limit, and pytest runs again on the tests left."""
    results, todo, why_not = {}, list(ids), "not collected"
    with open(os.path.join(folder, "_grading_plugin.py"), "w") as f:
        f.write(PLUGIN)
    with tempfile.TemporaryDirectory() as tmp:
        log_path, out_path = os.path.join(tmp, "log.jsonl"), os.path.join(tmp, "out.txt")
        run_env = {**env, "GRADE_TEST_LIMIT": str(test_limit), "GRADE_LOG": log_path,
                   "PYTHONPATH": os.pathsep.join([folder] + [p for p in [env.get("PYTHONPATH")] if p])}
        while todo:
            if time.time() >= deadline:
                why_not = "the grading reached its overall time limit before this test ran"
                break
            open(log_path, "w").close()
            with open(out_path, "w") as out:
                p = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                                      "_grading_plugin", *todo], cwd=folder, env=run_env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
            stopped = None
            while p.poll() is None:
                time.sleep(0.2)
                started = [e for e in read_log(log_path) if "started" in e]
                running = started[-1] if started else None
                done = {e["test"] for e in read_log(log_path) if e.get("when") == "teardown"}
                if running and running["started"] not in done and time.time() > running["at"] + test_limit + GRACE:
                    stopped = (running["started"], f"timed out: still running {test_limit + GRACE:g} s after it "
                               f"started (its limit is {test_limit:g} s), so it was stopped")
                elif time.time() >= deadline:
                    stopped = (running["started"] if running and running["started"] not in done else None,
                               "timed out: the grading reached its overall time limit during this test")
                if stopped:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            entries = read_log(log_path)
            progress = collect_reports(entries, results)
            if stopped and stopped[0]:
                results[stopped[0]] = ("timed out", stopped[1])
                progress = True
            errors = [f"{e['collect_error']}: {e['text']}" for e in entries if "collect_error" in e]
            started = [e["started"] for e in entries if "started" in e]
            if p.returncode not in (0, 1) and started and started[-1] not in results and not stopped:
                # the process died inside a test (a crash, or killed for memory): that test scores 0
                results[started[-1]] = ("failed", f"the test process died during this test (exit {p.returncode})")
                progress = True
            todo = [t for t in todo if t not in results]
            if todo and time.time() >= deadline:
                why_not = "the grading reached its overall time limit before this test ran"
                break
            if not progress or errors:  # nothing ran: a module that does not import, or pytest itself failed
                with open(out_path) as f:
                    tail = f.read()[-OUTPUT_CHARS:]
                why_not = "\n".join(errors) or tail or "not collected"
                break
    for t in todo:
        results[t] = ("not run", why_not)
    return results


def collect_reports(entries, results):
    """Fold the plugin's reports into results ({test id: (status, text)}); whether any test ended."""
    by_test = {}
    for e in entries:
        if "test" in e:
            by_test.setdefault(e["test"], []).append(e)
    ended = False
    for test, reports in by_test.items():
        whens = {r["when"]: r for r in reports}
        if "teardown" not in whens:  # still running when the run stopped: the caller says why
            continue
        ended = True
        bad = [r for r in reports if r["outcome"] == "failed"]
        if any(r.get("timed_out") for r in bad):
            results[test] = ("timed out", next(r["text"] for r in bad if r.get("timed_out")))
        elif bad:
            results[test] = ("failed", "\n".join(r["text"] for r in bad))
        elif any(r["outcome"] == "skipped" for r in reports):
            results[test] = ("skipped", next(r["text"] for r in reports if r["outcome"] == "skipped"))
        else:
            results[test] = ("passed", "")
    return ended


def collect(folder, env, marker, timeout=None):
    """The ids of the graded tests of one marker, as pytest prints them (tests/test_x.py::test_y[p])."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                          "-m", marker], cwd=folder, capture_output=True, text=True, env=env, timeout=timeout).stdout
    return [line.strip() for line in out.splitlines() if "::" in line]


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


def grade(source, submission, timeout=None, test_timeout=None):
    """The results.json of one submission (a dict). timeout: seconds for all of it, test_timeout: for
    one graded test (default: autograder.json's, else TOTAL_LIMIT and TEST_LIMIT)."""
    t0 = time.time()
    config = json.load(open(os.path.join(source, "autograder.json")))
    timeout = timeout or config.get("timeout", TOTAL_LIMIT)
    test_timeout = test_timeout or config.get("test_timeout", TEST_LIMIT)
    deadline = t0 + timeout
    seed = os.environ.get("NANOPAUSE_GRADE_SEED") or open(os.path.join(source, "grade_seed")).read().strip()
    env = {**os.environ, "NANOPAUSE_GRADE_SEED": seed, "PYTHONDONTWRITEBYTECODE": "1"}
    print(f"grading {', '.join(config['graded'])} with NANOPAUSE_GRADE_SEED={seed} ({test_timeout:g} s per test, "
          f"{timeout:g} s in all)")
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "handout")
        shutil.copytree(os.path.join(source, "handout"), work)
        graded = {a: collect(work, env, a.lower(), max(1, deadline - time.time()))
                  for a in config["graded"]}  # before the student's code
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
        results = run_tests(work, env, [t for ids in graded.values() for t in ids], test_timeout, deadline)
    shown = {"failed": "", "timed out": "", "skipped": "skipped, so it scores 0 (a graded test must run and pass): ",
             "not run": "did not run: "}
    tests = []
    for a, ids in graded.items():
        for test_id in ids:
            status, text = results[test_id]
            ok = status == "passed"
            tests.append({"name": f"{a}: {test_id}", "score": 1.0 if ok else 0.0, "max_score": 1.0,
                          "status": "passed" if ok else "failed", "visibility": "visible",
                          "output": "" if ok else (shown[status] + text)[-OUTPUT_CHARS:]})
    lines = notes + [f"{a}: {sum(t['score'] for t in tests if t['name'].startswith(a + ':')):.0f} of {len(ids)} "
                     f"graded tests pass" for a, ids in graded.items()]
    late = sum(status == "timed out" for status, _ in results.values())
    if late:
        lines.append(f"{late} test(s) timed out (each may take {test_timeout:g} s) and scored 0")
    return {"score": sum(t["score"] for t in tests), "execution_time": round(time.time() - t0),
            "output": "\n".join(lines), "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def write_results(path, results):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".tmp", path)


def main(argv):
    parser = argparse.ArgumentParser(description="grade one submission; write Gradescope's results.json")
    parser.add_argument("--source", default=HERE, help="the autograder's folder (autograder.json, handout/)")
    parser.add_argument("--submission", required=True, help="the student's files")
    parser.add_argument("--results", required=True, help="the results.json to write")
    parser.add_argument("--timeout", type=float, help=f"seconds for all the grading (default: autograder.json's, "
                        f"else {TOTAL_LIMIT})")
    parser.add_argument("--test-timeout", type=float, help=f"seconds for one graded test (default: "
                        f"autograder.json's, else {TEST_LIMIT})")
    args = parser.parse_args(argv)
    # a results.json from the start: if anything kills the grading, the student sees why, not nothing
    write_results(args.results, {"score": 0.0, "output": "the autograder did not finish", "tests": []})
    try:
        results = grade(args.source, args.submission, args.timeout, args.test_timeout)
    except Exception as e:  # the autograder's own failure: say so, score nothing
        results = {"score": 0.0, "output": f"the autograder failed: {type(e).__name__}: {e}", "tests": []}
        print(results["output"], file=sys.stderr)
    write_results(args.results, results)
    print(results["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
