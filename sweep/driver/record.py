"""What a sweep folder promises: its record (``config.yaml``), the study and every
group's resolved trial config its trials were made from. Resuming under a changed record
would mix two sweeps in one table, so it is refused with one line naming the key; the
changes allowed are growing an lr/wd study's ``sweep.n`` (it adds samples and keeps the
old ones) and settings that change no trial (retries, the sweep's name, save_tuned)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweep.engine.config import first_diff
from sweep.engine.schema import NOT_TRIAL_SETTINGS
from sweep.errors import UserError

CONFIG = "config.yaml"


def record(cfg: DictConfig, starts: list[int]) -> dict:
    """The sweep as its folder records it: the study, each (model, optimizer) group's
    resolved trial config (an edited model or optimizer yaml, or an override, shows up
    there), where the tuned values came from, and the sample blocks it grew by."""
    from sweep.driver.studies import group_configs

    return {"sweep": OmegaConf.to_container(cfg.sweep, resolve=True),
            "groups": group_configs(cfg), "tuned": cfg.tuned, "sample_starts": starts}


def _trial_part(saved: dict) -> dict:
    """The parts of a record that decide what the trials are."""
    sweep = {k: v for k, v in (saved.get("sweep") or {}).items() if k not in NOT_TRIAL_SETTINGS}
    return {"sweep": sweep, "groups": saved.get("groups")}


def sample_starts(cfg: DictConfig, folder: Path) -> list[int]:
    """The first sample index of each lr/wd experiment of the sweep in ``folder``: [0]
    for a new sweep; one more start (the old n) when ``sweep.n`` grew. Any other change
    of what the trials are is refused with one line naming the key."""
    saved = folder / CONFIG
    if not saved.exists():
        return [0]
    old = OmegaConf.to_container(OmegaConf.load(saved), resolve=True)
    new = record(cfg, [])
    old_part, new_part = _trial_part(old), _trial_part(new)
    starts = list(old.get("sample_starts") or [0])
    old_n = old_part["sweep"].get("n")
    grown = new["sweep"]["study"] == "lr_wd" and old_n is not None and \
        int(new["sweep"]["n"]) > int(old_n)
    if grown:
        old_part["sweep"] = {**old_part["sweep"], "n": new["sweep"]["n"]}
    # The study first, so a changed sweep.models is named as such, not as its groups.
    found = first_diff(old_part["sweep"], new_part["sweep"], "sweep") or \
        first_diff(old_part["groups"], new_part["groups"], "groups")
    if found:
        raise UserError(f"{folder} holds a sweep with other trials ({found}); pass "
                        "sweep.name=NEW for a new sweep, or rerun with the old settings "
                        "(an lr/wd study may only grow sweep.n)")
    return [*starts, int(old_n)] if grown else starts


def save(cfg: DictConfig, folder: Path, starts: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(record(cfg, starts)), folder / CONFIG)
