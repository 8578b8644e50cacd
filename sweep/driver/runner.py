"""Run a planned sweep on Ray: start or join the cluster, run each experiment with a
Tuner (restored when its folder exists, so a rerun resumes), write the tidy results, and
hand the finished sweep to the analysis."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from sweep.checks import check_sweep_folder
from sweep.driver import guard, payload, trackers
from sweep.driver.rebuild import rebuild
from sweep.driver.results import ResultsWriter, counts, read_csv
from sweep.driver.studies import METRIC, MODE, Experiment
from sweep.engine import tuned
from sweep.errors import UserError

# Ray 2.60 waits a fixed 30 s for its raylet to register (node.py, not configurable); on
# a busy machine that fails now and then ("The current node timed out during startup"),
# so a local start gets this many tries. The GCS port's wait is configurable: 120 s.
START_TRIES = 3
GCS_PORT_WAIT_S = "120"


def init_ray(cfg: DictConfig) -> None:
    """Join ``ray.address`` or start a local instance; a start or join that fails is one
    ``UserError`` line saying what failed and that rerunning resumes (details in the log)."""
    import ray

    # Our progress line replaces Tune's tables; Ray still logs warnings and trial errors.
    # Snapshotting the experiment at every checkpoint is what makes resume exact.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    common = dict(log_to_driver=False, logging_level=logging.WARNING)
    resume = "nothing of the sweep is lost: run the same command again to resume"
    if cfg.ray.address:
        try:
            ray.init(address=cfg.ray.address, **common)
        except Exception as e:
            _failed_start(e)
            raise UserError(f"could not join the Ray cluster at ray.address="
                            f"{cfg.ray.address} ({_first_line(e)}); {resume}") from e
        return
    # Ray's servers listen on every interface (2.60 cannot bind them to loopback);
    # a local ray.init turns token authentication on unless RAY_AUTH_MODE says
    # otherwise (setting it here, after Ray read its config, breaks the handshake).
    if os.environ.get("RAY_AUTH_MODE", "token") != "token":
        print(f"warning: RAY_AUTH_MODE={os.environ['RAY_AUTH_MODE']}: this machine's "
              "Ray accepts work from anyone who can reach its ports", file=sys.stderr)
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", GCS_PORT_WAIT_S)
    for attempt in range(1, START_TRIES + 1):
        started = _own_processes()
        try:
            # address="local": always a new instance, never another user's cluster found
            # in /tmp/ray (ray.init's default would join it).
            ray.init(address="local", num_cpus=cfg.ray.num_cpus, num_gpus=cfg.ray.num_gpus,
                     object_store_memory=cfg.ray.object_store_memory,
                     include_dashboard=False, **common)
            return
        except Exception as e:
            _failed_start(e, leftovers_of=started)
            timed_out = isinstance(e, TimeoutError) or "timed out" in str(e).lower()
            if timed_out and attempt < START_TRIES:
                continue
            busy = f"{attempt} tries: this machine is too busy for it now; " if timed_out \
                else ""
            raise UserError(f"Ray did not start on this machine ({_first_line(e)}; {busy}"
                            f"details in driver.log); {resume}") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _own_processes() -> set[int]:
    import psutil  # Ray's own copy (ray/thirdparty_files) is on the path once ray is imported

    return {p.pid for p in psutil.Process().children(recursive=True)}


def _failed_start(e: BaseException, leftovers_of: set[int] | None = None) -> None:
    """Log the traceback (to driver.log); end what a failed local start left running
    (its GCS and raylet would load the machine the next try needs)."""
    import psutil
    import ray

    logging.getLogger(guard.LOG).error("Ray start-up failed", exc_info=e)
    ray.shutdown()
    if leftovers_of is None:
        return
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in leftovers_of]
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(left, timeout=10)


def trial_dirname(trial) -> str:
    return trial.trial_id


def run_experiment(experiment: Experiment, *, storage: str, resources: DictConfig,
                   max_retries: int, callback: ResultsWriter,
                   loggers: list | None = None) -> None:
    """One Ray Tune experiment; restored from its folder when it exists."""
    from ray import tune

    from sweep.driver.trainable import train_trial
    from sweep.engine.schema import trial_workers

    guard.no_retry_for_user_errors()
    # A data-parallel trial (workers > 1) holds cpus_per_trial per worker and its GPUs.
    workers = trial_workers(resources)
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, workers=workers),
        {"cpu": resources.cpus_per_trial * workers, "gpu": resources.gpus_per_trial})
    path = f"{storage.rstrip('/')}/{experiment.name}"
    if tune.Tuner.can_restore(path):
        restore_named_checkpoints(path)
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        param_space = untrained(experiment, callback, path)
        if param_space is None:
            return
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=METRIC, mode=MODE,
                num_samples=experiment.n if experiment.kind == "tpe" else 1,
                search_alg=experiment.searcher(), scheduler=experiment.scheduler(),
                reuse_actors=True, max_concurrent_trials=resources.max_concurrent,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=experiment.name, storage_path=storage, verbose=0,
                callbacks=[callback, guard.failure_lines(), *(loggers or [])],
                failure_config=tune.FailureConfig(max_failures=max_retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
    tuner.fit()


def restore_named_checkpoints(path: str) -> None:
    """Give back each trial the checkpoint folder its saved state names, where Ray has
    already deleted it.

    Keeping one checkpoint, Ray deletes a trial's older folder as soon as it registers the
    newer one, and saves the experiment state that names the newer one only afterwards. A
    driver stopped in between (killed, or its folder turned read-only) leaves a state that
    names a folder which is gone, and Ray then refuses to restore the trial ("does not
    exist on storage anymore"). The newer folder, which that state does not know, takes
    the old name: the trial resumes from its own ``work/checkpoint.pt`` anyway
    (``trainable``), so no epoch is lost or trained twice. Local storage only.
    """
    if "://" in path:
        return
    from ray.tune import ExperimentAnalysis

    for trial in ExperimentAnalysis(path).trials:
        named = trial.checkpoint
        if named is None or Path(named.path).exists():
            continue
        newer = sorted(Path(trial.path).glob("checkpoint_[0-9]*"))
        if newer:
            os.replace(newer[-1], named.path)


def untrained(experiment: Experiment, writer: ResultsWriter, path: str) -> dict | None:
    """The param space of an experiment that has no Ray folder (a first start, or a
    results folder carried to another machine without ``ray/``): every trial but those
    ``trials.csv`` already holds as finished, which are kept, never retrained; rows of
    its unfinished trials, whose checkpoints went with the folder, restart. None when
    nothing is left to run."""
    if experiment.kind == "tpe":
        return experiment.param_space()
    mine = set(experiment.identities())
    finished = payload.finished_identities(writer.trials.values())
    rows = {tid: payload.identity(r["model"], r["optimizer"], r)
            for tid, r in writer.trials.items()}
    writer.forget([tid for tid, key in rows.items() if key in mine and key not in finished])
    kept = sum(key in finished for key in mine)
    if kept:
        guard.say(f"{experiment.name}: no Ray state in {path}; {kept} trials finished in "
                  f"trials.csv are kept (not retrained), {len(mine) - kept} to run")
    return experiment.param_space(finished)


def save_tuned(experiments: list[Experiment], folder: Path, data: str) -> Path:
    """The best finished trial per group → ``<folder>/tuned.yaml``, kept with the study
    that measured it (the tune study, or an lr/wd study with ``sweep.save_tuned=true``);
    other studies name it with ``tuned=<folder>``."""
    rows = [r for r in read_csv(folder / "trials.csv")
            if r["status"] == "done" and str(r["diverged"]) != "True"]
    found: dict[str, dict[str, dict]] = {}
    for group in (g for e in experiments for g in e.groups):
        mine = [r for r in rows if r["model"] == group.model and r["optimizer"] == group.optimizer]
        if not mine:
            print(f"{folder.name}: no finished trial for {group.name}; nothing saved",
                  file=sys.stderr)
            continue
        best = min(mine, key=lambda r: r["best_error"])
        found.setdefault(group.model, {})[group.optimizer] = {
            "lr": float(best["lr"]), "wd": float(best["wd"]),
            "best_error": float(best["best_error"]), "epochs": int(best["epochs"]),
            "sweep": folder.name, "data": data}
    return tuned.save(folder, found)


def _slots(cfg: DictConfig) -> int:
    """How many trials run at once on the cluster Ray is connected to."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 1)
    from sweep.engine.schema import trial_workers

    per_trial = cfg.resources.cpus_per_trial * trial_workers(cfg.resources)
    slots = int(cpus // per_trial) or 1
    if cfg.resources.max_concurrent:
        slots = min(slots, int(cfg.resources.max_concurrent))
    return slots


def _unwritable(folder: Path, error: Exception) -> bool:
    """Whether the sweep stopped because its folder turned read-only (that fails the
    writer, Ray's own state and the trials at once, and Tune wraps the first error): then
    one line with the fix, the traceback to the log."""
    try:
        check_sweep_folder(folder)
    except UserError as unwritable:
        logging.getLogger(guard.LOG).error("the sweep stopped", exc_info=error)
        guard.say(f"error: {unwritable}")
        return True
    return False


def run_sweep(cfg: DictConfig, experiments: list[Experiment], name: str, folder: Path) -> int:
    """Run every experiment; the exit status is 1 when a trial failed, 130 on Ctrl-C
    (143 on SIGTERM). Ray's logs and tracebacks go to ``<folder>/driver.log``."""
    with guard.logs_to(folder / "driver.log"):
        return _run_sweep(cfg, experiments, name, folder)


def _run_sweep(cfg: DictConfig, experiments: list[Experiment], name: str, folder: Path) -> int:
    import ray

    storage = cfg.ray.storage or str(folder / "ray")
    total = sum(e.num_trials for e in experiments)
    try:
        init_ray(cfg)
        from sweep.engine.schema import trial_workers

        guard.check_resources(cfg.resources, workers=trial_workers(cfg.resources))
    except UserError as e:
        ray.shutdown()
        guard.say(f"error: {e}")
        return 2
    with guard.catch_signals():
        try:
            slots = _slots(cfg)
            # Tune queues one pending trial at a time behind a searcher unless told otherwise;
            # queue enough to fill every slot, or idle nodes wait for actors to start.
            os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(slots))
            groups = len({g.name for e in experiments for g in e.groups})
            print(f"sweep {name}: {total} trials in {groups} groups, {slots} at a time "
                  f"-> {folder}", file=sys.stderr)
            writer = ResultsWriter(folder, name, study=cfg.sweep.study, total=total,
                                   slots=slots)
            loggers = trackers.callbacks(cfg, name, folder)
            rows, curves = rebuild(writer, Path(storage))
            if rows or curves:
                guard.say(f"restored from Ray's experiment state: {len(rows)} trials.csv rows "
                          f"({', '.join(rows) or 'none'}), curves.csv rows of {len(curves)} "
                          f"trials ({', '.join(curves) or 'none'})")
            for experiment in experiments:
                if experiment.kind == "repeat":  # the draws it repeats have all ended
                    experiment.choose(read_csv(folder / "trials.csv"))
                    guard.say(f"{experiment.name}: seeds {list(experiment.seeds)} at the "
                              f"{experiment.draws} best draws of each group: "
                              f"{experiment.num_trials} trials")
                run_experiment(experiment, storage=storage, resources=cfg.resources,
                               max_retries=int(cfg.sweep.max_retries), callback=writer,
                               loggers=loggers)
            if counts(read_csv(folder / "trials.csv"))["running"]:
                raise KeyboardInterrupt  # Tune returned with trials unfinished: stopped
        except KeyboardInterrupt:
            guard.say(f"interrupted: results so far are in {folder}; run the same command "
                      "to resume")
            return guard.interrupt_status()
        except Exception as e:
            if not _unwritable(folder, e):
                raise
            return 2
        finally:
            ray.shutdown()
    c = counts(read_csv(folder / "trials.csv"))
    print(f"sweep {name}: {c['done']} done ({c['diverged']} diverged), {c['stopped']} stopped "
          f"early, {c['failed']} failed -> {folder / 'trials.csv'}")
    if cfg.sweep.study == "tune" or cfg.sweep.get("save_tuned"):
        print(f"tuned lr/wd written to {save_tuned(experiments, folder, cfg.data.name)}")
    if cfg.analyze:
        subprocess.run([sys.executable, "-m", "analysis.edf", str(folder)], check=False)
    return 1 if c["failed"] else 0
