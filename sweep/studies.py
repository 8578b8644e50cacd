"""The sampling of every study, in one place: which trials a sweep spec means.

A sweep runs one Ray Tune experiment per (model, optimizer) group. Each group has a
resolved trial config (``base``) and either an Optuna sampler (lr_wd: seeded random
log-uniform; tune: seeded TPE with ASHA) or a fixed grid (optimizer, schedule studies).
Everything is checked here, before any trial starts.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from sweep.config import load_model, load_optimizer, lookup_tuned, model_spec
from sweep.errors import UserError

STUDIES = ("lr_wd", "optimizer", "schedule", "tune")
optuna.logging.set_verbosity(optuna.logging.WARNING)
METRIC, MODE = "ema_error", "min"


@dataclass
class GroupPlan:
    """One (model, optimizer) experiment of a sweep."""

    model: str
    optimizer: str
    base: dict
    num_samples: int
    space: dict[str, tuple[float, float]] = field(default_factory=dict)  # searched lr/wd
    grid: list[dict] = field(default_factory=list)  # fixed trials (lr, wd, epochs, seed)
    sampler: str = "random"  # random | tpe (searched studies)
    sampler_seed: int = 0
    epochs: int = 0
    seed: int = 0
    asha_grace: int = 1

    @property
    def name(self) -> str:
        return f"{self.model}-{self.optimizer}"

    def optuna_sampler(self) -> optuna.samplers.BaseSampler:
        if self.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=self.sampler_seed,
                                              n_startup_trials=max(2, self.num_samples // 4))
        return optuna.samplers.RandomSampler(seed=self.sampler_seed)

    def distributions(self) -> dict[str, optuna.distributions.FloatDistribution]:
        # "trial/lr" unflattens into config["trial"]["lr"], beside the fixed epochs/seed.
        return {f"trial/{k}": optuna.distributions.FloatDistribution(lo, hi, log=True)
                for k, (lo, hi) in self.space.items()}

    def searcher(self) -> Any:
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(space=self.distributions(), sampler=self.optuna_sampler(),
                            metric=METRIC, mode=MODE)

    def scheduler(self) -> Any:
        if self.sampler != "tpe":
            return None
        from ray.tune.schedulers import ASHAScheduler

        # max_t past the last epoch: ASHA must not stop a trial before its final report.
        return ASHAScheduler(time_attr="epoch", max_t=self.epochs + 1,
                             grace_period=min(self.asha_grace, self.epochs),
                             reduction_factor=3)

    def param_space(self) -> dict:
        from ray import tune

        if self.grid:
            return {"base": self.base, "trial": tune.grid_search(self.grid)}
        return {"base": self.base, "trial": {"epochs": self.epochs, "seed": self.seed}}

    def listed_trials(self) -> list[dict]:
        """The trials this group will run, as a dry run shows them. Random sampling is
        replayed with the same seeded Optuna sampler the searcher uses; TPE's points
        depend on results, so only their count is known."""
        if self.grid:
            return list(self.grid)
        if self.sampler == "tpe":
            return [{"lr": None, "wd": None, "epochs": self.epochs, "seed": self.seed}
                    for _ in range(self.num_samples)]
        study = optuna.create_study(sampler=self.optuna_sampler())
        asked = [study.ask(fixed_distributions=self.distributions()).params
                 for _ in range(self.num_samples)]
        return [{k.removeprefix("trial/"): v for k, v in params.items()}
                | {"epochs": self.epochs, "seed": self.seed} for params in asked]


def trial_config(base: dict, trial: dict) -> DictConfig:
    """A group's base config with one trial's lr, wd, epochs and seed filled in."""
    cfg = OmegaConf.create(base)
    cfg.optimizer.lr, cfg.optimizer.wd = float(trial["lr"]), float(trial["wd"])
    cfg.schedule.epochs, cfg.seed = int(trial["epochs"]), int(trial["seed"])
    return cfg


def _check_interval(lo: float, hi: float, what: str) -> tuple[float, float]:
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise UserError(
            f"{what} interval [{lo:g}, {hi:g}] is empty, inverted or not positive; "
            "give [low, high] with 0 < low < high"
        )
    return lo, hi


def group_interval(sweep: DictConfig, model: DictConfig, optimizer: str,
                   data: str) -> dict[str, tuple[float, float]]:
    """The lr/wd search interval of one group: an explicit ``sweep.interval``, else the
    model's own (the paper's Table 4 ranges), else ``sweep.scale`` × its tuned values."""
    explicit = sweep.get("interval")
    if explicit is None:
        explicit = model.get("interval", {}).get(optimizer)
    if explicit is not None:
        return {k: _check_interval(*explicit[k], f"{model.name} {optimizer} {k}")
                for k in ("lr", "wd")}
    tuned = lookup_tuned(model, optimizer, data)
    if tuned is None:
        raise UserError(
            f"model {model.name} has no tuned lr/wd and no interval for {optimizer} on "
            f"{data}; pass sweep.interval='{{lr:[lo,hi],wd:[lo,hi]}}' or run SWEEP=tune first"
        )
    lo, hi = _check_interval(*sweep.scale, "sweep.scale")
    return {k: (tuned[k] * lo, tuned[k] * hi) for k in ("lr", "wd")}


def _tuned_or_fail(model: DictConfig, optimizer: str, data: str) -> dict:
    tuned = lookup_tuned(model, optimizer, data)
    if tuned is None:
        raise UserError(
            f"model {model.name} has no tuned lr/wd for {optimizer} on {data}; "
            "run the tune study (SWEEP=tune) for it first"
        )
    return tuned


def _positive_ints(values: Any, what: str) -> list[int]:
    values = list(values) if OmegaConf.is_list(values) or isinstance(values, list) else [values]
    if not values or any(int(v) < 1 for v in values):
        raise UserError(f"{what} must be a non-empty list of integers >= 1, got {values}")
    return [int(v) for v in values]


def _base_config(cfg: DictConfig, model: DictConfig, optimizer: str) -> dict:
    trial = OmegaConf.masked_copy(cfg, ["data", "schedule", "seed", "device", "threads",
                                        "compile", "amp", "ema_horizon", "diverge_factor"])
    trial.model = model
    trial.optimizer = load_optimizer(optimizer)
    trial.threads = int(cfg.resources.cpus_per_trial)
    return OmegaConf.to_container(trial, resolve=True)


def plan_study(cfg: DictConfig) -> list[GroupPlan]:
    """Every group of the sweep, validated; raises UserError before anything runs."""
    sweep = cfg.sweep
    if sweep.study not in STUDIES:
        raise UserError(f"unknown study '{sweep.study}'; choose one of: {', '.join(STUDIES)}")
    models = list(sweep.models)
    optimizers = list(sweep.optimizers)
    if not models or not optimizers:
        raise UserError("sweep.models and sweep.optimizers must each name at least one entry")
    data = cfg.data.name
    plans = []
    for model_name, optimizer in product(models, optimizers):
        model = load_model(model_name)
        model_spec(model)  # an inconsistent architecture fails here, not in a worker
        if cfg.data.image_size % model.patch_size:
            raise UserError(f"{model_name}'s patch size {model.patch_size} does not divide "
                            f"the {data} image size {cfg.data.image_size}")
        base = _base_config(cfg, model, optimizer)
        # Same sampler seed for every model of one optimizer: ViT_P and ViT_C see the
        # same quantiles of their intervals (common random numbers sharpen the contrast).
        seed = int(sweep.get("sampler_seed", 0)) + zlib.crc32(optimizer.encode()) % 10_000
        if sweep.study in ("lr_wd", "tune"):
            n = int(sweep.n)
            if n < 1:
                raise UserError(f"sweep.n must be >= 1, got {n}")
            epochs_list = _positive_ints(sweep.epochs, "sweep.epochs")
            if len(epochs_list) != 1:
                raise UserError(f"the {sweep.study} study trains at one schedule length; got "
                                f"sweep.epochs={epochs_list} (use SWEEP=schedule for several)")
            epochs = epochs_list[0]
            space = (group_interval(sweep, model, optimizer, data) if sweep.study == "lr_wd"
                     else _search_interval(sweep, optimizer))
            plans.append(GroupPlan(
                model=model_name, optimizer=optimizer, base=base, num_samples=n, space=space,
                sampler="random" if sweep.study == "lr_wd" else "tpe", sampler_seed=seed,
                epochs=epochs, seed=int(sweep.seed), asha_grace=int(sweep.get("grace", 1)),
            ))
        else:
            tuned = _tuned_or_fail(model, optimizer, data)
            epochs_list = _positive_ints(sweep.epochs, "sweep.epochs")
            seeds = [int(s) for s in sweep.seeds]
            if not seeds:
                raise UserError("sweep.seeds must name at least one seed")
            grid = [{"lr": tuned["lr"], "wd": tuned["wd"], "epochs": e, "seed": s}
                    for e, s in product(epochs_list, seeds)]
            plans.append(GroupPlan(model=model_name, optimizer=optimizer, base=base,
                                   num_samples=1, grid=grid))
    return plans


def _search_interval(sweep: DictConfig, optimizer: str) -> dict[str, tuple[float, float]]:
    explicit = sweep.get("interval") or sweep.search.get(optimizer)
    if explicit is None:
        raise UserError(f"the tune study has no search interval for {optimizer}; pass "
                        f"sweep.interval='{{lr:[lo,hi],wd:[lo,hi]}}'")
    return {k: _check_interval(*explicit[k], f"tune {optimizer} {k}") for k in ("lr", "wd")}


def sweep_name(cfg: DictConfig) -> str:
    """Deterministic, so running the same command again finds the same sweep."""
    if cfg.sweep.get("name"):
        return str(cfg.sweep.name)
    models = "+".join(cfg.sweep.models)
    return f"{cfg.sweep.study}-{models}-{cfg.data.name}"
