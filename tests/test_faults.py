"""Faults and bad input, through the real commands: one clear line, a non-zero exit, and
nothing lost or written. Sweeps here are tiny (256 images, 1-2 epochs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import INTERVAL, ROOT, TEST_SWEEP, kill_tree, sweep_args

SMALL = ["sweep.models=[vitc_tiny]", "sweep.optimizers=[sgd]", INTERVAL]


def _start(args: list[str], prefix: list[str] = (), **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    return subprocess.Popen([*prefix, sys.executable, "-m", "sweep.run", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **kw)


def _run(module: str, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m module args``; whatever it started is killed by pid if it overruns."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended early: {proc.communicate()[1]}")
        time.sleep(0.3)
    pytest.fail("timed out waiting for the sweep")


# --- bad input -------------------------------------------------------------------------

BAD_INPUT = [  # (override, the line's words): each fails the same way with dry_run=true
    ("cluster=ray", "ray.address is not set"),
    ("data.micro_batch=48", "data.micro_batch 48 does not divide data.batch_size 64"),
    ("resources.workers_per_trial=3 data.micro_batch=32",
     "does not split over the trial's 3 workers"),
    ("device=tpu", "device must be one of auto, cpu, cuda, got 'tpu'"),
    ("ema_update_period=0", "ema_update_period must be >= 1, got 0"),
    ("resources.cpus_per_trial=0", "resources.cpus_per_trial must be >= 1, got 0"),
    ("resources.max_concurrent=0", "resources.max_concurrent must be >= 1, got 0"),
    ("sweep.seed=1.5", "sweep.seed: Value '1.5' of type 'float' could not be converted"),
    ("sweep.sampler_seed=abc", "sweep.sampler_seed: Value 'abc'"),
    ("+model.widht=3", "unknown key model.widht"),
    ("model.width=512", "conv stem ends at width 64, not the model width 512"),
    ("optimizer.lr=0.1", "optimizer.lr= does not apply to a sweep"),
    ("threads=3", "threads= does not apply to a sweep: a sweep trial's threads are resources"),
    ("model=vitp_tiny", "model= does not apply to a sweep: the sweep's models are sweep.models"),
    ("sweep.name=../../x", "sweep.name='../../x' is not a name"),
    ("sweep.models=[vitc_tiny,vitc_tiny]", "sweep.models names vitc_tiny more than once"),
    ("sweep.n=1000000000", "sweep.n=1000000000 would plan 1,000,000,000 trials"),
    ("sweep.n=nan", "sweep.n: Value 'nan'"),
    ("sweep.n=abc", "sweep.n: Value 'abc'"),
    ("sweep.interval={lr:[1e-3],wd:[0.01,1]}", "sweep.interval.lr must be two numbers"),
    ("sweep.interval={lr:[1e-3,1e-2]}", "sweep.interval.wd must be two numbers"),
    ("sweep.interval={lr:[1e-3,1e-2],wd:abc}", "sweep.interval.wd must be two numbers"),
    ("threads=0", "threads= does not apply to a sweep"),
    ("seed=-1", "seed must be >= 0, got -1"),
    ("results=/proc/x", "results=/proc/x is not writable"),
    ("results=FILE", "is a file, not a folder"),
    ("+sweep.nn=3", "unknown key sweep.nn"),
    ("+nonsense=3", "unknown key nonsense"),
    ("diverge_factor=0", "diverge_factor must be > 0, got 0"),
    ("ema_horizon=-1", "ema_horizon must be >= 0, got -1"),
    ("gpu.utilization=2", "gpu.utilization must be > 0 and <= 1, got 2"),
    ("resources.gpus_per_trial=1.5", "above 1 it must be a whole number"),
]


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "real-run"])
@pytest.mark.parametrize(("override", "message"), BAD_INPUT)
def test_bad_sweep_input_is_one_line_and_writes_nothing(tmp_path, capsys, override, message,
                                                        dry):
    """In the process (no Ray starts: every case fails before); the dry run and the real
    run refuse with the same line."""
    from sweep.run import main

    if override == "results=FILE":
        (tmp_path / "file").write_text("x")
        override = f"results={tmp_path / 'file'}"
    small = SMALL[:-1] if override.startswith("sweep.interval") else SMALL
    args = [*TEST_SWEEP, f"results={tmp_path / 'out'}", *small, *override.split(),
            f"dry_run={str(dry).lower()}"]
    before = sorted(tmp_path.rglob("*"))
    status = main(args)
    err = capsys.readouterr().err
    assert status == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert sorted(tmp_path.rglob("*")) == before


def test_bad_input_from_the_command_line_has_no_traceback(tmp_path):
    proc = _run("sweep.run", sweep_args(tmp_path, *SMALL, "device=tpu"), timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: device must be one of auto, cpu, cuda, got 'tpu'"]


def test_cluster_ray_composes_and_plans(tmp_path):
    proc = _run("sweep.run", [*SMALL, f"results={tmp_path}", "cluster=ray",
                              "ray.address=10.0.0.1:6379", "dry_run=true", "sweep.n=2"])
    assert proc.returncode == 0, proc.stderr
    assert "2 trials" in proc.stdout and "1 GPU" in proc.stdout


def test_single_model_name_is_a_one_element_list(cli, tmp_path):
    out = cli("sweep.run", *sweep_args(tmp_path, "dry_run=true", "sweep.models=vitp_tiny",
                                       "sweep.optimizers=adamw", "sweep.n=2", INTERVAL)).stdout
    assert "2 trials" in out


def test_train_refuses_unwritable_out_before_training():
    proc = _run("sweep.train", ["out=/proc/x", "optimizer.lr=0.1", "optimizer.wd=0.1",
                                "data.train_size=256", "data.test_size=128"], timeout=60)
    assert proc.returncode != 0 and "out=/proc/x is not writable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "epoch" not in proc.stdout


# --- two drivers, signals, hangs ---------------------------------------------------------

def _check_ray_demands_a_token(driver: subprocess.Popen, home: Path) -> None:
    """Ray 2.60's servers bind every interface (not only loopback); the local instance
    must refuse a client without the token."""
    def gcs():
        return [p for p in psutil.Process(driver.pid).children(recursive=True)
                if p.name().startswith("gcs_server")]
    _wait_for(lambda: gcs(), driver, timeout=120)
    _wait_for(lambda: any(c.status == psutil.CONN_LISTEN
                          for c in gcs()[0].net_connections(kind="inet")), driver, timeout=60)
    port = next(c.laddr.port for c in gcs()[0].net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN)
    family = [driver.pid, *(p.pid for p in psutil.Process(driver.pid).children(recursive=True))]
    wide = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
            and c.pid in family and c.laddr.ip not in ("127.0.0.1", "::1")]
    assert any(c.laddr.port == int(port) for c in wide)  # why the token matters
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "disabled"}  # no token sent
    env.pop("RAY_AUTH_TOKEN", None)
    try:
        stranger = subprocess.run(
            [sys.executable, "-c", f"import ray; ray.init(address='127.0.0.1:{port}')"],
            env=env, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return  # still not admitted after 20 s (a busy machine: Ray retries the handshake)
    assert stranger.returncode != 0
    assert "InvalidAuthToken" in stranger.stderr, stranger.stderr[-2000:]


def test_second_driver_on_the_same_sweep_is_refused(tmp_path):
    args = sweep_args(tmp_path, *SMALL, "sweep.n=1", "schedule.epochs=4", "sweep.name=lock")
    lock = tmp_path / "lock" / ".lock"
    first = _start(args)
    try:
        _wait_for(lambda: lock.exists() and "pid" in lock.read_text()
                  and (tmp_path / "lock" / "config.yaml").exists(), first, timeout=120)
        config = (tmp_path / "lock" / "config.yaml").read_bytes()
        second = _run("sweep.run", args, timeout=120)
        assert second.returncode != 0
        assert f"already being run by pid {first.pid} on" in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert (tmp_path / "lock" / "config.yaml").read_bytes() == config
        assert lock.read_text().startswith(f"pid {first.pid} on")  # still the first's
        _check_ray_demands_a_token(first, tmp_path / "home")
    finally:
        kill_tree(first)


def _interrupt(driver: subprocess.Popen, folder: Path, sig: int, rows: int) -> str:
    """Send ``sig`` once curves.csv has more than ``rows`` rows; the driver's stderr."""
    try:
        _wait_for(lambda: (folder / "curves.csv").exists()
                  and len(pd.read_csv(folder / "curves.csv")) > rows, driver)
        if sig == signal.SIGINT:
            os.killpg(driver.pid, sig)  # Ctrl-C reaches the terminal's process group
        else:
            driver.send_signal(sig)
        _, err = driver.communicate(timeout=120)
    finally:
        kill_tree(driver)
    assert driver.returncode == 128 + sig, err
    assert f"interrupted: results so far are in {folder}" in err, err
    assert "Tuner.restore" not in err and "Traceback" not in err, err
    return err


