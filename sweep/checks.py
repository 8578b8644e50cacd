"""Input checks shared by the CLIs: every bad value fails here with one line (a
``UserError``) before anything is written or trained."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweep.engine.config import CONF_DIR
from sweep.errors import UserError

# Hydra list options a user may pass as one bare name (sweep.models=vitp_tiny).
LIST_KEYS = ("sweep.models", "sweep.optimizers", "sweep.seeds", "sweep.epochs")


def listify_overrides(overrides: list[str]) -> list[str]:
    """``sweep.models=vitp_tiny`` means ``sweep.models=[vitp_tiny]`` (a bare comma list
    would be Hydra's multirun syntax, which a compose refuses)."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.lstrip("+") in LIST_KEYS and value and not value.startswith("["):
            item = f"{key}=[{value}]"
        out.append(item)
    return out


def _int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{what} must be >= {minimum} and a whole number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number) or number < minimum:
        raise UserError(f"{what} must be >= {minimum} and a whole number, got {value!r}")
    return int(number)


def _number(value: Any, what: str, *, positive: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (
            positive and number == 0):
        raise UserError(f"{what} must be a {'positive' if positive else 'non-negative'} "
                        f"finite number, got {value!r}")
    return number


def _get(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as e:  # an interpolation that does not resolve
        raise UserError(f"{key} cannot be resolved ({str(e).splitlines()[0]})") from e


def check_trial(cfg: DictConfig) -> None:
    """The trial recipe's top-level numbers (train.yaml)."""
    _int(_get(cfg, "threads"), "threads", 1)
    _int(_get(cfg, "seed"), "seed", 0)
    _number(_get(cfg, "diverge_factor"), "diverge_factor", positive=True)
    _number(_get(cfg, "ema_horizon"), "ema_horizon", positive=False)


def check_writable(path: Path, what: str) -> None:
    """``path`` is (or can be made) a folder this process can write into: probed by
    creating and removing a temporary file in the nearest existing ancestor, so nothing
    is left behind (root passes ``os.access`` everywhere, so it is not enough)."""
    path = Path(path).absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{what}={path}: {probe} is a file, not a folder; pass a folder path")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise UserError(f"{what}={path} is not writable ({e.strerror}); pass a folder you "
                        "can write to") from e


def _yaml_keys(path: Path) -> set[str]:
    raw = OmegaConf.load(path)
    return {k for k in raw if k != "defaults"}


def check_known_keys(cfg: DictConfig) -> None:
    """Refuse keys added with ``+key=...`` that no yaml of the project defines (a typo
    would otherwise be ignored silently)."""
    study = cfg.sweep.get("study")
    study_yaml = CONF_DIR / "sweep" / f"{study}.yaml"
    if study_yaml.exists():
        extra = set(cfg.sweep) - _yaml_keys(study_yaml)
        if extra:
            raise UserError(f"unknown key sweep.{sorted(extra)[0]} for the {study} study; "
                            f"known: {', '.join(sorted(_yaml_keys(study_yaml)))}")
    known = _yaml_keys(CONF_DIR / "run.yaml") | _yaml_keys(CONF_DIR / "train.yaml")
    known |= {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    for option in (CONF_DIR / "cluster").glob("*.yaml"):
        known |= _yaml_keys(option)
    extra = set(cfg) - known
    if extra:
        raise UserError(f"unknown key {sorted(extra)[0]}; check its spelling "
                        "(python -m sweep.train --cfg lists the keys)")


def check_sweep(cfg: DictConfig) -> None:
    """A composed sweep config, before any planning."""
    check_known_keys(cfg)
    check_trial(cfg)
    if OmegaConf.is_missing(cfg.ray, "address"):
        raise UserError("cluster=ray needs ray.address=HOST:PORT (or auto)")
    if "n" in cfg.sweep:
        _int(_get(cfg, "sweep.n"), "sweep.n", 1)
    check_writable(Path(str(cfg.results)), "results")
