"""The project's files import each other one way only: each file may import the files before it in
ORDER, never one after it, so there is no import circle and no script reaches into a later script.
The instruments in bench/ come last: nothing in the pipeline imports them."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ["common", "model", "decode", "pause", "downstream", "tasks", "data", "prepare", "train", "report", "eval", "study", "probe", "export",
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
