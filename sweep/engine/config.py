"""The one place that composes ``conf/`` with Hydra and checks it.

Every group's yaml names its schema (``sweep.engine.schema``) in its defaults list, so a
value of the wrong type fails while Hydra composes; the top level is then merged into
``TrialConfig`` (``train.yaml``) or ``RunConfig`` (``run.yaml``), which refuses unknown
keys, and ``schema.validate`` checks every range and cross-field rule. The code below
this module receives plain, valid values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweep.engine import schema
from sweep.errors import UserError
from sweep.models import RegNetSpec, ViTSpec
from sweep.models.regnet import EXPLICIT

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
TOP = {"train": schema.TrialConfig, "run": schema.RunConfig}


def register_schemas() -> None:
    """Make ``- <name>_schema`` in a group yaml's defaults list type-check that yaml."""
    cs = ConfigStore.instance()
    groups = {"model": {"schema": schema.ModelConfig, "regnet_schema": schema.RegNetConfig},
              "optimizer": {"schema": schema.OptimizerConfig},
              "schedule": {"schema": schema.ScheduleConfig},
              "sweep": {"lr_wd_schema": schema.LrWdStudy, "grid_schema": schema.GridStudy,
                        "tune_schema": schema.TuneStudy}}
    groups["data"] = {f"{name}_schema": node for name, node in schema.DATA_SCHEMAS.items()}
    for group, nodes in groups.items():
        for name, node in nodes.items():
            cs.store(group=group, name=name, node=node)


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
    """Names of the yaml options in a config group."""
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


def hydra_error(e: BaseException) -> str:
    """Hydra's and omegaconf's multi-line errors as one line naming the key."""
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    if isinstance(cause, OmegaConfBaseException):
        return schema.describe(cause)
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines and "Could not override" in lines[0] else (lines or [str(e)])[0]


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """``conf/<config_name>.yaml`` with overrides, typed and checked (outside of
    ``@hydra.main``); any bad value is one UserError line naming its key."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from yaml import YAMLError

    overrides = list(overrides or [])
    check_group_overrides(overrides)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            raw = hydra_compose(config_name=config_name, overrides=overrides)
        cfg = OmegaConf.merge(OmegaConf.structured(TOP[config_name]), raw)
    except (HydraException, OmegaConfBaseException, YAMLError, AttributeError) as e:
        raise UserError(f"bad config or override: {hydra_error(e)}") from None
    schema.validate(cfg)
    return cfg


def model_schema(name: str) -> type:
    """The schema of one model yaml, by its ``arch`` (ViT when absent)."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    arch = OmegaConf.load(path).get("arch", "vit") if path.exists() else "vit"
    return schema.RegNetConfig if arch == "regnet" else schema.ModelConfig


def _load_option(group: str, name: str, kind: type, overrides: Any = None) -> DictConfig:
    if name not in choices(group):
        raise UserError(f"unknown {group} '{name}'; choose one of: {', '.join(choices(group))}")
    raw = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
    raw.pop("defaults", None)
    where = f"conf/{group}/{name}.yaml" + (" with the command line's overrides"
                                           if overrides else "")
    try:
        node = OmegaConf.merge(OmegaConf.structured(kind), raw, overrides or {})
    except OmegaConfBaseException as e:
        raise UserError(f"{where} is invalid: {hydra_error(e)}") from None
    schema.validate(node, group)
    return node


def load_model(name: str, overrides: Any = None) -> DictConfig:
    """One model config (with ``overrides`` merged), validated: for sweeps over several
    models, which compose only the default one."""
    return _load_option("model", name, model_schema(name), overrides)


def load_optimizer(name: str, overrides: Any = None) -> DictConfig:
    return _load_option("optimizer", name, schema.OptimizerConfig, overrides)


def stock_diff(composed: DictConfig, stock: DictConfig) -> dict:
    """The settings of a composed group that differ from its own yaml: what the command
    line (or a preset) changed."""
    new = OmegaConf.to_container(composed, resolve=True)
    old = OmegaConf.to_container(stock, resolve=True)
    return {k: v for k, v in new.items() if old.get(k) != v}


def architecture(model: DictConfig) -> ViTSpec | RegNetSpec:
    """The architecture a model config describes (validated by the spec itself)."""
    if model.get("arch", "vit") == "regnet":
        return RegNetSpec(
            depth=model.depth, w0=model.w0, wa=model.wa, wm=model.wm,
            group_width=model.group_width, se_ratio=model.se_ratio,
            stem_width=model.stem_width,
            **{key: tuple(model.get(key, ())) for key in EXPLICIT},  # AnyNet's lists
            bottleneck=model.bottleneck, stem_type=model.stem_type,
            zero_init_final_gamma=model.get("zero_init_final_gamma", False))
    return ViTSpec(
        width=model.width, depth=model.depth, heads=model.heads, mlp_dim=model.mlp_dim,
        patch_size=model.patch_size, stem=model.stem, stem_widths=tuple(model.stem_widths),
        stem_strides=tuple(model.stem_strides), classifier=model.classifier,
        ln_eps=float(model.ln_eps))


register_schemas()
