"""Shared helpers: run the project's real commands as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_yaml(which: str, model: dict | None = None, **over: object) -> dict:
    """``conf/data/<which>.yaml`` resolved as a trial of ``model`` composes it (the data
    serves the model's resolution: 32 px unless ``model`` says otherwise), without its
    defaults list, with ``over`` set."""
    from omegaconf import OmegaConf

    raw = OmegaConf.load(ROOT / "conf" / "data" / f"{which}.yaml")
    raw.pop("defaults", None)
    model = {"image_size": 32, "test_image_size": None, **(model or {})}
    cfg = OmegaConf.to_container(OmegaConf.create({"model": model, "data": raw}),
                                 resolve=True)["data"]
    cfg.update(over)
    return cfg


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m <args>`` in a subprocess; returns the completed process."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


def kill_tree(proc: subprocess.Popen, *, group: bool = False) -> list[psutil.Process]:
    """SIGKILL a command and every process it started (Ray's agents included), by pid;
    ``group``: its process group first, all at once, as a crash would. Returns the
    children it killed."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if group and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    for p in [psutil.Process(proc.pid), *family] if proc.poll() is None else family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)
    psutil.wait_procs(family, timeout=30)
    return family
