"""The one shape of a Ray trial's config (its payload), written by the studies and read
by the trainable and the results writer: ``{"trial": {"base": <group's trial config>,
"values": {lr, wd, epochs, seed, sample}}}``. Decoding needs nothing but this module (no
sampler, no Optuna).
"""

from __future__ import annotations

from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

KEY = "trial"
PER_TRIAL = ("lr", "wd", "epochs", "seed", "sample")  # what differs between a group's trials


def encode(base: dict, *, lr: float | None, wd: float | None, epochs: int, seed: int,
           sample: int | None) -> dict:
    """A fixed trial (lr and wd None: a searcher fills them in)."""
    return {KEY: {"base": base, "values": {"lr": lr, "wd": wd, "epochs": epochs,
                                           "seed": seed, "sample": sample}}}


def flat(payload: dict) -> dict:
    """``encode``'s output as Ray's flattened keys ("trial/values/lr", ...), for a
    define-by-run searcher whose values Ray unflattens into the same shape."""
    out = {f"{KEY}/base": payload[KEY]["base"]}
    out |= {f"{KEY}/values/{k}": v for k, v in payload[KEY]["values"].items()}
    return out


def decode(config: dict) -> tuple[dict, dict]:
    """(base config, per-trial values) of a Ray trial's config."""
    trial = config[KEY]
    return trial["base"], trial["values"]


def trial_config(base: dict, values: dict) -> DictConfig:
    """A group's base config with one trial's lr, wd, epochs and seed filled in: the
    config the engine trains, and the one its checkpoint records."""
    cfg = OmegaConf.create(base)
    cfg.optimizer.lr, cfg.optimizer.wd = float(values["lr"]), float(values["wd"])
    cfg.schedule.epochs, cfg.seed = int(values["epochs"]), int(values["seed"])
    return cfg


def identity(model: str, optimizer: str, values: dict) -> tuple:
    """What tells a sweep's trials apart, from a payload's values or a trials.csv row
    alike (floats compared at 10 significant digits, an empty sample as None), so a sweep
    whose Ray folders are gone can still recognise the trials its table holds."""
    sample = values.get("sample")
    if sample is None or sample == "" or sample != sample:  # None, empty or NaN
        sample = None
    return (model, optimizer, int(values["epochs"]), int(values["seed"]),
            None if sample is None else int(sample),
            f"{float(values['lr']):.10g}", f"{float(values['wd']):.10g}")


def finished_identities(rows: Iterable[dict]) -> frozenset:
    """The identities of the finished ``trials.csv`` rows: trials no restart retrains."""
    from sweep.driver.progress import FINISHED

    return frozenset(identity(r["model"], r["optimizer"], r) for r in rows
                     if r["status"] in FINISHED)
