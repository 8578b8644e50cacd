"""``notebooks/stability.ipynb`` runs headless (nbmake) on a fixture results folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import fixture

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "stability.ipynb"


def test_notebook_is_committed_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.mark.parametrize("results", ["fixture", "committed example"])
def test_notebook_runs_headless(tmp_path, results):
    env = {k: v for k, v in os.environ.items() if k != "VITSTAB_RESULTS"}
    env["MPLBACKEND"] = "Agg"
    if results == "fixture":
        fixture.write_example(tmp_path / "results")
        env["VITSTAB_RESULTS"] = str(tmp_path / "results")
    else:  # the default: results/example, made by `make example`
        assert (ROOT / "results" / "example" / "trials.csv").exists()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbmake", str(NOTEBOOK), "-q", "-p",
         "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
