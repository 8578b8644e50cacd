"""The one shape of a Ray trial's config, written by the studies and read by the trainable
and the results writer: ``{"spec": {"base": <group's trial config>, "trial": {lr, wd,
epochs, seed, sample}}}``. Decoding needs nothing but this module (no sampler, no Optuna).
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

KEY = "spec"
TRIAL_KEYS = ("lr", "wd", "epochs", "seed", "sample")


def encode(base: dict, *, lr: float | None, wd: float | None, epochs: int, seed: int,
           sample: int | None) -> dict:
    """A fixed trial (lr and wd None: a searcher fills them in)."""
    return {"base": base, "trial": {"lr": lr, "wd": wd, "epochs": epochs, "seed": seed,
                                    "sample": sample}}


def flat(spec: dict) -> dict:
    """``encode``'s output as Ray's flattened keys ("spec/trial/lr", ...), for a
    define-by-run searcher whose values Ray unflattens into the same shape."""
    out = {f"{KEY}/base": spec["base"]}
    out |= {f"{KEY}/trial/{k}": v for k, v in spec["trial"].items()}
    return out


def decode(config: dict) -> tuple[dict, dict]:
    """(base config, trial values) of a Ray trial's config."""
    spec = config[KEY]
    return spec["base"], spec["trial"]


def trial_config(base: dict, trial: dict) -> DictConfig:
    """A group's base config with one trial's epochs and seed filled in; lr and wd are
    passed to the trainer explicitly, and recorded in the config for the record."""
    cfg = OmegaConf.create(base)
    cfg.optimizer.lr, cfg.optimizer.wd = float(trial["lr"]), float(trial["wd"])
    cfg.schedule.epochs, cfg.seed = int(trial["epochs"]), int(trial["seed"])
    return cfg
