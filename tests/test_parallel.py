"""Gradient accumulation (data.micro_batch) and data-parallel trials (DDP over gloo on the
CPU): both must compute the full-batch step, and a data-parallel trial whose sweep driver
is killed must resume exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
from conftest import INTERVAL, ROOT, kill_tree, sweep_args

from sweep.driver import payload
from sweep.engine import checkpoint
from sweep.engine.config import compose
from sweep.engine.distributed import run_parallel
from sweep.engine.schema import ResourcesConfig, trial_workers, typed
from sweep.engine.trainer import build, micro_batches, run_trial, train_epoch
from sweep.errors import UserError

ONE_STEP = ["model=vitp_tiny", "data.train_size=64", "data.test_size=32",
            "data.batch_size=64", "schedule.epochs=1", "threads=1", "optimizer.lr=0.02",
            "optimizer.wd=0.05"]


def _one_step_params(*extra: str) -> dict[str, torch.Tensor]:
    trial = build(compose("train", [*ONE_STEP, *extra]))
    assert train_epoch(trial, 0) is not None  # 64 images, batch 64: one optimizer step
    return {k: v.detach().clone() for k, v in trial.model.state_dict().items()}


def test_accumulated_micro_batches_equal_the_full_batch_step():
    full = _one_step_params()
    accumulated = _one_step_params("data.micro_batch=16")  # 4 micro-batches
    start = build(compose("train", ONE_STEP)).model.state_dict()
    moved = 0
    for k, v in full.items():
        torch.testing.assert_close(accumulated[k], v, rtol=1e-5, atol=1e-6)
        moved += int(not torch.equal(v, start[k]))
    assert moved > 0  # the step did change the weights


def test_micro_batches_split_by_rank():
    assert micro_batches(8, None) == [slice(0, 8)]
    assert micro_batches(8, 2) == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    assert micro_batches(8, 2, rank=1, world=2) == [slice(2, 4), slice(6, 8)]
    assert micro_batches(8, None, rank=1, world=2) == [slice(4, 8)]
    with pytest.raises(UserError, match="micro-batches"):
        micro_batches(8, 3)
    with pytest.raises(UserError, match="micro-batches"):
        micro_batches(8, 4, world=4)


def test_trial_workers():
    assert trial_workers({"gpus_per_trial": 0.25}) == 1
    assert trial_workers({"gpus_per_trial": 1}) == 1
    assert trial_workers({"gpus_per_trial": 4}) == 4
    assert trial_workers({"gpus_per_trial": 0, "workers_per_trial": 2}) == 2
    with pytest.raises(UserError, match="above 1 it must be a whole number"):
        typed(ResourcesConfig, {"gpus_per_trial": 1.5}, "resources")
    with pytest.raises(UserError, match="disagree"):
        typed(ResourcesConfig, {"gpus_per_trial": 4, "workers_per_trial": 2}, "resources")


SMALL = ["model=vitp_tiny", "optimizer.lr=0.02", "optimizer.wd=0.05", "data.train_size=256",
         "data.test_size=64", "data.batch_size=64", "data.micro_batch=32", "schedule.epochs=1",
         "threads=1", "keep_weights=true"]


def test_two_gloo_workers_equal_one_worker_accumulating(tmp_path):
    cfg = compose("train", SMALL)
    one = run_trial(cfg, workdir=tmp_path / "one", log=None)
    two = run_parallel(cfg, workdir=tmp_path / "two", world=2, log=None)
    for key in ("error", "ema_error", "best_error", "diverged"):
        assert two[key] == pytest.approx(one[key]), key
    assert two["history"][0]["train_loss"] == pytest.approx(one["history"][0]["train_loss"],
                                                            rel=1e-5)
    a = checkpoint.load(tmp_path / "one" / checkpoint.CHECKPOINT)
    b = checkpoint.load(tmp_path / "two" / checkpoint.CHECKPOINT)
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-4, atol=1e-5)
    for k, v in a["ema"].items():
        torch.testing.assert_close(b["ema"][k], v, rtol=1e-4, atol=1e-5)
    json.dumps(two["history"])  # plain data, as results.json needs


def test_sweep_of_two_data_parallel_trials(cli, tmp_path, ray_cluster):
    """Two trials of two gloo workers each, through `python -m sweep.run` (on the shared
    Ray instance); each trial's result is the one-process result of the same
    micro-batches accumulated."""
    cli("sweep.run", *sweep_args(tmp_path, ray_cluster, "data.test_size=64",
                                 "sweep.models=[vitp_tiny]", "sweep.optimizers=[adamw]",
                                 "sweep.n=2", "schedule.epochs=1", "sweep.name=ddp",
                                 "resources.workers_per_trial=2", INTERVAL))
    trials = pd.read_csv(tmp_path / "ddp" / "trials.csv")
    assert len(trials) == 2 and (trials.status == "done").all()
    row = trials.iloc[0]
    cfg = compose("train", ["model=vitp_tiny", "data.train_size=256", "data.test_size=64",
                            "data.batch_size=64", "data.micro_batch=32", "schedule.epochs=1",
                            "threads=1", f"optimizer.lr={float(row.lr)!r}",
                            f"optimizer.wd={float(row.wd)!r}"])
    one = run_trial(cfg, workdir=tmp_path / "one", log=None)
    assert row.ema_error == pytest.approx(one["ema_error"])
    assert row.error == pytest.approx(one["error"])



DDP_SWEEP = ["data.train_size=128", "data.test_size=64", "logger=[]",
             "sweep.models=[vitp_tiny]", "sweep.optimizers=[adamw]", "sweep.n=1",
             "schedule.epochs=2", "sweep.name=ddpkill", "resources.workers_per_trial=2",
             INTERVAL]


def _start_sweep(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "sweep.run", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _watch(driver: subprocess.Popen, ranks: dict[int, psutil.Process], until,
           timeout: float = 300) -> None:
    """Poll until ``until()`` holds, noting in ``ranks`` every data-parallel worker (rank
    1..N-1) the sweep runs; fail if the sweep ends first."""
    deadline = time.time() + timeout
    while True:
        try:
            for p in psutil.Process(driver.pid).children(recursive=True):
                if "sweep.engine.distributed" in p.cmdline():
                    ranks.setdefault(p.pid, p)
        except psutil.Error:
            pass
        if until():
            return
        if driver.poll() is not None:
            pytest.fail(f"the sweep ended early: {driver.communicate()[1][-3000:]}")
        if time.time() > deadline:
            pytest.fail("timed out waiting for the sweep")
        time.sleep(0.2)


def _reported(folder: Path) -> list[dict]:
    """The trial's epoch reports as Ray recorded them, one per trained epoch."""
    found = list(folder.glob("ray/*/*/result.json"))
    lines = found[0].read_text().splitlines() if found else []
    return [r for r in map(json.loads, lines) if not r["final"]]


