"""Run a stability study over a Ray cluster: ``python -m sweep.run [overrides]``.

    python -m sweep.run                                    # the demo: lr_wd, mini pair, synthetic
    python -m sweep.run +experiment=fmnist-lr_wd           # a committed study (conf/experiment)
    python -m sweep.run sweep=optimizer 'sweep.models=[vitp_4gf,vitc_4gf]' data.root=...
    python -m sweep.run dry_run=true                       # list trials and compute, run nothing

A sweep of the paper's models gets the paper's protocol (``preset=paper``), one of the
CPU-scale models the demo (``preset=demo``), unless ``preset=`` or an experiment says
otherwise. Running the same command again resumes: finished trials are kept, unfinished
ones go on from their last epoch, errored ones are retried; a larger ``sweep.n`` adds
samples.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from sweep.checks import check_sweep_folder, check_writable, listify_overrides
from sweep.driver import guard, record, trackers
from sweep.driver.plan import finished_line, print_plan, train_images
from sweep.driver.studies import plan_study, sweep_name
from sweep.engine.config import compose, load_model
from sweep.errors import UserError

# What a sweep sets itself: given on its command line they would be ignored, so they are
# refused, each with the key that does the job.
SET_BY_THE_SWEEP = {
    "model": "the sweep's models are sweep.models=[...] (make sweep MODEL=a,b)",
    "optimizer": "the sweep's optimizers are sweep.optimizers=[...] (OPTIMIZER=adamw,sgd)",
    "optimizer.lr": "the study sets each trial's lr: use sweep.interval=... or tuned=...",
    "optimizer.wd": "the study sets each trial's wd: use sweep.interval=... or tuned=...",
    "threads": "a sweep trial's threads are resources.cpus_per_trial",
    "out": "a sweep writes under results=<folder>/<sweep name>",
}


def refuse_ignored(overrides: list[str]) -> None:
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        why = SET_BY_THE_SWEEP.get(key)
        if why:
            raise UserError(f"{key}= does not apply to a sweep: {why}")


def model_preset(cfg: DictConfig) -> str:
    """The preset the sweep's models ask for; they must agree."""
    presets = {load_model(name).preset for name in cfg.sweep.models}
    if len(presets) > 1:
        raise UserError(f"sweep.models mix models made for different protocols "
                        f"({', '.join(sorted(presets))}); pass preset=demo|paper|none")
    return presets.pop() if presets else "none"


def _given(overrides: list[str], key: str) -> bool:
    return any(o.split("=", 1)[0].lstrip("+~") == key for o in overrides)


def compose_sweep(overrides: list[str]) -> DictConfig:
    """The sweep config, with the models' preset unless ``preset=`` or an experiment
    (``+experiment=``, which is a whole protocol) was given. A dataset named on the
    command line keeps the demo preset off (its sizes are the synthetic set's)."""
    overrides = listify_overrides(overrides)
    refuse_ignored(overrides)
    cfg = compose("run", overrides)
    if _given(overrides, "preset") or _given(overrides, "experiment"):
        return cfg
    preset = model_preset(cfg)
    if preset == "demo" and _given(overrides, "data"):
        preset = "none"
    return compose("run", [f"preset={preset}", *overrides]) if preset != "none" else cfg


def data_root_line(cfg: DictConfig) -> str | None:
    """Why a real run of this sweep cannot start yet: a dataset read from disk without
    its folder (a dry run still plans it)."""
    if cfg.data.name == "synthetic" or cfg.data.get("root"):
        return None
    return (f"data.root is not set: {'+'.join(cfg.sweep.models)} trains on {cfg.data.name}; "
            f"a real run needs data.root=/path/to/{cfg.data.name} (or VITSTAB_DATA); the CPU "
            "demo needs none: make sweep, no MODEL")


def prepare(cfg: DictConfig) -> tuple[str, Path, list[int], list]:
    """Everything a sweep checks before it writes: its folder, resume state and plan."""
    name = sweep_name(cfg)
    folder = Path(cfg.results).resolve() / name
    check_writable(Path(cfg.results), "results")
    starts = record.sample_starts(cfg, folder)
    return name, folder, starts, plan_study(cfg, starts=starts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sweep=optimizer")
    args = parser.parse_args(argv)
    try:
        cfg = compose_sweep(args.overrides)
        name, folder, starts, experiments = prepare(cfg)
        missing = data_root_line(cfg)
        if cfg.dry_run:
            print_plan(experiments, cfg, name)
            for line in (finished_line(experiments, folder), missing):
                if line:
                    print(f"note: {line}")
            return 0
        if missing:
            raise UserError(missing)
        trackers.check(cfg)  # a tracker asked for but not installed: one line, nothing run
        train_images(cfg.data, strict=True)  # a missing or malformed dataset fails here, once
        guard.probe_address(cfg.ray.address)
        check_sweep_folder(folder)  # before the lock: a folder that turned read-only
        guard.lock_sweep(folder)  # held until this process ends
        record.save(cfg, folder, starts)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before any trial started; nothing to resume", file=sys.stderr)
        return 130
    from sweep.driver.runner import run_sweep

    return run_sweep(cfg, experiments, name, folder)


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Ray objects left for interpreter teardown print "Exception ignored in __del__"
    # tracebacks on the terminal; Ray is shut down already, so skip the teardown.
    os._exit(status)
