"""The project's files import each other one way only: each file may import the files before it in
ORDER, never one after it, so there is no import circle and no script reaches into a later script.
The instruments in bench/ come last: nothing in the pipeline imports them."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ["common", "model", "decode", "pause", "downstream", "tasks", "data", "prepare", "train", "report", "eval", "study", "probe", "export", "harness",
         "bench.shared", "bench.repro", "bench.speed", "bench.head", "bench.gpu"]


def project_imports(name):
    tree = ast.parse(open(os.path.join(ROOT, name.replace(".", os.sep) + ".py")).read())
    found = set()
    for node in ast.walk(tree):  # late imports inside functions count too
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names} | {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, node.module.split(".")[0]}
    return found & set(ORDER)


def test_every_python_file_of_the_project_is_in_the_order():
    files = {f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")}
    files |= {f"bench.{f[:-3]}" for f in os.listdir(os.path.join(ROOT, "bench")) if f.endswith(".py")}
    assert files == set(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_imports_run_one_way(name):
    later = {m for m in project_imports(name) if ORDER.index(m) >= ORDER.index(name)}
    assert not later, f"{name} imports {sorted(later)}, which come after it"


def test_the_core_path_never_imports_the_optional_packages():
    """transformers and lm-eval (requirements-hf.txt) are for export.py and harness.py only: training,
    evaluation and the course kit import neither, so they run where only requirements.txt is installed."""
    import subprocess
    import sys
    code = ("import sys, train, eval, study, probe, report, course.autograder\n"
            "print(sorted(m for m in ('transformers', 'lm_eval', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
