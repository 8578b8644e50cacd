"""Structured-config schemas and the one place that composes ``conf/`` with Hydra.

Schemas are registered in Hydra's ConfigStore so every yaml in a group is type-checked
on composition; the code below this module receives plain values, never the config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sweep.errors import UserError
from sweep.models import ViTSpec

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@dataclass
class LrWd:
    lr: float = MISSING
    wd: float = MISSING


@dataclass
class Interval:
    """A log-uniform search interval: [low, high] for lr and for wd."""

    lr: list[float] = MISSING
    wd: list[float] = MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    stem: str = "patchify"
    patch_size: int = 16
    width: int = MISSING
    depth: int = MISSING
    heads: int = MISSING
    mlp_dim: int = MISSING
    stem_widths: list[int] = field(default_factory=list)
    stem_strides: list[int] = field(default_factory=list)
    classifier: str = "token"
    # The resolution and class count the model is designed for (its complexity table);
    # a trial builds it at its dataset's size instead.
    image_size: int = 224
    num_classes: int = 1000
    # Paper-tuned (or measured) lr/wd per optimizer at batch 2048, for sweeps to centre on.
    tuned: dict[str, LrWd] = field(default_factory=dict)
    # Explicit lr/wd sweep intervals per optimizer (the paper's Table 4 ranges).
    interval: dict[str, Interval] = field(default_factory=dict)


def register_schemas() -> None:
    """Make ``- schema`` in a group's defaults list validate that group's yaml."""
    cs = ConfigStore.instance()
    cs.store(group="model", name="schema", node=ModelConfig)


register_schemas()


def choices(group: str) -> list[str]:
    """Names of the yaml options in a config group (the schema excluded)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


_GROUP_OVERRIDE = re.compile(r"^\+?\+?(?P<group>[a-z_]+)=(?P<value>[^=]*)$")


def check_group_overrides(overrides: list[str]) -> None:
    """Reject an unknown group option (``model=foo``) with one line instead of Hydra's trace."""
    for item in overrides:
        m = _GROUP_OVERRIDE.match(item)
        if not m or not (CONF_DIR / m["group"]).is_dir():
            continue
        options = choices(m["group"])
        for value in m["value"].split(","):
            if value and value not in options:
                raise UserError(
                    f"unknown {m['group']} '{value}'; choose one of: {', '.join(options)}"
                )


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides, outside of ``@hydra.main``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    overrides = list(overrides or [])
    check_group_overrides(overrides)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides)
    except HydraException as e:
        raise UserError(f"bad config or override: {str(e).splitlines()[0]}") from e


def load_model(name: str) -> DictConfig:
    """One model config, validated against the schema."""
    if name not in choices("model"):
        raise UserError(f"unknown model '{name}'; choose one of: {', '.join(choices('model'))}")
    raw = OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")
    raw.pop("defaults", None)
    try:
        return OmegaConf.merge(OmegaConf.structured(ModelConfig), raw)
    except Exception as e:  # omegaconf's validation errors
        raise UserError(f"conf/model/{name}.yaml is invalid: {str(e).splitlines()[0]}") from e


def model_spec(model: DictConfig) -> ViTSpec:
    """The architecture part of a model config."""
    return ViTSpec(
        width=model.width,
        depth=model.depth,
        heads=model.heads,
        mlp_dim=model.mlp_dim,
        patch_size=model.patch_size,
        stem=model.stem,
        stem_widths=tuple(model.stem_widths),
        stem_strides=tuple(model.stem_strides),
        classifier=model.classifier,
    )
