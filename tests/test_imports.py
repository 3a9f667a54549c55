"""The project's files import each other one way only: each file may import the files before it in
ORDER, never one after it, so there is no import circle and no script reaches into a later script."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ["common", "model", "pause", "downstream", "tasks", "data", "prepare", "train", "eval", "study", "bench"]


def project_imports(name):
    tree = ast.parse(open(os.path.join(ROOT, f"{name}.py")).read())
    found = set()
    for node in ast.walk(tree):  # late imports inside functions count too
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ORDER)


def test_every_python_file_of_the_project_is_in_the_order():
    files = {f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")}
    assert files == set(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_imports_run_one_way(name):
    later = {m for m in project_imports(name) if ORDER.index(m) >= ORDER.index(name)}
    assert not later, f"{name}.py imports {sorted(later)}, which come after it"
