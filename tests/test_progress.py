"""The live progress line (plain lines off a terminal, rewritten in place on one) and the
experiment trackers (``logger=[...]``), on tiny sweeps."""

from __future__ import annotations

import io
import math
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import INTERVAL, ROOT, kill_tree, sweep_args

from sweep.driver.progress import CLEAR, ProgressLine, eta_s

PAIR = [INTERVAL, "sweep.optimizers=[adamw]", "sweep.models=[vitp_tiny,vitc_tiny]"]


def _row(tid, status, *, model="vitp_tiny", best=None, epochs=2):
    return {"trial_id": tid, "status": status, "model": model, "optimizer": "adamw",
            "best_error": best, "epochs": epochs, "diverged": False}


def _curve(tid, epoch, elapsed):
    return {"trial_id": tid, "epoch": epoch, "elapsed_s": elapsed}


def test_plain_output_has_one_line_per_finished_trial_and_a_summary():
    out = io.StringIO()
    p = ProgressLine("s", total=3, slots=1, stream=out, tty=False)
    trials = [_row("a", "running"), _row("b", "running")]
    for _ in range(3):  # epochs reported, nothing finished: no line
        p.update(trials, [_curve("a", 1, 10.0)])
    trials[0] = _row("a", "done", best=40.0)
    p.update(trials, [_curve("a", 2, 20.0)])
    p.update(trials, [_curve("a", 2, 20.0), _curve("b", 1, 10.0)])
    trials[1] = _row("b", "failed")
    p.update(trials, [])  # its slot is free: the line waits for the next trial
    trials.append(_row("c", "running"))
    p.update(trials, [])
    p.summary(trials, [])
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    assert lines[0].startswith("[s] 1/3 done, 1 running, 0 failed, 0 diverged")
    assert "best vitp_tiny-adamw 40.0" in lines[0] and "ETA" in lines[0]
    assert "1 failed" in lines[1] and "1 running" in lines[1]
    assert lines[2].startswith("[s] finished: 1/3 done")


def test_plain_line_counts_the_trial_that_takes_the_freed_slot():
    """Two slots: the line for a finished trial is written once the next trial holds the
    slot (not "1 running" while two run), or after REFILL_WAIT_S without one."""
    out, now = io.StringIO(), [0.0]
    p = ProgressLine("s", total=4, slots=2, stream=out, tty=False, clock=lambda: now[0])
    trials = [_row("a", "running"), _row("b", "running")]
    p.update(trials, [])
    trials[0] = _row("a", "done", best=40.0)
    p.update(trials, [])
    assert out.getvalue() == ""
    trials.append(_row("c", "running"))
    p.update(trials, [])
    assert out.getvalue().startswith("[s] 1/4 done, 2 running")
    trials[1] = _row("b", "done", best=30.0)
    p.update(trials, [])
    now[0] = ProgressLine.REFILL_WAIT_S
    p.update(trials, [])  # no trial came for the slot in time: written anyway
    assert out.getvalue().splitlines()[1].startswith("[s] 2/4 done, 1 running")
    # Rows a killed run left as running count only up to the slots.
    assert "2 running" in p.line([_row(t, "running") for t in "xyz"], [])


def test_terminal_output_is_rewritten_in_place():
    out = io.StringIO()
    p = ProgressLine("s", total=2, slots=2, stream=out, tty=True)
    p.update([_row("a", "running")], [])
    p.update([_row("a", "running")], [_curve("a", 1, 5.0)])
    p.update([_row("a", "done", best=12.34), _row("b", "done", model="vitc_tiny", best=9.0)],
             [])
    p.summary([_row("a", "done", best=12.34), _row("b", "done", model="vitc_tiny", best=9.0)],
              [])
    text = out.getvalue()
    assert text.count(CLEAR) == 4 and text.count("\n") == 1 and text.endswith("\n")
    assert "2/2 done" in text and "vitc_tiny-adamw 9.0 vitp_tiny-adamw 12.3" in text


