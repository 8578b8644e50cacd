"""Data-parallel trials: one trial trained by N workers on one machine (N GPUs, or N CPU
processes for testing), with ``torch.distributed`` (nccl on GPUs, gloo on the CPU).

The calling process is rank 0: it trains, writes the checkpoints, logs and reports (so
inside a Ray Tune trial, ``tune.report`` runs where Tune expects it). Ranks 1..N-1 are
``python -m sweep.engine.distributed SPEC RANK`` subprocesses it starts and ends by pid;
each exits by itself when rank 0's process goes away. Every rank draws the same
(seed, epoch)-determined batch and trains its micro-batches r, r + N, ... of it
(``trainer.micro_batches``), so N workers compute the step one worker accumulating the
same micro-batches would, and a resumed trial goes on exactly as before. The workers
learn their trial from ``ddp.json`` in the trial's work folder (``WORKER_FILE``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import distributed as dist

from sweep.engine.trainer import Log, OnEpoch, resolve_device, run_trial

WORKER_FILE = "ddp.json"  # the trial config and rendezvous a worker starts from
READY = "ddp.ready"  # ddp.ready.<rank>: a worker imported and is about to join
STARTUP_S = 600  # how long rank 0 waits for its workers to start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _init(rank: int, world: int, port: int, device: str) -> None:
    cuda = resolve_device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(rank)  # the trial's GPUs are the visible ones, in rank order
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world, timeout=timedelta(minutes=30))


def run_parallel(cfg: DictConfig, *, workdir: Path, world: int,
                 on_epoch: OnEpoch | None = None, log: Log = print) -> dict:
    """``run_trial`` over ``world`` workers; this process is rank 0."""
    if world <= 1:
        return run_trial(cfg, workdir=workdir, on_epoch=on_epoch, log=log)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    spec = workdir / WORKER_FILE
    spec.write_text(json.dumps({"cfg": OmegaConf.to_container(cfg, resolve=True),
                                "workdir": str(workdir), "world": world,
                                "port": port, "parent": os.getpid()}))
    for old in workdir.glob(f"{READY}.*"):
        old.unlink()
    # The workers import this very package, wherever the trial's working directory is
    # (Ray Tune runs a trial in its trial folder).
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    children = [subprocess.Popen([sys.executable, "-m", "sweep.engine.distributed", str(spec),
                                  str(rank)], env=env, cwd=root)
                for rank in range(1, world)]
    try:
        _wait_ready(children, workdir)
        _init(0, world, port, cfg.device)
        try:
            return run_trial(cfg, workdir=workdir, on_epoch=on_epoch, log=log, rank=0,
                             world=world)
        finally:
            dist.destroy_process_group()
    except BaseException:
        for child in children:  # a failed or interrupted rank 0 ends its workers now
            child.kill()
        raise
    finally:
        for child in children:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_ready(children: list[subprocess.Popen], workdir: Path) -> None:
    """Wait until every worker has started, failing at once when one exits instead (the
    process group's rendezvous would wait for it for its whole timeout)."""
    deadline = time.monotonic() + STARTUP_S
    while True:
        for rank, child in enumerate(children, start=1):
            if child.poll() is not None:
                raise RuntimeError(f"data-parallel worker {rank} exited with status "
                                   f"{child.returncode} before joining (its stderr is the "
                                   "trial's)")
        if all((workdir / f"{READY}.{r}").exists() for r in range(1, len(children) + 1)):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"data-parallel workers did not start in {STARTUP_S} s")
        time.sleep(0.2)


def _exit_with_parent(parent: int) -> None:
    """A worker whose rank 0 died (a killed trial) must not wait on it for 30 minutes."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def worker_main(spec_path: str, rank: int) -> int:
    spec = json.loads(Path(spec_path).read_text())
    _exit_with_parent(int(spec["parent"]))
    cfg = OmegaConf.create(spec["cfg"])
    (Path(spec["workdir"]) / f"{READY}.{rank}").touch()
    _init(rank, int(spec["world"]), int(spec["port"]), cfg.device)
    try:
        run_trial(cfg, workdir=Path(spec["workdir"]), log=None, rank=rank,
                  world=int(spec["world"]))
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1], int(sys.argv[2])))
