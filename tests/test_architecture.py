"""The shape of the code, checked: what imports what, how big functions get, what the web boot loads."""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
MAX_PARAMS, MAX_LINES = 6, 50
TASK_MODULES = {"app.jobs.training", "app.jobs.health", "app.jobs.suggestions", "app.jobs.imports", "app.jobs.networks",
                "app.jobs.ping", "app.jobs.deletes", "app.jobs.evaluations", "app.jobs.webhooks"}


def python_files(folder: Path = APP):
    return sorted(p for p in folder.rglob("*.py") if ".venv" not in p.parts)


def imported_modules(tree: ast.AST, module: str) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.rsplit(".", node.level)[0]
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_ml_library_imports_nothing_from_the_web_app():
    forbidden = ("flask", "flask_login", "flask_sqlalchemy", "sqlalchemy", "rq", "redis", "werkzeug")
    offenders = []
    for path in python_files(APP / "ml"):
        for name in imported_modules(ast.parse(path.read_text()), module_name(path)):
            if name.split(".")[0] in forbidden or (name.startswith("app.") and not name.startswith("app.ml")):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_only_the_jobs_package_and_worker_import_task_modules():
    offenders = []
    for path in python_files() + [ROOT / "worker.py"]:
        if path.is_relative_to(APP / "jobs") and path.name != "__init__.py":
            continue
        if path.name == "worker.py":
            continue
        for name in imported_modules(ast.parse(path.read_text()), module_name(path)):
            if name in TASK_MODULES:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == [], "services queue jobs with app.jobs.enqueue(KIND, ...), never by importing tasks"


def test_every_job_kind_names_a_task_function():
    from app.jobs import KINDS

    for kind in KINDS:
        module, _, func = kind.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), func)), kind


def _function_problems(path: Path) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = node.args
        params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
        params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
        where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
        if len(params) > MAX_PARAMS:
            problems.append(f"{where} takes {len(params)} parameters")
        length = node.end_lineno - node.lineno + 1
        if length > MAX_LINES:
            problems.append(f"{where} is {length} lines long")
    return problems


def test_functions_stay_small():
    problems = [p for path in python_files() for p in _function_problems(path)]
    assert problems == [], f"at most {MAX_PARAMS} parameters and {MAX_LINES} lines per function"


@pytest.mark.slow
def test_creating_the_web_app_does_not_import_torch(tmp_path):
    code = ("import sys; from app import create_app; create_app({'INSTANCE_PATH': sys.argv[1], "
            "'SECRET_KEY': 'x'}); print(sorted(m for m in ('torch', 'torchvision', 'onnxruntime', 'numpy') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
