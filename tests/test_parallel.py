"""Gradient accumulation (data.micro_batch) and data-parallel trials (DDP over gloo on the
CPU): both must compute the full-batch step."""

from __future__ import annotations

import json

import pytest
import torch

from sweep.engine import checkpoint
from sweep.engine.config import compose
from sweep.engine.distributed import run_parallel, trial_workers
from sweep.engine.trainer import build, micro_batches, run_trial, train_epoch
from sweep.errors import UserError

ONE_STEP = ["model=vitp_tiny", "data.train_size=64", "data.test_size=32",
            "data.batch_size=64", "schedule.epochs=1", "threads=1"]


def _one_step_params(*extra: str) -> dict[str, torch.Tensor]:
    trial = build(compose("train", [*ONE_STEP, *extra]), lr=0.02, wd=0.05)
    assert train_epoch(trial, 0) is not None  # 64 images, batch 64: one optimizer step
    return {k: v.detach().clone() for k, v in trial.model.state_dict().items()}


def test_accumulated_micro_batches_equal_the_full_batch_step():
    full = _one_step_params()
    accumulated = _one_step_params("data.micro_batch=16")  # 4 micro-batches
    start = build(compose("train", ONE_STEP), lr=0.02, wd=0.05).model.state_dict()
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
    with pytest.raises(UserError):
        trial_workers({"gpus_per_trial": 1.5})


SMALL = ["model=vitp_tiny", "data.train_size=256", "data.test_size=64", "data.batch_size=64",
         "data.micro_batch=32", "schedule.epochs=1", "threads=1", "keep_weights=true"]


def test_two_gloo_workers_equal_one_worker_accumulating(tmp_path):
    cfg = compose("train", SMALL)
    one = run_trial(cfg, lr=0.02, wd=0.05, workdir=tmp_path / "one", log=None)
    two = run_parallel(cfg, lr=0.02, wd=0.05, workdir=tmp_path / "two", world=2, log=None)
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


def test_sweep_of_two_data_parallel_trials(cli, tmp_path):
    """Two trials of two gloo workers each, through `python -m sweep.run`; each trial's
    result is the one-process result of the same micro-batches accumulated."""
    import pandas as pd

    cli("sweep.run", "data.train_size=256", "data.test_size=64", "data.batch_size=64",
        "ray.num_cpus=4", "ray.object_store_memory=100000000", "analyze=false",
        f"results={tmp_path}", "sweep.models=[vitp_tiny]", "sweep.optimizers=[adamw]",
        "sweep.n=2", "schedule.epochs=1", "sweep.name=ddp", "resources.workers_per_trial=2",
        "sweep.interval={lr:[1e-3,1e-1],wd:[0.01,0.5]}")
    trials = pd.read_csv(tmp_path / "ddp" / "trials.csv")
    assert len(trials) == 2 and (trials.status == "done").all()
    row = trials.iloc[0]
    cfg = compose("train", ["model=vitp_tiny", "data.train_size=256", "data.test_size=64",
                            "data.batch_size=64", "data.micro_batch=32", "schedule.epochs=1",
                            "threads=1"])
    one = run_trial(cfg, lr=float(row.lr), wd=float(row.wd), workdir=tmp_path / "one",
                    log=None)
    assert row.ema_error == pytest.approx(one["ema_error"])
    assert row.error == pytest.approx(one["error"])
