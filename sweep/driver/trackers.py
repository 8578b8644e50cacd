"""Experiment trackers for a sweep (``logger=[tensorboard]``, ``[tensorboard,mlflow]``,
``[wandb]``, ``[]``): Ray Tune's own logger callbacks, and nothing else.

Tune adds CSV, JSON and TensorBoard loggers to every run unless told not to; we turn that
off (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``) and add them back ourselves: CSV and JSON
always (``result.json`` is what Tune's own analysis and audits read), TensorBoard only when
asked. MLflow writes to a SQLite store in the sweep folder (``<sweep>/mlflow/mlflow.db``)
unless ``mlflow.tracking_uri`` says otherwise; W&B runs offline, in the sweep folder, when
no ``WANDB_API_KEY`` is set.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from sweep.driver import payload
from sweep.errors import UserError

TRACKERS = {  # name -> (module it needs, pip extra, pinned package)
    "tensorboard": ("tensorboardX", None, "tensorboardX==2.6.5"),
    "mlflow": ("mlflow", "mlflow", "mlflow==3.17.2"),
    "wandb": ("wandb", "wandb", "wandb==0.31.0"),
}


def names(logger) -> list[str]:
    """``logger`` as a list of tracker names: a list, a single string, or empty."""
    if logger is None:
        return []
    if isinstance(logger, str):
        items = [s.strip() for s in logger.split(",")]
    elif isinstance(logger, (list, tuple, ListConfig)):
        items = [str(s).strip() for s in logger]
    else:
        raise UserError(f"logger must be a list of {', '.join(TRACKERS)}, got {logger!r}")
    out = []
    for name in (s.lower() for s in items if s):
        if name not in TRACKERS:
            raise UserError(f"unknown logger '{name}' (choose from {', '.join(TRACKERS)})")
        if name not in out:
            out.append(name)
    return out


def check(cfg: DictConfig) -> list[str]:
    """The trackers asked for; one line naming the install command when one is missing."""
    wanted = names(cfg.get("logger"))
    for name in wanted:
        module, extra, package = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            hint = f"pip install vitstab[{extra}]" if extra else f"pip install {package}"
            raise UserError(f"logger={name} needs the {module} package: {hint} "
                            f"(or .venv/bin/pip install {package})")
    return wanted


def _mlflow_callback(cfg: DictConfig, name: str, folder: Path):
    from mlflow.entities import Metric, Param
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.utils import flatten_dict

    class SweepMLflow(MLflowLoggerCallback):
        """One MLflow run per trial: its trial values as params, its metrics per epoch
        (step = epoch), and the final report's extra numbers once, at the last epoch."""

        def log_trial_start(self, trial) -> None:
            if trial not in self._trial_runs:
                run = self.mlflow_util.start_run(
                    tags={**self.tags, "trial_name": str(trial)}, run_name=str(trial))
                self._trial_runs[trial] = run.info.run_id
                base, spec = payload.decode(trial.config)
                params = {"model": base["model"]["name"],
                          "optimizer": base["optimizer"]["name"],
                          "data": base["data"]["name"], **spec}
                self._client().log_batch(self._trial_runs[trial], params=[
                    Param(k, str(v)) for k, v in params.items()])

        def log_trial_result(self, iteration: int, trial, result: dict) -> None:
            step = int(result.get("epoch") or iteration)
            keys = self._epoch_keys.setdefault(trial.trial_id, set())
            if result.get("final"):
                result = {k: v for k, v in result.items() if k not in keys}
            else:
                keys.update(result)
            now = int(time.time() * 1000)
            metrics = [Metric(k, float(v), now, step) for k, v in flatten_dict(result).items()
                       if isinstance(v, (int, float)) and math.isfinite(v)]
            # One batch per report: one by one, a SQLite store takes seconds per epoch.
            self._client().log_batch(self._trial_runs[trial], metrics=metrics)

        def _client(self):
            if getattr(self, "_mlflow_client", None) is None:  # one store, not one per call
                self._mlflow_client = self.mlflow_util._get_client()
            return self._mlflow_client

        def __getstate__(self) -> dict:
            return {k: v for k, v in self.__dict__.items() if k != "_mlflow_client"}

        def setup(self, *args, **kwargs) -> None:
            super().setup(*args, **kwargs)
            self._epoch_keys: dict[str, set] = {}

    uri = (cfg.get("mlflow", {}) or {}).get("tracking_uri") or default_mlflow_uri(folder)
    if uri.startswith("sqlite:"):  # artifacts next to the database, not in the cwd
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        if client.get_experiment_by_name(name) is None:
            store = (folder / "mlflow" / "artifacts").resolve()
            client.create_experiment(name, artifact_location=store.as_uri())
    return SweepMLflow(tracking_uri=uri, experiment_name=name, tags={"sweep": name})


def default_mlflow_uri(folder: Path) -> str:
    """A SQLite store in the sweep folder (MLflow 3 refuses plain file stores unless
    MLFLOW_ALLOW_FILE_STORE is set)."""
    store = (folder / "mlflow").resolve()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def _wandb_callback(cfg: DictConfig, name: str, folder: Path):
    from ray.air.integrations.wandb import WandbLoggerCallback

    opts = cfg.get("wandb", {}) or {}
    mode = opts.get("mode") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    wandb_dir = folder / "wandb"
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return WandbLoggerCallback(project=opts.get("project") or name, group=name, mode=mode,
                               dir=str(wandb_dir))


def callbacks(cfg: DictConfig, name: str, folder: Path) -> list:
    """Tune logger callbacks for ``cfg.logger`` (CSV and JSON always, for Tune itself)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    wanted = check(cfg)
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    out = [CSVLoggerCallback(), JsonLoggerCallback()]
    if "tensorboard" in wanted:
        out.append(TBXLoggerCallback())
    if "mlflow" in wanted:
        out.append(_mlflow_callback(cfg, name, folder))
    if "wandb" in wanted:
        out.append(_wandb_callback(cfg, name, folder))
    return out