def _obeying_file_modes() -> list[str] | None:
    """A command prefix under which this user's writes obey file modes: none needed for
    a plain user; root drops the capabilities that let it write anywhere (None: it
    cannot here)."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else None


def _turn_read_only(args: list[str], folder: Path, prefix: list[str]) -> None:
    """chmod -R a-w on the sweep folder once it has one more epoch: the writer, Ray's
    state and the trial all fail, and the driver ends with one line naming the folder and
    the fix; so does the next start, touching nothing. Then writable again."""
    line = (f"error: the sweep folder {folder} is not writable (Permission denied); make it "
            f"writable again (chmod -R u+w {folder}) and run the same command to resume")
    rows = len(pd.read_csv(folder / "curves.csv"))
    driver = _start(args, prefix=prefix)
    try:
        _wait_for(lambda: len(pd.read_csv(folder / "curves.csv")) > rows, driver)
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        _, err = driver.communicate(timeout=300)
    finally:
        kill_tree(driver)
    assert driver.returncode == 2, err
    assert "Traceback" not in err and [ln for ln in err.splitlines()
                                       if ln.startswith("error")] == [line], err
    assert len(err.strip().splitlines()) <= 5, err  # the sweep's line, progress, the error
    curves = (folder / "curves.csv").read_bytes()
    again = subprocess.run([*prefix, sys.executable, "-m", "sweep.run", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and again.stderr.strip() == line, again.stderr
    assert (folder / "curves.csv").read_bytes() == curves
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)


def test_interrupt_ends_with_one_line_and_the_same_command_resumes(tmp_path, ray_cluster):
    """One sweep stopped three ways, each with one line: Ctrl-C, then SIGTERM on the
    resumed sweep (status 128 + signal, no analysis), then its folder turning read-only
    (where root can drop its override, see _obeying_file_modes); the same command (here
    joining the shared Ray instance) finishes every trial with each epoch once."""
    args = sweep_args(tmp_path, *SMALL, "sweep.n=2", "schedule.epochs=4", "sweep.name=intr",
                      "analyze=true", "logger=[]")
    folder = tmp_path / "intr"
    _interrupt(_start(args), folder, signal.SIGINT, rows=0)
    assert not (folder / "analysis").exists()
    before = len(pd.read_csv(folder / "curves.csv"))
    _interrupt(_start(args), folder, signal.SIGTERM, rows=before)
    assert not (folder / "analysis").exists()
    prefix = _obeying_file_modes()
    if prefix is not None:
        _turn_read_only(args, folder, prefix)
    resumed = _run("sweep.run", [*args, "analyze=false", ray_cluster], timeout=400)
    assert resumed.returncode == 0, resumed.stderr
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 2 and (trials.status == "done").all()
    curves = pd.read_csv(folder / "curves.csv")
    assert len(curves) == 8 and not curves.duplicated(["trial_id", "epoch"]).any()


@pytest.mark.parametrize(("error", "tries", "words"), [
    (Exception("The current node timed out during startup. This could happen because some "
               "of the raylet failed to startup or the GCS has become overloaded."), 3,
     "3 tries: this machine is too busy for it now"),
    (ValueError("The configured object store size (1 GB) exceeds /dev/shm size"), 1,
     "ValueError: The configured object store size"),
])
def test_ray_that_does_not_start_is_one_line_and_rerunning_resumes(tmp_path, capfd,
                                                                   monkeypatch, error, tries,
                                                                   words):
    """In the process, with ray.init failing as it does on a busy machine: a start-up
    timeout is tried again (Ray waits a fixed 30 s for its raylet), then one line; other
    errors at once. The sweep's record is kept, so the same command resumes."""
    import ray

    from sweep.driver import guard
    from sweep.run import main

    calls = []

    def fail(*args, **kwargs):
        calls.append(kwargs.get("address"))
        raise error

    monkeypatch.setattr(ray, "init", fail)
    monkeypatch.setattr(guard, "_held", [])
    status = main(sweep_args(tmp_path, *SMALL, "sweep.n=1", "schedule.epochs=1",
                             "sweep.name=start"))
    err = capfd.readouterr().err
    assert status == 2 and calls == ["local"] * tries, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith(
        "error: Ray did not start on this machine ("), err
    assert words in err and err.strip().endswith(
        "nothing of the sweep is lost: run the same command again to resume"), err
    folder = tmp_path / "start"
    assert (folder / "config.yaml").exists() and not (folder / "trials.csv").exists()
    assert "Ray start-up failed" in (folder / "driver.log").read_text()  # the traceback
    for f in guard._held:
        f.close()  # the lock, as the process's end would release it


