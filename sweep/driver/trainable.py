"""The Ray Tune trainable: one trial inside a Ray worker.

It keeps its own checkpoint in the trial folder (resumed first, so a restarted sweep
never retrains a finished epoch) and also hands each epoch's checkpoint to Ray, which
copies it to the sweep's storage so a retry on another node can resume too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import ray
from ray import tune

from sweep.driver import payload
from sweep.engine import checkpoint
from sweep.engine.distributed import run_parallel


def _progress(state: dict | None) -> float:
    """How far a checkpoint got: its epoch, or infinity once it holds the final result."""
    if state is None:
        return -1
    return float("inf") if state.get("result") is not None else state["epoch"]


def _adopt_ray_checkpoint(workdir: Path) -> None:
    """Use Ray's copy when it is further along than ours (e.g. a retry on a new node)."""
    ray_ckpt = tune.get_checkpoint()
    if ray_ckpt is None:
        return
    with ray_ckpt.as_directory() as d:
        theirs = Path(d) / checkpoint.CHECKPOINT
        ours = workdir / checkpoint.CHECKPOINT
        if theirs.exists() and _progress(checkpoint.load(theirs)) > _progress(
                checkpoint.load(ours)):
            workdir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(theirs, ours)


def _handoff(ckpt: Path) -> Path:
    """A folder holding only the checkpoint (hard-linked), for Ray to copy: the work
    folder can hold a half-written ``.checkpoint.pt.*.tmp`` that must never be copied."""
    folder = ckpt.parent.parent / "handoff"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        os.link(ckpt, folder / ckpt.name)
    except OSError:
        shutil.copyfile(ckpt, folder / ckpt.name)
    return folder


def train_trial(config: dict, workers: int = 1) -> None:
    """One trial; ``workers`` > 1 trains it data-parallel (``sweep.engine.distributed``)."""
    base, values = payload.decode(config)
    cfg = payload.trial_config(base, values)
    node = {"node_id": ray.get_runtime_context().get_node_id()}  # where it ran, for audits
    workdir = Path(tune.get_context().get_trial_dir()) / "work"
    if os.environ.get("VITSTAB_TEST_FAULT") == "corrupt_checkpoint":  # tests only
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / checkpoint.CHECKPOINT).write_bytes(b"PK\x03\x04 truncated")
    _adopt_ray_checkpoint(workdir)

    def on_epoch(metrics: dict, ckpt: Path) -> None:
        tune.report({**metrics, **node, "final": False},
                    checkpoint=tune.Checkpoint.from_directory(str(_handoff(ckpt))))

    result = run_parallel(cfg, workdir=workdir, world=workers, on_epoch=on_epoch, log=None)
    result.pop("history")
    tune.report(result | node | {"epoch": result["epochs_run"], "final": True})
