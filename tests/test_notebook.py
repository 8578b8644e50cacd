"""``notebooks/stability.ipynb`` runs headless (nbclient) from the repository root and from
``notebooks/``, on a fixture results folder and on the committed example; ``make notebook``
serves JupyterLab."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from analysis import fixture, load
from analysis.errors import AnalysisError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "stability.ipynb"
EXAMPLE = ROOT / "results" / "example"


def test_notebook_is_committed_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def run_notebook(cwd: Path, results: Path | None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Execute the notebook with its kernel in ``cwd``; all printed text of its cells."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the notebook must find the repo itself
    if results is None:
        monkeypatch.delenv("VITSTAB_RESULTS", raising=False)
    else:
        monkeypatch.setenv("VITSTAB_RESULTS", str(results))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", [])]
    stderr = "\n".join(out.get("text", "") for out in outputs if out.get("name") == "stderr")
    assert "IProgress" not in stderr and "Warning" not in stderr, stderr
    return "\n".join(out.get("text", "") for out in outputs if out.get("name") == "stdout")


@pytest.mark.parametrize("cwd", [ROOT, ROOT / "notebooks"], ids=["from root", "from notebooks"])
def test_notebook_runs_headless_on_a_fixture(cwd, tmp_path, monkeypatch):
    fixture.write_example(tmp_path / "results", n_per_group=12)
    text = run_notebook(cwd, tmp_path / "results", monkeypatch)
    assert f"repository: {ROOT}" in text and str(tmp_path / "results") in text
    assert "ViT_P vs ViT_C" in text and "ViT_C vs CNN" in text and "Wilcoxon p =" in text
    assert "expected best of 8 random draws" in text and "SGD − AdamW" in text
    assert "the KS test can only detect EDF gaps of at least" in text  # what n resolves
    assert "ViT_C vs ViT_P (tiny · AdamW" in text  # a verdict per comparison
    assert "trials end with training loss at ln C" in text  # the training curves


def example_is_old_format() -> bool:
    try:
        load.read_trials(EXAMPLE / "trials.csv")
    except AnalysisError as exc:
        return "predates the study column" in str(exc)
    return False


@pytest.mark.skipif(not (EXAMPLE / "trials.csv").exists(), reason="no results/example")
@pytest.mark.skipif(example_is_old_format(), reason="results/example predates the study "
                    "column (old trials.csv format); regenerate it with `make example`")
@pytest.mark.parametrize("cwd", [ROOT, ROOT / "notebooks"], ids=["from root", "from notebooks"])
def test_notebook_runs_on_the_committed_example(cwd, monkeypatch):
    text = run_notebook(cwd, None, monkeypatch)  # the default: the repo's results/example
    assert f"results:    {EXAMPLE}" in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_notebook_serves_jupyterlab(tmp_path):
    """``make notebook NOBROWSER=1`` on a free loopback port with a token; the API answers
    with that token; the server (the process group started here) is stopped after."""
    port, token = free_port(), "vitstab-test-token"
    jupyter = Path(sys.executable).parent / "jupyter"
    args = (f"--ip=127.0.0.1 --port={port} --IdentityProvider.token={token} "
            "--ServerApp.port_retries=0" + (" --allow-root" if os.geteuid() == 0 else ""))
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path)}
    # -o: the venv stamp counts as made (tests run in the venv already); JUPYTER: its jupyter
    proc = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "notebook", "NOBROWSER=1",
                             f"JUPYTER={jupyter}", f"LAB_ARGS={args}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        status = None
        for _ in range(100):
            try:
                url = f"http://127.0.0.1:{port}/api/contents?token={token}"
                with urllib.request.urlopen(url, timeout=2) as reply:
                    status = reply.status, json.load(reply)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                time.sleep(0.25)
        assert status is not None, "JupyterLab did not answer within 25 s"
        assert status[0] == 200
        assert "stability.ipynb" in {item["name"] for item in status[1]["content"]}
        with pytest.raises(urllib.error.HTTPError):  # without the token: refused
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=2)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """End the process group this test started (make and the jupyter server under it)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass  # already gone
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