def test_unreachable_cluster_fails_fast(tmp_path):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.time()
    proc = _run("sweep.run", sweep_args(tmp_path, *SMALL, "cluster=ray",
                                        f"ray.address=127.0.0.1:{port}"), timeout=60)
    assert time.time() - started < 30
    assert proc.returncode != 0 and f"no Ray cluster answers at ray.address=127.0.0.1:{port}" \
        in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("request_", ["resources.cpus_per_trial=100",
                                      "resources.gpus_per_trial=1"])
def test_impossible_trial_resources_fail_before_any_trial(tmp_path, request_, ray_cluster):
    if request_.endswith("gpus_per_trial=1"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    proc = _run("sweep.run", sweep_args(tmp_path, *SMALL, "sweep.n=1", "schedule.epochs=1",
                                        "sweep.name=res", request_, ray_cluster), timeout=120)
    assert proc.returncode != 0 and "no node of the Ray cluster can run a trial" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "res" / "trials.csv").exists()


# --- checkpoints: leftovers, modes, untrusted pickles ------------------------------------

class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "pwned"))


def test_malicious_checkpoint_is_refused_and_not_executed(tmp_path):
    import torch

    out, marker = tmp_path / "run", tmp_path / "pwned"
    out.mkdir()
    torch.save({"epoch": 1, "result": None, "x": _Evil(str(marker))}, out / "checkpoint.pt")
    proc = _run("sweep.train", [f"out={out}", "optimizer.lr=0.1", "optimizer.wd=0.1",
                                "data.train_size=256", "data.test_size=128",
                                "schedule.epochs=1"], timeout=120)
    assert proc.returncode != 0
    assert "holds objects other than tensors and plain values" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not marker.exists()


