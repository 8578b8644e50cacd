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

# A sweep as the tests run it: conf/preset/test.yaml (256 images, Ray on 2 CPUs, no
# analysis); an explicit interval, so no test depends on tuned values.
TEST_SWEEP = ["preset=test"]
INTERVAL = "sweep.interval={lr:[1e-3,1e-1],wd:[0.01,0.5]}"


def sweep_args(results: Path, *extra: str) -> list[str]:
    """``python -m sweep.run`` arguments of a test sweep writing under ``results``."""
    return [*TEST_SWEEP, f"results={results}", *extra]


# The shared Ray instance: `init_ray` as a sweep starts it (its start-up retries), in a
# process of its own that prints the address and lives until its stdin closes.
RAY_HOST = """
import sys
from omegaconf import OmegaConf
import ray
from sweep.driver.runner import init_ray
init_ray(OmegaConf.create({"ray": {"address": None, "num_cpus": 2, "num_gpus": 0,
                                    "object_store_memory": 100_000_000}}))
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


def pytest_configure(config: pytest.Config) -> None:
    """Ray's token, made once before any xdist worker starts (two workers starting their
    first Ray instances at once would each write ~/.ray/auth_token, and a driver joining
    one of them could read the other's), and token mode for the whole session: a driver
    joining a cluster sends the token only when told to, and Ray fixes a process's mode
    the first time it reads it, so a test that starts a cluster in the process (the
    loopback pair) must not find the mode unset by whatever test ran before it there."""
    token = Path.home() / ".ray" / "auth_token"
    if not hasattr(config, "workerinput") and not token.exists():
        subprocess.run([str(Path(sys.executable).parent / "ray"), "get-auth-token",
                        "--generate"], capture_output=True, check=True, timeout=120)
    os.environ["RAY_AUTH_MODE"] = "token"


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """``ray.address=HOST:PORT`` of one local Ray instance (2 CPUs) shared by the sweeps
    whose check does not depend on the driver starting Ray itself (signals, killed
    drivers and workers, the token, environment passed to trials do): a sweep that joins
    it skips Ray's start-up, the slowest part of a small sweep on a busy machine."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    log = tmp_path_factory.mktemp("ray-host") / "stderr.txt"
    with open(log, "w") as err:
        host = subprocess.Popen([sys.executable, "-c", RAY_HOST], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                text=True, start_new_session=True)
    try:
        address = host.stdout.readline().strip()
        if not address:
            pytest.fail(f"the shared Ray instance did not start (exit {host.wait()}): "
                        f"{log.read_text()[-2000:]}")
        yield f"ray.address={address}"  # joined in token mode (pytest_configure)
    finally:
        try:
            host.stdin.close()
            host.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        kill_tree(host)


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
