"""What a sweep folder promises: the spec its trials were made from. Resuming under a
changed spec would mix two sweeps in one table, so it is refused; the one change allowed
is growing an lr/wd study's ``sweep.n``, which adds samples and keeps the old ones."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweep.engine.config import first_diff
from sweep.errors import UserError

CONFIG = "config.yaml"
# The parts of a composed config that decide what the trials are.
# ``groups``: every group's resolved trial config, so an edited model or optimizer yaml,
# or an optimizer.* override, is caught too.
SPEC_KEYS = ("sweep", "data", "schedule", "seed", "ema_horizon", "diverge_factor", "amp",
             "groups")


def groups(cfg: DictConfig) -> dict:
    """Each (model, optimizer) group's resolved trial config, by group name."""
    from sweep.driver.studies import group_configs

    return group_configs(cfg)


def sample_starts(cfg: DictConfig, folder: Path) -> list[int]:
    """The first sample index of each lr/wd experiment of the sweep in ``folder``: [0]
    for a new sweep; one more start (the old n) when ``sweep.n`` grew. Any other change
    of the spec is refused with one line."""
    saved = folder / CONFIG
    if not saved.exists():
        return [0]
    old = OmegaConf.to_container(OmegaConf.load(saved), resolve=True)
    new = OmegaConf.to_container(cfg, resolve=True)
    new["groups"] = groups(cfg)
    old_spec, new_spec = ({k: c.get(k) for k in SPEC_KEYS} for c in (old, new))
    starts = list(old.get("sample_starts") or [0])
    grown = (new["sweep"]["study"] == "lr_wd" and old_spec["sweep"].get("n") is not None
             and int(new["sweep"]["n"]) > int(old_spec["sweep"]["n"]))
    if grown:
        old_spec["sweep"] = {**old_spec["sweep"], "n": new["sweep"]["n"]}
    found = first_diff(old_spec, new_spec)
    if found:
        raise UserError(f"{folder} holds a sweep with another spec ({found}); pass "
                        "sweep.name=NEW for a new sweep, or rerun with the old settings "
                        "(an lr/wd study may only grow sweep.n)")
    return [*starts, int(old["sweep"]["n"])] if grown else starts


def save(cfg: DictConfig, folder: Path, starts: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = OmegaConf.to_container(cfg, resolve=True) | {"sample_starts": starts,
                                                           "groups": groups(cfg)}
    OmegaConf.save(OmegaConf.create(record), folder / CONFIG)
