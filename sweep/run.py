"""Run a stability study over a Ray cluster: ``python -m sweep.run [overrides]``.

    python -m sweep.run                                    # the demo: lr_wd, tiny pair, synthetic
    python -m sweep.run sweep=optimizer 'sweep.models=[vitp_4gf,vitc_4gf]' data.root=...
    python -m sweep.run dry_run=true                       # list trials and compute, run nothing

A sweep of the paper's models gets the paper's protocol (``preset=paper``), one of the
CPU-scale models the demo (``preset=demo``), unless ``preset=`` says otherwise. Running
the same command again resumes: finished trials are kept, unfinished ones go on from
their last epoch, errored ones are retried; a larger ``sweep.n`` adds samples.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from sweep.checks import check_sweep, listify_overrides
from sweep.driver import guard, spec, trackers
from sweep.driver.plan import print_plan, train_images
from sweep.driver.studies import plan_study, sweep_name
from sweep.engine.config import compose, load_model
from sweep.errors import UserError


def model_preset(cfg: DictConfig) -> str:
    """The preset the sweep's models ask for; they must agree."""
    presets = {load_model(name).preset for name in cfg.sweep.models}
    if len(presets) > 1:
        raise UserError(f"sweep.models mix models made for different protocols "
                        f"({', '.join(sorted(presets))}); pass preset=demo|paper|none")
    return presets.pop() if presets else "none"


def compose_sweep(overrides: list[str]) -> DictConfig:
    """The sweep config, with the models' preset unless ``preset=`` was given. A dataset
    named on the command line keeps the demo preset off (its sizes are the synthetic
    set's)."""
    overrides = listify_overrides(overrides)
    cfg = compose("run", overrides)
    if any(o.split("=", 1)[0].lstrip("+") == "preset" for o in overrides):
        return cfg
    preset = model_preset(cfg)
    if preset == "demo" and any(o.split("=", 1)[0] == "data" for o in overrides):
        preset = "none"
    return compose("run", [f"preset={preset}", *overrides]) if preset != "none" else cfg


def require_data_root(cfg: DictConfig) -> None:
    """A dataset read from disk needs its folder, even for a dry run: a paper-model plan
    without data is not the sweep that would run."""
    if cfg.data.name != "synthetic" and not cfg.data.get("root"):
        raise UserError(
            f"data.root is not set: {'+'.join(cfg.sweep.models)} trains on {cfg.data.name} at "
            f"{cfg.data.image_size} px; pass data.root=/path/to/{cfg.data.name} (or set "
            "VITSTAB_DATA), or run the CPU demo (the tiny pair on synthetic data): "
            "make sweep, no MODEL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sweep=optimizer")
    args = parser.parse_args(argv)
    try:
        cfg = compose_sweep(args.overrides)
        check_sweep(cfg)
        require_data_root(cfg)
        name = sweep_name(cfg)
        folder = Path(cfg.results).resolve() / name
        starts = spec.sample_starts(cfg, folder)
        experiments = plan_study(cfg, starts=starts)
        if cfg.dry_run:
            print_plan(experiments, cfg, name)
            return 0
        trackers.check(cfg)  # a tracker asked for but not installed: one line, nothing run
        train_images(cfg.data, strict=True)  # a missing or malformed dataset fails here, once
        guard.probe_address(cfg.ray.address)
        guard.lock_sweep(folder)  # held until this process ends
        spec.save(cfg, folder, starts)
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