def test_killed_driver_resumes_a_data_parallel_trial_exactly(tmp_path):
    """SIGKILL the driver of a sweep of 2-worker trials once an epoch is checkpointed:
    the same command finishes the trial without retraining that epoch, with exactly the
    numbers of one process accumulating the same two micro-batches, and no worker is left."""
    args = sweep_args(tmp_path, *DDP_SWEEP)
    folder, ranks = tmp_path / "ddpkill", {}
    driver = _start_sweep(args)
    try:
        _watch(driver, ranks, lambda: len(_reported(folder)) >= 1)
        family = kill_tree(driver, group=True)
    finally:
        kill_tree(driver)
    assert ranks and not [p.pid for p in family if p.is_running()]
    work = next(folder.glob("ray/*/*/work"))
    killed = checkpoint.load(work / checkpoint.CHECKPOINT)
    assert killed["result"] is None and killed["epoch"] == 1  # killed mid-trial
    again = _start_sweep(args)
    try:
        _watch(again, ranks, lambda: again.poll() is not None)
        _, err = again.communicate(timeout=60)
    finally:
        kill_tree(again)
    assert again.returncode == 0, err
    assert len(ranks) == 2  # one rank-1 worker per run of the trial ...
    assert not [pid for pid, p in ranks.items() if p.is_running()]  # ... none left running
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 1 and trials.status[0] == "done"
    reported = _reported(folder)
    assert [r["epoch"] for r in reported] == [1, 2]  # epoch 1 trained once, then epoch 2
    final = checkpoint.load(work / checkpoint.CHECKPOINT)["result"]
    assert final["history"][0] == killed["history"][0]  # its timings too: not retrained
    # The reference: one uninterrupted process accumulating the same two micro-batches.
    base, values = payload.decode(json.loads((work.parent / "params.json").read_text()))
    cfg = payload.trial_config(base, values)
    cfg.data.micro_batch = 32
    one = run_trial(cfg, workdir=tmp_path / "one", log=None)
    curves = pd.read_csv(folder / "curves.csv")
    for key in ("train_loss", "error", "ema_error"):
        expected = [h[key] for h in one["history"]]
        assert [h[key] for h in final["history"]] == expected, key
        assert [r[key] for r in reported] == list(curves[key]) == expected, key
    assert list(curves.lr) == [h["lr"] for h in one["history"]]
    for key in ("error", "ema_error", "best_error"):
        assert trials[key][0] == one[key] == final[key], key
