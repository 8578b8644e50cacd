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
from sweep.models import RegNetSpec, ViTSpec
from sweep.models.regnet import EXPLICIT

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


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
    size: str = MISSING  # family size (tiny, 1gf, 4gf, ...): the panel a model is drawn in
    preset: str = "none"  # conf/preset/<name>: the protocol a sweep of this model defaults to
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
    # pycls TEST.IM_SIZE: ImageNet evaluation resizes the short side to this, then
    # centre-crops image_size (null: image_size / 0.875).
    test_image_size: int | None = None
    num_classes: int = 1000
    # Paper-tuned (or measured) lr/wd per optimizer at batch 2048, for sweeps to centre on.
    tuned: dict[str, LrWd] = field(default_factory=dict)
    # Explicit lr/wd sweep intervals per optimizer (the paper's Table 4 ranges).
    interval: dict[str, Interval] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float | None = None
    wd: float | None = None
    ref_batch: int = 2048
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = True
    bn_wd: float | None = None
    ln_wd: float | None = 0.0
    bias_wd: float | None = 0.0
    decay_embeddings: bool = True


@dataclass
class ScheduleConfig:
    epochs: int = MISSING
    warmup_epochs: float = 5
    warmup_max_fraction: float = 0.1
    warmup_factor: float = 0.1
    min_lr: float = 0.0


def register_schemas() -> None:
    """Make ``- schema`` in a group's defaults list validate that group's yaml."""
    cs = ConfigStore.instance()
    cs.store(group="model", name="schema", node=ModelConfig)
    cs.store(group="optimizer", name="schema", node=OptimizerConfig)
    cs.store(group="schedule", name="schema", node=ScheduleConfig)
    cs.store(group="model", name="regnet_schema", node=RegNetConfig)


def first_diff(old: object, new: object, path: str = "") -> str | None:
    """The first key path where two plain configs differ (``key: old -> new``), or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = first_diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old} -> {new}"


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
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    overrides = list(overrides or [])
    check_group_overrides(overrides)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException, YAMLError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        if e.__cause__ is not None:
            lines.append(str(e.__cause__).splitlines()[0])
        raise UserError("bad config or override: " + "; ".join(lines)) from e


def _load_option(group: str, name: str, schema: type) -> DictConfig:
    if name not in choices(group):
        raise UserError(f"unknown {group} '{name}'; choose one of: {', '.join(choices(group))}")
    raw = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
    raw.pop("defaults", None)
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), raw)
    except Exception as e:  # omegaconf's validation errors
        raise UserError(f"conf/{group}/{name}.yaml is invalid: {str(e).splitlines()[0]}") from e


def load_model(name: str) -> DictConfig:
    """One model config, validated against the schema (for sweeps over several models)."""
    return _load_option("model", name, model_schema(name))


def load_optimizer(name: str) -> DictConfig:
    return _load_option("optimizer", name, OptimizerConfig)


def model_spec(model: DictConfig) -> ViTSpec | RegNetSpec:
    """The architecture part of a model config."""
    if model.get("arch", "vit") == "regnet":
        return regnet_spec(model)
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


# --- RegNet (the CNN baseline) ------------------------------------------------------


@dataclass
class RegNetConfig:
    """A RegNet model config (``arch: regnet``); fields as pycls ``cfg.REGNET``."""

    name: str = MISSING
    arch: str = "regnet"
    # The family size it is compared at (``1gf``, ``4gf``, ``18gf``, ``tiny``).
    size: str = MISSING
    preset: str = "none"
    # Either the width rule (cfg.REGNET: depth, w0, wa, wm, group_width) ...
    depth: int = 0
    w0: int = 0
    wa: float = 0.0
    wm: float = 0.0
    group_width: int = 0
    # ... or the stages one by one (cfg.ANYNET: DEPTHS, WIDTHS, GROUP_WS, STRIDES).
    depths: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    group_widths: list[int] = field(default_factory=list)
    strides: list[int] = field(default_factory=list)
    se_ratio: float = 0.25
    stem_type: str = "simple_stem_in"
    stem_width: int = 32
    bottleneck: float = 1.0
    zero_init_final_gamma: bool = False
    image_size: int = 224
    test_image_size: int | None = None  # pycls TEST.IM_SIZE (see ModelConfig)
    num_classes: int = 1000
    tuned: dict[str, LrWd] = field(default_factory=dict)
    interval: dict[str, Interval] = field(default_factory=dict)


def model_schema(name: str) -> type:
    """The schema of one model yaml, by its ``arch`` (ViT when absent)."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    arch = OmegaConf.load(path).get("arch", "vit") if path.exists() else "vit"
    return RegNetConfig if arch == "regnet" else ModelConfig


def regnet_spec(model: DictConfig) -> RegNetSpec:
    return RegNetSpec(
        depth=model.depth, w0=model.w0, wa=model.wa, wm=model.wm,
        group_width=model.group_width, se_ratio=model.se_ratio, stem_width=model.stem_width,
        **{key: tuple(model.get(key, ())) for key in EXPLICIT},  # AnyNet's per-stage lists
        bottleneck=model.bottleneck, stem_type=model.stem_type,
        zero_init_final_gamma=model.get("zero_init_final_gamma", False),
    )


# After every schema is defined (RegNetConfig is above).
register_schemas()
