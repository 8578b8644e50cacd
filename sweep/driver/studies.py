"""The sampling of every study, in one place: which trials a sweep spec means.

A sweep is made of (model, optimizer) groups, each with a resolved trial config
(``base``). The lr/wd study is a *paired* design: sample k of every group uses the same
point u_k of the unit square (seeded random, or scrambled Sobol), mapped log-uniformly
into that group's interval, and the ViT_P and ViT_C of a pair share one interval, so
they train at identical (lr, wd) for every k. Its points are a fixed list, prefix-stable
in n, so a finished sweep grows by running only the new samples. The optimizer and
schedule studies are fixed grids at the tuned lr/wd; the tune study searches with
Optuna's TPE and ASHA inside Ray Tune. The values were checked when the config was
composed (``sweep.engine.schema``); what needs the models loaded is checked here, before
any trial.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sweep.driver import payload
from sweep.engine import tuned
from sweep.engine.config import load_model, load_optimizer, stock_diff
from sweep.engine.schema import TrialConfig
from sweep.engine.trainer import check_resolution
from sweep.errors import UserError

METRIC, MODE = "ema_error", "min"
Interval = dict[str, tuple[float, float]]


@dataclass
class Group:
    """One (model, optimizer) of a sweep: its trial config and what varies in its trials."""

    model: str
    optimizer: str
    base: dict
    interval: Interval = field(default_factory=dict)  # lr_wd and tune studies
    grid: list[dict] = field(default_factory=list)  # optimizer and schedule studies
    epochs: int = 0
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.model}-{self.optimizer}"


def unit_points(sampler: str, n: int, seed: int) -> np.ndarray:
    """n points of the unit square, (n, 2); the first m are the same for every n >= m."""
    if sampler == "sobol":
        from scipy.stats import qmc

        # Drawn as the next power of two (Sobol's balanced sizes), then cut to n.
        sobol = qmc.Sobol(d=2, scramble=True, rng=np.random.default_rng(seed))
        return sobol.random_base2(math.ceil(math.log2(max(1, n))))[:n]
    return np.random.default_rng(seed).random((n, 2))


def log_map(u: float, lo: float, hi: float) -> float:
    """The log-uniform quantile u of [lo, hi]."""
    return float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))


def _identity(group: Group, trial: dict) -> tuple:
    return payload.identity(group.model, group.optimizer, trial[payload.KEY]["values"])


@dataclass
class Experiment:
    """One Ray Tune experiment (one Tuner). ``paired`` and ``grid`` experiments are fixed
    lists of trials; the lr/wd study runs one per block of sample indices it was grown by.
    ``tpe`` is the tune study, one per group (TPE must not model several models at once)."""

    name: str
    groups: list[Group]
    kind: str  # paired | grid | tpe | repeat
    samples: range = range(0)  # paired: the sample indices k of this experiment
    sampler: str = "random"  # paired: random | sobol
    n: int = 0  # tpe: trials per group
    sampler_seed: int = 0
    asha_grace: int = 1
    draws: int = 0  # repeat: the best draws of each group repeated ...
    seeds: tuple[int, ...] = ()  # ... at these seeds
    chosen: list[tuple[Group, dict]] | None = None  # repeat: set by ``choose``

    def fixed_trials(self) -> list[tuple[Group, dict]]:
        """(group, trial spec) of every trial, interleaved over groups so they progress
        side by side; for tpe, placeholders with lr/wd left to the searcher; for repeat,
        the trials ``choose`` picked (none before it ran)."""
        if self.kind == "grid":
            return [(g, payload.encode(g.base, **t, sample=None))
                    for g in self.groups for t in g.grid]
        if self.kind == "repeat":
            return list(self.chosen or [])
        if self.kind == "tpe":
            g = self.groups[0]
            return [(g, payload.encode(g.base, lr=None, wd=None, epochs=g.epochs,
                                       seed=g.seed, sample=None))] * self.n
        points = unit_points(self.sampler, self.samples.stop, self.sampler_seed)
        out = []
        for k in self.samples:
            for g in self.groups:
                lr, wd = (log_map(points[k, i], *g.interval[key])
                          for i, key in enumerate(("lr", "wd")))
                out.append((g, payload.encode(g.base, lr=lr, wd=wd, epochs=g.epochs,
                                              seed=g.seed, sample=k)))
        return out

    @property
    def num_trials(self) -> int:
        if self.kind == "repeat" and self.chosen is None:
            return len(self.groups) * self.draws * len(self.seeds)
        return self.n if self.kind == "tpe" else len(self.fixed_trials())

    def choose(self, rows: list[dict]) -> None:
        """repeat: each group's ``draws`` best finished, not diverged draws of the lr/wd
        study (its rows at the group's own seed; ties broken by sample index), repeated
        at ``seeds``, each repeat keeping its draw's sample index. Decided only from the
        finished draws, so a restart chooses the same trials."""
        self.chosen = []
        for g in self.groups:
            mine = [r for r in rows if r["model"] == g.model and r["optimizer"] == g.optimizer
                    and r["status"] == "done" and str(r["diverged"]) != "True"
                    and str(r.get("sample", "")) not in ("", "nan", "None")
                    and int(r["seed"]) == g.seed and int(r["epochs"]) == g.epochs]
            best = sorted(mine, key=lambda r: (float(r["best_error"]), int(float(r["sample"]))))
            for r in best[:self.draws]:
                for seed in self.seeds:
                    self.chosen.append((g, payload.encode(
                        g.base, lr=float(r["lr"]), wd=float(r["wd"]), epochs=g.epochs,
                        seed=seed, sample=int(float(r["sample"])))))

    def identities(self) -> list[tuple]:
        """``payload.identity`` of each fixed trial, in ``fixed_trials`` order."""
        return [_identity(g, p) for g, p in self.fixed_trials()]

    def param_space(self, finished: frozenset = frozenset()) -> dict | None:
        """Ray's param space of the fixed trials whose identity is not in ``finished``;
        None when none is left."""
        if self.kind == "tpe":
            return {}  # the searcher's define-by-run space fills the whole config
        from ray import tune

        todo = [p[payload.KEY] for g, p in self.fixed_trials() if _identity(g, p) not in finished]
        return {payload.KEY: tune.grid_search(todo)} if todo else None

    def searcher(self) -> Any:
        if self.kind != "tpe":
            return None
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        group = self.groups[0]
        fixed = payload.flat(payload.encode(group.base, lr=None, wd=None, epochs=group.epochs,
                                            seed=group.seed, sample=None))

        def space(trial: optuna.Trial) -> dict:
            values = {f"{payload.KEY}/values/{k}": trial.suggest_float(k, lo, hi, log=True)
                      for k, (lo, hi) in group.interval.items()}
            return fixed | values

        sampler = optuna.samplers.TPESampler(seed=self.sampler_seed,
                                             n_startup_trials=max(2, self.n // 4))
        return OptunaSearch(space=space, sampler=sampler, metric=METRIC, mode=MODE)

    def scheduler(self) -> Any:
        if self.kind != "tpe":
            return None
        from ray.tune.schedulers import ASHAScheduler

        epochs = self.groups[0].epochs
        # max_t past the last epoch: ASHA must not stop a trial before its final report.
        return ASHAScheduler(time_attr="epoch", max_t=epochs + 1,
                             grace_period=min(self.asha_grace, epochs), reduction_factor=3)


def pair_interval(cfg: DictConfig, models: list[DictConfig], model: DictConfig,
                  optimizer: str) -> Interval:
    """The lr/wd interval of one group: ``sweep.interval``, else the study's for this
    optimizer (``sweep.search``), else the model's own (the paper's Table 4 ranges, shared
    by ViT_P and ViT_C), else ``sweep.scale`` × the
    geometric mean of the tuned values of every model of its size in the sweep, so the
    twins of a pair share one interval and are sampled at identical (lr, wd)."""
    sweep, data = cfg.sweep, cfg.data.name
    explicit = sweep.get("interval")
    if explicit is None:
        explicit = (sweep.search or {}).get(optimizer) or \
            model.get("interval", {}).get(optimizer)
    if explicit is not None:
        return {k: (float(explicit[k][0]), float(explicit[k][1])) for k in ("lr", "wd")}
    found = [tuned.lookup(m, optimizer, data, cfg.tuned) for m in models
             if m.size == model.size]
    found = [f for f in found if f is not None]
    if not found:
        raise UserError(
            f"model {model.name} has no tuned lr/wd and no interval for {optimizer} on "
            f"{data}; pass sweep.interval='{{lr:[lo,hi],wd:[lo,hi]}}', tuned=results/<study>,"
            " or run SWEEP=tune first")
    lo, hi = sweep.scale
    centre = {k: math.exp(sum(math.log(f[k]) for f in found) / len(found)) for k in ("lr", "wd")}
    return {k: (centre[k] * lo, centre[k] * hi) for k in ("lr", "wd")}


# The top-level settings every trial of a sweep carries (its model and optimizer are set
# per group, ``threads`` from ``resources.cpus_per_trial``; ``out`` and ``tuned`` are a
# single trial's).
TRIAL_SETTINGS = tuple(f.name for f in dataclasses.fields(TrialConfig)
                       if f.name not in ("model", "optimizer", "out", "tuned"))


def model_overrides(cfg: DictConfig) -> dict:
    """``model.*`` settings the command line (or a preset) changed: they reach every
    model of the sweep, and each model so changed is checked again."""
    return stock_diff(cfg.model, load_model(cfg.model.name))


def optimizer_overrides(cfg: DictConfig) -> dict:
    """``optimizer.*`` settings the command line (or a preset) changed, minus its name:
    they reach every group (lr and wd are the study's)."""
    changed = stock_diff(cfg.optimizer, load_optimizer(cfg.optimizer.name))
    return {k: v for k, v in changed.items() if k not in ("name", "lr", "wd")}


def base_config(cfg: DictConfig, model: DictConfig, optimizer: str) -> dict:
    """The trial config every trial of a group shares (lr, wd, epochs, seed set per trial)."""
    trial = OmegaConf.masked_copy(cfg, list(TRIAL_SETTINGS))
    trial.model = model
    trial.optimizer = load_optimizer(optimizer, optimizer_overrides(cfg))
    trial.threads = int(cfg.resources.cpus_per_trial)
    return OmegaConf.to_container(trial, resolve=True)


def load_models(cfg: DictConfig) -> list[DictConfig]:
    """The sweep's models, each with the command line's model overrides, checked against
    the data they train on (resolution, patch size) before any trial."""
    overrides = model_overrides(cfg)
    models = [load_model(name, overrides) for name in cfg.sweep.models]
    for model in models:
        size = served_size(cfg, model)
        check_resolution(model, cfg.data.name, size, allow=bool(cfg.allow_resolution))
        if model.get("patch_size") and size % model.patch_size:
            raise UserError(f"{model.name}'s patch size {model.patch_size} does not divide "
                            f"the {cfg.data.name} image size {size}")
    return models


def group_configs(cfg: DictConfig) -> dict[str, dict]:
    """Every (model, optimizer) group's resolved trial config, by group name."""
    return {f"{m.name}-{o}": base_config(cfg, m, o)
            for m in load_models(cfg) for o in cfg.sweep.optimizers}


def _group(cfg: DictConfig, model: DictConfig, optimizer: str, models: list[DictConfig],
           epochs: list[int], seeds: list[int]) -> Group:
    sweep, data = cfg.sweep, cfg.data.name
    group = Group(model=model.name, optimizer=optimizer, base=base_config(cfg, model, optimizer),
                  epochs=epochs[0], seed=seeds[0])
    if sweep.study == "lr_wd":
        group.interval = pair_interval(cfg, models, model, optimizer)
    elif sweep.study == "tune":
        explicit = sweep.get("interval") or (sweep.search or {}).get(optimizer)
        if explicit is None:
            raise UserError(f"the tune study has no search interval for {optimizer}; pass "
                            f"sweep.interval='{{lr:[lo,hi],wd:[lo,hi]}}'")
        group.interval = {k: (float(explicit[k][0]), float(explicit[k][1]))
                          for k in ("lr", "wd")}
    else:
        found = tuned.require(model, optimizer, data, cfg.tuned)
        seeds_at = {int(k): list(v) for k, v in (sweep.seeds_at or {}).items()}
        group.grid = [{"lr": found["lr"], "wd": found["wd"], "epochs": e, "seed": s}
                      for e in epochs for s in seeds_at.get(e, seeds)]
    return group


def served_size(cfg: DictConfig, model: DictConfig) -> int:
    """The resolution the data serves one model (synthetic, IDX and ImageNet data take
    the model's own, through ``${model.image_size}``), resolved as its trials see it."""
    both = OmegaConf.create({"data": OmegaConf.to_container(cfg.data, resolve=False),
                             "model": OmegaConf.to_container(model, resolve=True)})
    return int(both.data.image_size)


def plan_study(cfg: DictConfig, *, starts: list[int] | None = None) -> list[Experiment]:
    """Every experiment of the sweep; raises UserError before anything runs. ``starts``
    are the first sample indices of the lr/wd study's experiments (one more each time a
    finished sweep was grown); default one experiment from 0."""
    sweep = cfg.sweep
    sampled = sweep.study in ("lr_wd", "tune")
    epochs = [int(sweep.epochs)] if sampled else [int(e) for e in sweep.epochs]
    seeds = [int(sweep.seed)] if sampled else [int(s) for s in sweep.seeds]
    models = load_models(cfg)
    groups = [_group(cfg, m, o, models, epochs, seeds)
              for m, o in product(models, list(sweep.optimizers))]
    if sweep.study == "tune":
        return [Experiment(name=g.name, groups=[g], kind="tpe", n=int(sweep.n),
                           sampler_seed=int(sweep.sampler_seed), asha_grace=int(sweep.grace))
                for g in groups]
    if not sampled:
        return [Experiment(name=sweep.study, groups=groups, kind="grid")]
    bounds = [*(starts or [0]), int(sweep.n)]
    experiments = [Experiment(name="lr_wd" if lo == 0 else f"lr_wd+{lo}", groups=groups,
                              kind="paired", samples=range(lo, hi),
                              sampler=str(sweep.sampler), sampler_seed=int(sweep.sampler_seed))
                   for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]
    repeat = sweep.get("repeat_best")
    if repeat:
        # Seeds at each group's best draws: their seed noise, beside the lr/wd noise.
        experiments.append(Experiment(name="repeat_best", groups=groups, kind="repeat",
                                      draws=int(repeat.draws),
                                      seeds=tuple(int(s) for s in repeat.seeds)))
    return experiments


def sweep_name(cfg: DictConfig) -> str:
    """Deterministic, so running the same command again finds the same sweep."""
    if cfg.sweep.get("name"):
        return str(cfg.sweep.name)
    models = "+".join(cfg.sweep.models)
    return f"{cfg.sweep.study}-{models}-{cfg.data.name}"
