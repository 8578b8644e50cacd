"""Good lr/wd values per (model, optimizer, dataset), in one place: looked up by trials
and grid studies, required where a study cannot run without them, saved by the tune
study. Values are in batch-2048 units, like every lr and wd in vitstab."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweep.engine.config import CONF_DIR
from sweep.engine.recipe import check_optimizer
from sweep.errors import UserError


def tuned_path(data: str) -> Path:
    """Where the tune study keeps the lr/wd it found on one dataset."""
    return CONF_DIR / "tuned" / f"{data}.yaml"


def lookup(model: DictConfig, optimizer: str, data: str) -> dict[str, float] | None:
    """Measured on this dataset by the tune study if it ran, else the paper's values in
    the model config, else None."""
    path = tuned_path(data)
    if path.exists():
        found = OmegaConf.load(path).get(model.name, {}).get(optimizer)
        if found is not None:
            return {"lr": float(found.lr), "wd": float(found.wd)}
    paper = model.get("tuned", {}).get(optimizer)
    return None if paper is None else {"lr": float(paper.lr), "wd": float(paper.wd)}


def require(model: DictConfig, optimizer: str, data: str) -> dict[str, float]:
    """Like ``lookup``, but a missing value is the user's to fix: one line, one wording."""
    found = lookup(model, optimizer, data)
    if found is None:
        raise UserError(
            f"model {model.name} has no tuned lr/wd for {optimizer} on {data}; pass "
            "optimizer.lr=... optimizer.wd=... (or sweep.interval=... for an lr/wd study), "
            "or run the tune study first (SWEEP=tune)")
    return found


def save(data: str, values: dict[str, dict[str, dict]], *, copy_to: Path | None = None) -> Path:
    """Merge ``{model: {optimizer: {lr, wd, ...}}}`` into ``conf/tuned/<data>.yaml``."""
    path = tuned_path(data)
    tuned = OmegaConf.load(path) if path.exists() else OmegaConf.create({})
    for model, per_optimizer in values.items():
        for optimizer, found in per_optimizer.items():
            tuned[model] = tuned.get(model, {})
            tuned[model][optimizer] = found
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(tuned, path)
    if copy_to is not None:
        OmegaConf.save(tuned, copy_to)
    return path


def resolve(model: DictConfig, optimizer: DictConfig, data: str) -> tuple[float, float]:
    """A trial's (lr, wd): ``optimizer.lr``/``optimizer.wd`` when given, else the tuned
    values (``require``)."""
    check_optimizer(optimizer.name)
    given = {k: optimizer.get(k) for k in ("lr", "wd")}
    if any(v is None for v in given.values()):
        found = require(model, optimizer.name, data)
        given = {k: found[k] if v is None else v for k, v in given.items()}
    return float(given["lr"]), float(given["wd"])
