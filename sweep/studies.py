"""The sampling of every study, in one place: which trials a sweep spec means.

A sweep is made of (model, optimizer) groups, each with a resolved trial config
(``base``). Trials come from an Optuna sampler inside Ray Tune (lr_wd: seeded random
log-uniform; tune: seeded TPE with ASHA) or from a fixed grid (optimizer and schedule
studies at the tuned lr/wd). Everything is checked here, before any trial starts.
"""

from __future__ import annotations

import math
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
class Group:
    """One (model, optimizer) of a sweep: its trial config and what varies in its trials."""

    model: str
    optimizer: str
    base: dict
    space: dict[str, tuple[float, float]] = field(default_factory=dict)  # searched lr/wd
    grid: list[dict] = field(default_factory=list)  # fixed trials (lr, wd, epochs, seed)
    epochs: int = 0
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.model}-{self.optimizer}"


class LrWdSpace:
    """Optuna define-by-run space over several groups: trial k belongs to group k mod G,
    so the groups fill up evenly and run side by side; its lr and wd are log-uniform in
    that group's interval."""

    def __init__(self, groups: list[Group]) -> None:
        self.groups = [(g.base, g.space, g.epochs, g.seed) for g in groups]

    def __call__(self, trial: optuna.Trial) -> dict:
        base, space, epochs, seed = self.groups[trial.number % len(self.groups)]
        # "trial/lr" unflattens into config["trial"]["lr"], beside epochs and seed.
        values = {f"trial/{k}": trial.suggest_float(f"trial/{k}", lo, hi, log=True)
                  for k, (lo, hi) in space.items()}
        return {"base": base, **values, "trial/epochs": epochs, "trial/seed": seed}


@dataclass
class Experiment:
    """One Ray Tune experiment (one Tuner). Random and grid studies put every group in
    one, so no slot idles at a group's end; the tune study runs one per group, since TPE
    must not model several models' errors as one."""

    name: str
    groups: list[Group]
    sampler: str  # random | tpe | grid
    n: int = 1  # sampled trials per group
    sampler_seed: int = 0
    asha_grace: int = 1

    @property
    def num_samples(self) -> int:
        return 1 if self.sampler == "grid" else self.n * len(self.groups)

    @property
    def num_trials(self) -> int:
        return sum(len(g.grid) for g in self.groups) if self.sampler == "grid" \
            else self.num_samples

    def optuna_sampler(self) -> optuna.samplers.BaseSampler:
        if self.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=self.sampler_seed,
                                              n_startup_trials=max(2, self.n // 4))
        return optuna.samplers.RandomSampler(seed=self.sampler_seed)

    def searcher(self) -> Any:
        if self.sampler == "grid":
            return None
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(space=LrWdSpace(self.groups), sampler=self.optuna_sampler(),
                            metric=METRIC, mode=MODE)

    def scheduler(self) -> Any:
        if self.sampler != "tpe":
            return None
        from ray.tune.schedulers import ASHAScheduler

        epochs = self.groups[0].epochs
        # max_t past the last epoch: ASHA must not stop a trial before its final report.
        return ASHAScheduler(time_attr="epoch", max_t=epochs + 1,
                             grace_period=min(self.asha_grace, epochs), reduction_factor=3)

    def param_space(self) -> dict:
        if self.sampler != "grid":
            return {}  # the searcher's define-by-run space fills the whole config
        from ray import tune

        return {"spec": tune.grid_search([{"base": g.base, "trial": t}
                                          for g in self.groups for t in g.grid])}

    def listed_trials(self) -> list[tuple[Group, dict]]:
        """The trials a dry run shows. Random sampling is replayed through the same
        seeded sampler and space the searcher uses; TPE's points depend on results."""
        if self.sampler == "grid":
            return [(g, t) for g in self.groups for t in g.grid]
        if self.sampler == "tpe":
            g = self.groups[0]
            return [(g, {"lr": None, "wd": None, "epochs": g.epochs, "seed": g.seed})] * self.n
        study = optuna.create_study(sampler=self.optuna_sampler())
        space = LrWdSpace(self.groups)
        out = []
        for _ in range(self.num_samples):
            trial = study.ask()
            values = space(trial)
            out.append((self.groups[trial.number % len(self.groups)],
                        {k.removeprefix("trial/"): v for k, v in values.items() if k != "base"}))
        return out


def trial_parts(config: dict) -> tuple[dict, dict]:
    """(base config, trial values) of a Ray trial's config, whichever study made it."""
    spec = config.get("spec", config)
    return spec["base"], spec["trial"]


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
                                        "compile", "amp", "ema_horizon", "diverge_factor",
                                        "keep_weights"])
    trial.model = model
    trial.optimizer = load_optimizer(optimizer)
    trial.threads = int(cfg.resources.cpus_per_trial)
    return OmegaConf.to_container(trial, resolve=True)


def plan_study(cfg: DictConfig) -> list[Experiment]:
    """Every experiment of the sweep, validated; raises UserError before anything runs."""
    sweep = cfg.sweep
    if sweep.study not in STUDIES:
        raise UserError(f"unknown study '{sweep.study}'; choose one of: {', '.join(STUDIES)}")
    models = list(sweep.models)
    optimizers = list(sweep.optimizers)
    if not models or not optimizers:
        raise UserError("sweep.models and sweep.optimizers must each name at least one entry")
    data = cfg.data.name
    sampled = sweep.study in ("lr_wd", "tune")
    if sampled:
        n = int(sweep.n)
        if n < 1:
            raise UserError(f"sweep.n must be >= 1, got {n}")
        epochs_list = _positive_ints(sweep.epochs, "sweep.epochs")
        if len(epochs_list) != 1:
            raise UserError(f"the {sweep.study} study trains at one schedule length; got "
                            f"sweep.epochs={epochs_list} (use SWEEP=schedule for several)")
    else:
        epochs_list = _positive_ints(sweep.epochs, "sweep.epochs")
        seeds = [int(s) for s in sweep.seeds]
        if not seeds:
            raise UserError("sweep.seeds must name at least one seed")
    groups = []
    for model_name, optimizer in product(models, optimizers):
        model = load_model(model_name)
        model_spec(model)  # an inconsistent architecture fails here, not in a worker
        if cfg.data.image_size % model.patch_size:
            raise UserError(f"{model_name}'s patch size {model.patch_size} does not divide "
                            f"the {data} image size {cfg.data.image_size}")
        group = Group(model=model_name, optimizer=optimizer,
                      base=_base_config(cfg, model, optimizer))
        if sweep.study == "lr_wd":
            group.space = group_interval(sweep, model, optimizer, data)
        elif sweep.study == "tune":
            group.space = _search_interval(sweep, optimizer)
        else:
            tuned = _tuned_or_fail(model, optimizer, data)
            group.grid = [{"lr": tuned["lr"], "wd": tuned["wd"], "epochs": e, "seed": s}
                          for e, s in product(epochs_list, seeds)]
        if sampled:
            group.epochs, group.seed = epochs_list[0], int(sweep.seed)
        groups.append(group)
    if sweep.study == "lr_wd":
        return [Experiment(name="lr_wd", groups=groups, sampler="random", n=n,
                           sampler_seed=int(sweep.sampler_seed))]
    if sweep.study == "tune":
        return [Experiment(name=g.name, groups=[g], sampler="tpe", n=n,
                           sampler_seed=int(sweep.sampler_seed),
                           asha_grace=int(sweep.grace)) for g in groups]
    return [Experiment(name=sweep.study, groups=groups, sampler="grid")]


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
