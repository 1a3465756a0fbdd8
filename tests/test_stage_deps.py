"""Every stage's code ``deps:`` in dvc.yaml is exactly the closure of the project modules it imports.

The closure is computed from the source with ``ast``: ``import`` and ``from ... import`` statements anywhere in
a module (function-level imports included), the ``__init__.py`` of every package on the way (Python runs
them), and modules named in strings such as ``"stages.core.data.datasets.lapa:LaPaAdapter"`` (adapters loaded by
name with importlib). A directory in ``deps:`` stands for every ``.py`` file under it.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "stages"
MODULE_STRING = re.compile(rf"^({PACKAGE}(?:\.\w+)+)(?::\w+)?$")
STAGE_CMD = re.compile(rf"python -m ({PACKAGE}(?:\.\w+)+)")


def module_file(name: str, root: Path = REPO_ROOT) -> Path | None:
    """The file that defines module ``name`` (``a/b.py`` or ``a/b/__init__.py``), or None if there is none."""
    base = root.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_modules(name: str, path: Path, root: Path = REPO_ROOT) -> set[str]:
    """Names of the project modules that module ``name`` (file ``path``) imports or loads by name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(name, path).split(".")
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when one exists
            found.update(f"{base}.{alias.name}" for alias in node.names if module_file(f"{base}.{alias.name}", root))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = MODULE_STRING.match(node.value)
            if match and module_file(match.group(1), root):
                found.add(match.group(1))
    return {m for m in found if (m == PACKAGE or m.startswith(PACKAGE + ".")) and module_file(m, root)}


def import_closure(module: str, root: Path = REPO_ROOT) -> set[str]:
    """Repository-relative paths of every project file that running ``python -m module`` executes."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages' __init__.py
        todo.extend(imported_modules(name, module_file(name, root), root))
    return {module_file(name, root).relative_to(root).as_posix() for name in seen}


def stage_definitions(root: Path = REPO_ROOT) -> dict[str, dict]:
    """``{stage name: definition}`` from dvc.yaml; a ``foreach`` stage contributes its ``do`` body."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return {name: body.get("do", body) for name, body in stages.items()}


def declared_code(deps: list, root: Path = REPO_ROOT) -> set[str]:
    """The ``.py`` files that the ``deps:`` entries under the package cover."""
    files: set[str] = set()
    for dep in deps:
        dep = str(dep).rstrip("/")
        if not (dep == PACKAGE or dep.startswith(PACKAGE + "/")):
            continue
        path = root / dep
        if path.is_dir():
            files.update(p.relative_to(root).as_posix() for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        else:
            files.add(dep)
    return files


def dependency_problems(name: str, body: dict, root: Path = REPO_ROOT) -> list[str]:
    """What is wrong with stage ``name``'s code deps, one line per file; empty when they are exact."""
    match = STAGE_CMD.search(str(body["cmd"]))
    if not match:
        return [f"stage {name!r}: cmd {body['cmd']!r} does not run a module of the {PACKAGE} package"]
    needed = import_closure(match.group(1), root)
    declared = declared_code(body.get("deps", []), root)
    problems = [f"stage {name!r}: {path} is imported but missing from deps" for path in sorted(needed - declared)]
    problems += [f"stage {name!r}: deps lists {path}, which the stage never imports"
                 for path in sorted(declared - needed)]
    for dep in body.get("deps", []):
        if str(dep).startswith(PACKAGE + "/") and not (root / str(dep)).exists():
            problems.append(f"stage {name!r}: deps lists {dep}, which does not exist")
    return problems


@pytest.mark.parametrize("stage", sorted(stage_definitions()))
def test_stage_code_deps_are_the_import_closure(stage):
    body = stage_definitions()[stage]
    problems = dependency_problems(stage, body)
    expected = sorted(import_closure(STAGE_CMD.search(body["cmd"]).group(1)))
    assert not problems, "\n".join(problems) + "\nthe code deps should be:\n" + "\n".join(f"  - {p}" for p in expected)


# --- the check itself must catch what it is for ---------------------------------------------------------------

def _tiny_project(tmp_path: Path, deps: list[str]) -> Path:
    files = {
        "stages/__init__.py": "",
        "stages/core/__init__.py": "",
        "stages/core/a.py": "from stages.core import b\n",
        "stages/core/b.py": "def f():\n    from stages.core.c import g  # a function-level import counts too\n",
        "stages/core/c.py": "ADAPTERS = {'x': 'stages.core.plugins.x:X'}\n",
        "stages/core/plugins/__init__.py": "",
        "stages/core/plugins/x.py": "from . import y\n",
        "stages/core/plugins/y.py": "",
        "stages/core/unused.py": "",
        "stages/run.py": "from stages.core.a import *\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"run": {"cmd": "python -m stages.run", "deps": deps}}}))
    return tmp_path


CLOSURE = ["stages/__init__.py", "stages/run.py", "stages/core/__init__.py", "stages/core/a.py", "stages/core/b.py",
           "stages/core/c.py", "stages/core/plugins"]


def test_closure_follows_packages_function_imports_relative_imports_and_names(tmp_path):
    root = _tiny_project(tmp_path, CLOSURE)
    assert import_closure("stages.run", root) == {
        "stages/__init__.py", "stages/run.py", "stages/core/__init__.py", "stages/core/a.py", "stages/core/b.py",
        "stages/core/c.py", "stages/core/plugins/__init__.py", "stages/core/plugins/x.py", "stages/core/plugins/y.py"}
    assert dependency_problems("run", stage_definitions(root)["run"], root) == []


def test_a_missing_dep_is_named_with_its_stage(tmp_path):
    root = _tiny_project(tmp_path, [d for d in CLOSURE if d != "stages/core/c.py"])
    assert dependency_problems("run", stage_definitions(root)["run"], root) == [
        "stage 'run': stages/core/c.py is imported but missing from deps"]


def test_an_unused_dep_is_named_with_its_stage(tmp_path):
    root = _tiny_project(tmp_path, [*CLOSURE, "stages/core/unused.py"])
    assert dependency_problems("run", stage_definitions(root)["run"], root) == [
        "stage 'run': deps lists stages/core/unused.py, which the stage never imports"]


def test_a_directory_dep_covering_an_unused_file_is_refused(tmp_path):
    root = _tiny_project(tmp_path, ["stages"])
    assert dependency_problems("run", stage_definitions(root)["run"], root) == [
        "stage 'run': deps lists stages/core/unused.py, which the stage never imports"]
