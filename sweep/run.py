"""Run a stability study over a Ray cluster: ``python -m sweep.run [overrides]``.

    python -m sweep.run                                    # lr_wd study, tiny pair, synthetic
    python -m sweep.run sweep=optimizer 'sweep.models=[vitp_4gf,vitc_4gf]' data=imagenet ...
    python -m sweep.run dry_run=true                       # list trials and compute, run nothing

Running the same command again resumes: finished trials are kept, unfinished ones go on
from their last epoch, errored ones are retried.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweep.config import compose, model_spec, tuned_path
from sweep.errors import UserError
from sweep.models import ViT
from sweep.studies import METRIC, MODE, Experiment, plan_study, sweep_name

# Standard training-set sizes, for estimating compute where the files are not at hand.
KNOWN_TRAIN_SIZES = {"imagenet": 1_281_167, "cifar10": 50_000}


def train_images(cfg: DictConfig, *, strict: bool = False) -> int:
    """Training-set size, from opening the dataset as a trial will. A dry run may estimate
    a standard dataset that is not at hand; a real sweep (``strict``) must find it."""
    from sweep.data import build_data

    try:
        return build_data(cfg.data, seed=int(cfg.data.seed)).train_size
    except UserError:
        if strict or cfg.data.name not in KNOWN_TRAIN_SIZES:
            raise
        return KNOWN_TRAIN_SIZES[cfg.data.name]


def print_plan(experiments: list[Experiment], cfg: DictConfig, name: str) -> None:
    """The dry run: every trial and the compute (multiply-adds) the sweep will spend."""
    images = train_images(cfg)
    total, count = 0.0, 0
    print(f"sweep {name}: study {cfg.sweep.study}, data {cfg.data.name} ({images} train images)")
    print(f"{'group':<24} {'lr':>10} {'wd':>10} {'epochs':>6} {'seed':>4} {'PMAC':>9}")
    for experiment in experiments:
        for group, t in experiment.listed_trials():
            gf = ViT.complexity(model_spec(OmegaConf.create(group.base["model"])),
                                image_size=cfg.data.image_size,
                                num_classes=cfg.data.num_classes).flops / 1e9
            macs = 3 * gf * 1e9 * images * t["epochs"]  # forward + backward ≈ 3× forward
            total, count = total + macs, count + 1
            lr = "tpe" if t["lr"] is None else f"{t['lr']:.3g}"
            wd = "tpe" if t["wd"] is None else f"{t['wd']:.3g}"
            print(f"{group.name:<24} {lr:>10} {wd:>10} {t['epochs']:>6} {t['seed']:>4} "
                  f"{macs / 1e15:>9.4f}")
    print(f"{count} trials, {total / 1e15:.3f} PMAC of training compute (3 × forward GF × "
          "images × epochs)")


def init_ray(cfg: DictConfig) -> None:
    import ray

    # Our progress line replaces Tune's tables; Ray still logs warnings and trial errors.
    # Snapshotting the experiment at every checkpoint is what makes resume exact.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    common = dict(log_to_driver=False, logging_level=logging.WARNING)
    if cfg.ray.address:
        ray.init(address=cfg.ray.address, **common)
    else:
        ray.init(num_cpus=cfg.ray.num_cpus, num_gpus=cfg.ray.num_gpus,
                 object_store_memory=cfg.ray.object_store_memory, include_dashboard=False,
                 **common)


def trial_dirname(trial) -> str:
    return trial.trial_id


def run_experiment(experiment: Experiment, *, storage: str, cfg: DictConfig,
                   callback) -> object:
    """One Ray Tune experiment; restored from its folder when it exists."""
    from ray import tune

    from sweep.trainable import train_trial

    resources = {"cpu": cfg.resources.cpus_per_trial, "gpu": cfg.resources.gpus_per_trial}
    trainable = tune.with_resources(train_trial, resources)
    path = f"{storage.rstrip('/')}/{experiment.name}"
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=experiment.param_space(),
            tune_config=tune.TuneConfig(
                metric=METRIC, mode=MODE, num_samples=experiment.num_samples,
                search_alg=experiment.searcher(), scheduler=experiment.scheduler(),
                reuse_actors=True, max_concurrent_trials=cfg.resources.max_concurrent,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=experiment.name, storage_path=storage, callbacks=[callback], verbose=0,
                failure_config=tune.FailureConfig(max_failures=int(cfg.sweep.max_retries)),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
    return tuner.fit()


def save_tuned(experiments: list[Experiment], folder: Path, data: str) -> Path:
    """The tune study's best finished trial per group → conf/tuned/<data>.yaml."""
    import pandas as pd

    trials = pd.read_csv(folder / "trials.csv")
    done = trials[(trials.status == "done") & (trials.diverged.astype(str) != "True")]
    path = tuned_path(data)
    tuned = OmegaConf.load(path) if path.exists() else OmegaConf.create({})
    for group in (g for e in experiments for g in e.groups):
        rows = done[(done.model == group.model) & (done.optimizer == group.optimizer)]
        if rows.empty:
            print(f"tune: no finished trial for {group.name}; nothing saved", file=sys.stderr)
            continue
        best = rows.loc[rows.best_error.idxmin()]
        tuned[group.model] = tuned.get(group.model, {})
        tuned[group.model][group.optimizer] = {
            "lr": float(best.lr), "wd": float(best.wd), "best_error": float(best.best_error),
            "epochs": int(best.epochs), "sweep": folder.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(tuned, path)
    OmegaConf.save(tuned, folder / "tuned.yaml")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sweep=optimizer")
    args = parser.parse_args(argv)
    try:
        cfg = compose("run", args.overrides)
        if cfg.ray.address == "???" or OmegaConf.is_missing(cfg.ray, "address"):
            raise UserError("cluster=ray needs ray.address=HOST:PORT (or auto)")
        experiments = plan_study(cfg)
        name = sweep_name(cfg)
        folder = Path(cfg.results).resolve() / name
        if cfg.dry_run:
            print_plan(experiments, cfg, name)
            return 0
        check_same_spec(cfg, folder)
        train_images(cfg, strict=True)  # a missing or malformed dataset fails here, once
        return run_sweep(cfg, experiments, name, folder)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


# The parts of a composed config that decide what the trials are.
SPEC_KEYS = ("sweep", "data", "schedule", "seed", "ema_horizon", "diverge_factor", "amp")


def _diff(old: object, new: object, path: str = "") -> str | None:
    """The first key path where two plain configs differ, or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old} -> {new}"


def check_same_spec(cfg: DictConfig, folder: Path) -> None:
    """Resuming under a changed spec would mix two sweeps in one table: refuse it."""
    saved = folder / "config.yaml"
    if not saved.exists():
        return
    old = OmegaConf.to_container(OmegaConf.load(saved), resolve=True)
    new = OmegaConf.to_container(cfg, resolve=True)
    diff = _diff({k: old.get(k) for k in SPEC_KEYS}, {k: new.get(k) for k in SPEC_KEYS})
    if diff:
        raise UserError(f"{folder} holds a sweep with another spec ({diff}); pass "
                        "sweep.name=NEW for a new sweep, or rerun with the old settings")


def run_sweep(cfg: DictConfig, experiments: list[Experiment], name: str,
              folder: Path) -> int:
    import ray

    from sweep.results import ResultsWriter

    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, folder / "config.yaml", resolve=True)
    storage = cfg.ray.storage or str(folder / "ray")
    total = sum(e.num_trials for e in experiments)
    init_ray(cfg)
    try:
        cpus = ray.cluster_resources().get("CPU", 1)
        slots = int(cpus // cfg.resources.cpus_per_trial) or 1
        if cfg.resources.max_concurrent:
            slots = min(slots, int(cfg.resources.max_concurrent))
        # Tune queues one pending trial at a time behind a searcher unless told otherwise;
        # queue enough to fill every slot, or idle nodes wait for actors to start.
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(slots))
        groups = sum(len(e.groups) for e in experiments)
        print(f"sweep {name}: {total} trials in {groups} groups, {slots} at a time "
              f"-> {folder}", file=sys.stderr)
        writer = ResultsWriter(folder, name, total=total, slots=slots)
        for experiment in experiments:
            run_experiment(experiment, storage=storage, cfg=cfg, callback=writer)
    except KeyboardInterrupt:
        print(f"interrupted: results so far are in {folder}; run the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        ray.shutdown()
    writer = ResultsWriter(folder, name, total=total, slots=slots, quiet=True)
    counts = writer.counts()
    print(f"sweep {name}: {counts['done']} done ({counts['diverged']} diverged), "
          f"{counts['stopped']} stopped early, {counts['failed']} failed -> "
          f"{folder / 'trials.csv'}")
    if cfg.sweep.study == "tune":
        print(f"tuned lr/wd written to {save_tuned(experiments, folder, cfg.data.name)}")
    if cfg.analyze and (Path(__file__).resolve().parents[1] / "analysis" / "edf.py").exists():
        subprocess.run([sys.executable, "-m", "analysis.edf", str(folder)], check=False)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
