"""The two layers stay two: nothing in the engine imports Ray, Optuna or the driver,
and no library function grows past about 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = [*(ROOT / "sweep" / d for d in ("engine", "models", "data")),
          *(ROOT / "sweep" / f for f in ("train.py", "complexity.py", "errors.py",
                                          "columns.py", "checks.py"))]
FORBIDDEN = ("ray", "optuna", "sweep.driver")
MAX_LINES = 60


def python_files(paths: list[Path]) -> list[Path]:
    return [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_engine_imports_no_ray_optuna_or_driver():
    bad = []
    for path in python_files(ENGINE):
        for name in imported(ast.parse(path.read_text())):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, bad


def test_engine_trains_a_trial_with_ray_and_optuna_unimportable(cli, tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    for name in ("ray", "optuna"):
        (blocker / f"{name}.py").write_text(f"raise ImportError('{name} is blocked')\n")
    cli("sweep.train", "data.train_size=128", "data.test_size=64", "data.batch_size=64",
        "schedule.epochs=1", "optimizer.lr=0.01", "optimizer.wd=0.05", "threads=1",
        f"out={tmp_path / 'run'}", env={"PYTHONPATH": f"{blocker}:{ROOT}"})
    assert (tmp_path / "run" / "result.json").exists()


def test_no_library_function_over_60_lines():
    long = []
    for path in python_files([ROOT / "sweep", ROOT / "analysis"]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, long