def _zip_of_text() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "not a checkpoint")
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["garbage", "empty", "cut short", "another zip"])
def test_damaged_checkpoint_is_called_corrupt_with_the_fix(tmp_path, damage):
    """Not "holds objects other than tensors" (the refusal of a pickle that names code):
    a damaged file is corrupt, and deleting it restarts the trial."""
    import torch

    from sweep.engine import checkpoint
    from sweep.errors import UserError

    path = tmp_path / checkpoint.CHECKPOINT
    checkpoint.save(path, {"epoch": 1, "w": torch.ones(4096)})
    whole = path.read_bytes()
    path.write_bytes({"garbage": b"\x80\x02garbage, not a checkpoint", "empty": b"",
                      "cut short": whole[: len(whole) // 2],
                      "another zip": _zip_of_text()}[damage])
    with pytest.raises(UserError) as e:
        checkpoint.load(path)
    line = str(e.value)
    assert f"checkpoint {path} is corrupt" in line and "other than tensors" not in line
    assert line.endswith("delete it and the trial restarts from scratch")


def test_results_respect_the_umask(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        ["sh", "-c", f"umask 022 && exec {sys.executable} -m sweep.train out={out} "
         "optimizer.lr=0.1 optimizer.wd=0.1 data.train_size=256 data.test_size=128 "
         "schedule.epochs=1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("result.json", "checkpoint.pt"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_half_written_checkpoint_never_reaches_rays_copy(tmp_path):
    from ray import tune

    from sweep.driver.trainable import _handoff

    work = tmp_path / "trial" / "work"
    work.mkdir(parents=True)
    (work / "checkpoint.pt").write_bytes(b"whole")
    (work / ".checkpoint.pt.abc123.tmp").write_bytes(b"half")
    folder = _handoff(work / "checkpoint.pt")
    with tune.Checkpoint.from_directory(str(folder)).as_directory() as d:
        assert sorted(p.name for p in Path(d).iterdir()) == ["checkpoint.pt"]


# --- trial errors ------------------------------------------------------------------------

def test_deterministic_trial_error_is_one_line_and_not_retried(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VITSTAB_TEST_FAULT": "corrupt_checkpoint"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.run",
         *sweep_args(tmp_path, *SMALL, "sweep.n=1", "schedule.epochs=1", "sweep.name=bad")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        kill_tree(proc)
    assert proc.returncode == 1, err
    failed = [ln for ln in err.splitlines() if ln.startswith("failed: trial")]
    assert len(failed) == 1 and "checkpoint" in failed[0] and "is corrupt" in failed[0], err
    assert "retrying" not in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) < 15, err
    errors = list((tmp_path / "bad" / "ray").glob("*/*/error.txt"))
    assert len(errors) == 1 and errors[0].read_text().count("Failure #") == 1
    assert "Traceback" not in err and (tmp_path / "bad" / "driver.log").exists()


# --- the results table comes back from Ray's experiment state ----------------------------

def test_deleted_rows_and_files_are_rebuilt_without_retraining(tmp_path, ray_cluster):
    args = sweep_args(tmp_path, *SMALL, "sweep.n=2", "schedule.epochs=1", "sweep.name=re",
                      ray_cluster)
    folder = tmp_path / "re"
    first = _run("sweep.run", args, timeout=400)
    assert first.returncode == 0, first.stderr
    trials, curves = (folder / "trials.csv").read_text(), (folder / "curves.csv").read_text()
    assert (folder / "trials.csv").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert not list((folder / "ray").rglob("*.tmp"))
    lines = trials.splitlines()
    (folder / "trials.csv").write_text("\n".join(lines[:-1]) + "\n")  # one row gone
    again = _run("sweep.run", args, timeout=400)
    assert again.returncode == 0, again.stderr
    assert "restored from Ray's experiment state: 1 trials.csv rows" in again.stderr
    assert (folder / "trials.csv").read_text() == trials
    assert (folder / "curves.csv").read_text() == curves  # nothing retrained
    (folder / "curves.csv").unlink()
    (folder / "trials.csv").unlink()
    third = _run("sweep.run", args, timeout=400)
    assert third.returncode == 0, third.stderr
    assert "2 trials.csv rows" in third.stderr and "curves.csv rows of 2 trials" in third.stderr
    assert (folder / "trials.csv").read_text() == trials
    assert (folder / "curves.csv").read_text() == curves


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_killed_worker_is_one_line_and_the_trial_recovers(tmp_path):
    args = sweep_args(tmp_path, *SMALL, "sweep.n=1", "schedule.epochs=3", "sweep.name=dead")
    folder = tmp_path / "dead"
    driver = _start(args)
    try:
        _wait_for(lambda: (folder / "curves.csv").exists()
                  and len(pd.read_csv(folder / "curves.csv")) >= 1, driver)
        workers = [p for p in psutil.Process(driver.pid).children(recursive=True)
                   if "ImplicitFunc" in " ".join(p.cmdline())]
        assert workers
        workers[0].kill()
        _, err = driver.communicate(timeout=300)
    finally:
        kill_tree(driver)
    assert driver.returncode == 0, err
    assert len([ln for ln in err.splitlines() if "retrying from its last checkpoint" in ln]) == 1
    assert "Traceback" not in err, err
    assert sum("ActorDiedError" in ln for ln in err.splitlines()) <= 1, err
    assert len(err.strip().splitlines()) < 15, err
    assert sorted(pd.read_csv(folder / "curves.csv").epoch) == [1, 2, 3]
