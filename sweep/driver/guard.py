"""What keeps a sweep driver safe: one driver per sweep folder (a lock the OS releases
when the driver dies), signals that end it with one line and a resumable state, a bounded
wait for a cluster that is not there, and resource requests a cluster can satisfy."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from omegaconf import DictConfig

from sweep.errors import UserError

LOCK = ".lock"
LOG = "vitstab"  # the driver's own log records: driver.log only, like Ray's
CONNECT_TIMEOUT_S = 10.0

_held: list = []  # open lock files, kept for the life of the process


def lock_sweep(folder: Path) -> None:
    """Hold ``folder/.lock`` (flock) until this process ends; a second driver on the same
    sweep is refused with one line naming the first. The lock file is opened without
    truncation, so a refused driver changes nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    f = os.fdopen(fd, "r+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = f.read().strip() or "another process"
        f.close()
        raise UserError(f"sweep {folder} is already being run by {holder}; wait for it to "
                        "end (or stop it) and run the same command again") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    _held.append(f)


# --- signals ---------------------------------------------------------------------------

_received: list[int] = []


def _on_signal(signum: int, frame) -> None:
    if _received:  # a second signal while shutting down: stop at once
        os._exit(128 + _received[0])
    _received.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def catch_signals():
    """SIGINT and SIGTERM raise KeyboardInterrupt in the driver (enter after ``ray.init``,
    which installs its own SIGTERM handler); Tune's own SIGINT handler is turned off so
    Tune neither prints its restore hint nor returns a half-finished experiment as done.
    The previous handlers come back on exit."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    _received.clear()
    before = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def interrupt_status() -> int:
    """The exit status of an interrupted driver: 128 + the signal (130 for Ctrl-C)."""
    return 128 + (_received[0] if _received else signal.SIGINT)


# --- the cluster -----------------------------------------------------------------------

def probe_address(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in bounded time, with one line, when nothing listens at HOST:PORT (Ray itself
    retries the GCS connection for minutes)."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"ray.address={address} is not HOST:PORT (or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(f"no Ray cluster answers at ray.address={address} "
                        f"({e.strerror or e}); start one with `ray start --head` or fix "
                        "the address") from e


def check_resources(resources: DictConfig, workers: int = 1) -> None:
    """Refuse, before any trial, a per-trial request no node of the cluster can hold (it
    would wait forever)."""
    import ray

    want = {"CPU": float(resources.cpus_per_trial) * workers,
            "GPU": float(resources.gpus_per_trial)}
    for key, value in want.items():
        if value < 0:
            raise UserError(f"resources.{key.lower()}s_per_trial must be >= 0, got {value:g}")
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if any(all(node.get(k, 0.0) >= v for k, v in want.items() if v > 0) for node in nodes):
        return
    most = {k: max((node.get(k, 0.0) for node in nodes), default=0.0) for k in want}
    raise UserError(
        f"no node of the Ray cluster can run a trial: each needs {want['CPU']:g} CPU and "
        f"{want['GPU']:g} GPU, the largest node has {most['CPU']:g} CPU and "
        f"{most['GPU']:g} GPU; lower resources.cpus_per_trial / resources.gpus_per_trial")


@contextlib.contextmanager
def logs_to(path: Path):
    """Ray's logging, warnings and its processes' output (everything written to file
    descriptor 2) go to ``path``; the driver's own lines (``sys.stderr``) stay on the
    terminal. Restored on exit."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    saved_stderr = sys.stderr
    log = open(path, "a", buffering=1)
    os.dup2(log.fileno(), 2)
    sys.stderr = os.fdopen(os.dup(saved_fd), "w", buffering=1)
    logging.captureWarnings(True)
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(n) for n in ("ray", "py.warnings", LOG)]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield
    finally:
        gc.collect()  # Ray objects whose __del__ complains, while the log still listens
        for lg in loggers:
            lg.removeHandler(handler)
        logging.captureWarnings(False)
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = saved_stderr
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        log.close()


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- trial failures ----------------------------------------------------------------------

_errors: dict[str, BaseException | None] = {}  # each trial's latest error, by trial id


def no_retry_for_user_errors() -> None:
    """A ``UserError`` in a trial (a corrupt checkpoint, a bad image) fails the same way
    every time: Tune must not retry it. Ray 2.60's FailureConfig retries every error, so
    the trial's ``should_recover`` is told about the error it just had."""
    from ray.exceptions import RayTaskError
    from ray.tune.experiment.trial import Trial

    if getattr(Trial.should_recover, "_vitstab", False):
        return
    handle_error, should_recover = Trial.handle_error, Trial.should_recover

    def remember(self, exc=None):
        _errors[self.trial_id] = exc
        return handle_error(self, exc)

    def recover(self):
        exc = _errors.get(self.trial_id)
        if isinstance(exc, RayTaskError) and isinstance(exc.cause, UserError):
            return False
        return should_recover(self)

    recover._vitstab = True
    Trial.handle_error, Trial.should_recover = remember, recover


def cause(error_text: str) -> str:
    """The last exception line of a Ray error text (its traceback goes to the log)."""
    lines = [ln.strip() for ln in error_text.splitlines()
             if ln.strip() and not ln.startswith((" ", "\t")) and ": " in ln]
    line = lines[-1] if lines else (error_text.strip().splitlines() or ["unknown error"])[-1]
    return line.removeprefix("sweep.errors.")


def failure_lines():
    """A Tune callback: one line per failed or retried trial on the terminal."""
    from ray.tune import Callback

    class FailureLines(Callback):
        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            say(f"trial {trial.trial_id}: {_last_error(trial)}; retrying from its last "
                f"checkpoint (details in driver.log)")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            say(f"failed: trial {trial.trial_id}: {_last_error(trial)}")

    return FailureLines()


def _last_error(trial) -> str:
    exc = _errors.get(trial.trial_id)
    if exc is not None and getattr(exc, "cause", None) is not None:
        return f"{type(exc.cause).__name__}: {str(exc.cause).splitlines()[0]}"
    if exc is not None:
        return cause(str(exc))
    return "error"