def test_eta_comes_from_epoch_timings_of_running_trials():
    # Nothing finished yet: 10 s/epoch; a has 3 of 4 epochs left, b 4, and one trial not
    # started 4 (the typical length): it starts when a's slot frees, so 3 + 4 epochs.
    trials = [_row("a", "running", epochs=4), _row("b", "running", epochs=4)]
    assert eta_s(trials, [_curve("a", 1, 10.0)], total=3, slots=2) == pytest.approx(70.0)
    assert math.isinf(eta_s(trials, [], total=3, slots=2))


def test_eta_of_the_last_trials_does_not_share_idle_slots():
    """One trial left, with 3 epochs to go, on 4 slots: 3 epochs of time, not 3/4; 10 of
    20 trials done on 2 slots, 10 left of 4 epochs at 10 s: 5 rounds of 40 s."""
    trials = [_row("a", "done", epochs=4), _row("b", "running", epochs=4)]
    assert eta_s(trials, [_curve("b", 1, 10.0)], total=2, slots=4) == pytest.approx(30.0)
    done = [_row(f"d{i}", "done", epochs=4) for i in range(10)]
    curves = [_curve(f"d{i}", 4, 40.0) for i in range(10)]
    assert eta_s(done, curves, total=20, slots=2) == pytest.approx(200.0)


def _sweep(results: Path, *extra: str, stderr, timeout: float = 600) -> subprocess.Popen:
    args = [sys.executable, "-m", "sweep.run", *sweep_args(results, *PAIR, *extra)]
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


def test_sweep_to_a_pipe_prints_few_lines_and_logs_every_epoch_to_mlflow(tmp_path,
                                                                         ray_cluster):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    proc = _sweep(tmp_path, "sweep.n=2", "schedule.epochs=2", "sweep.name=pipe",
                  "logger=[mlflow]", ray_cluster, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=600)
    finally:
        kill_tree(proc)
    err = err.decode()
    assert proc.returncode == 0, err
    progress = [line for line in err.splitlines() if line.startswith("[pipe] ")]
    assert 2 <= len(progress) <= 5, err  # 4 trials: at most 4 lines and a summary
    assert "\r" not in err
    assert progress[-1].startswith("[pipe] finished: 4/4 done") and "vitc_tiny-adamw" in err

    folder = tmp_path / "pipe"
    trials = pd.read_csv(folder / "trials.csv")
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pipe")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4
    names = [r.data.tags["trial_name"] for r in runs]
    assert all(sum(n.endswith(t) for n in names) == 1 for t in trials.trial_id), names
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "ema_error")
        assert [m.step for m in history] == [1, 2]
        assert run.data.params["model"] in ("vitp_tiny", "vitc_tiny")
        assert "wall_s" in run.data.metrics  # the final report's extras, once
    # Only the trackers asked for: no TensorBoard files, Tune's own JSON results kept.
    assert not list((folder / "ray").rglob("events.out.tfevents*"))
    assert len(list((folder / "ray").rglob("result.json"))) == 4


def test_sweep_on_a_terminal_rewrites_one_line_in_place(tmp_path, ray_cluster):
    master, slave = pty.openpty()
    proc = _sweep(tmp_path, "sweep.n=1", "schedule.epochs=2", "sweep.name=tty", ray_cluster,
                  stderr=slave)
    os.close(slave)
    chunks = []
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal's other side closed: the driver is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=60)
    finally:
        kill_tree(proc)
        os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text
    assert text.count(CLEAR + "[tty] ") >= 3, text
    lines_with_progress = [line for line in text.split("\n") if "[tty] " in line]
    assert len(lines_with_progress) <= 2, text  # every update rewrote the same line
    assert "2/2 done" in lines_with_progress[-1]
    # The default tracker: TensorBoard event files per trial.
    assert len(list((tmp_path / "tty" / "ray").rglob("events.out.tfevents*"))) == 2


def test_missing_tracker_is_one_line_naming_the_install(cli, tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    proc = cli("sweep.run", *sweep_args(tmp_path, *PAIR, "logger=[wandb]"), check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "pip install vitstab[wandb]" in proc.stderr
    assert not any(tmp_path.iterdir())
