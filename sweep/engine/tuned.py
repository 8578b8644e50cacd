"""Good lr/wd values per (model, optimizer), in one place. They come from a study that
measured them, kept with its results (``results/<sweep>/tuned.yaml``, written by the tune
study or an lr/wd study with ``sweep.save_tuned=true``) and named explicitly with
``tuned=results/<sweep>``; else from the model config (the paper's values). Nothing here
writes into ``conf/``. Values are in batch-2048 units, like every lr and wd in vitstab."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweep.engine.config import CONF_DIR
from sweep.errors import UserError

TUNED_FILE = "tuned.yaml"
ROOT = CONF_DIR.parent


def tuned_file(source: str | None) -> Path | None:
    """The tuned.yaml that ``tuned=`` names: a study folder or the file itself, relative
    to the working directory or else to the repository (where results/ lives)."""
    if not source:
        return None
    for base in (Path.cwd(), ROOT):
        path = (base / str(source)).expanduser()
        path = path / TUNED_FILE if path.is_dir() else path
        if path.is_file():
            return path
    raise UserError(f"tuned={source}: no {TUNED_FILE} there; name a study folder that holds "
                    f"one (e.g. tuned=results/cpu-lr_wd) or its {TUNED_FILE}")


def _from_file(path: Path, model: str, optimizer: str, data: str) -> dict[str, float] | None:
    found = (OmegaConf.load(path).get(model) or {}).get(optimizer)
    if found is None:
        return None
    measured = found.get("data")
    if measured is not None and measured != data:
        raise UserError(f"{path} holds {model} {optimizer} values measured on {measured}, "
                        f"not {data}; name a study of {data} with tuned=")
    return {"lr": float(found.lr), "wd": float(found.wd)}


def lookup(model: DictConfig, optimizer: str, data: str,
           source: str | None = None) -> dict[str, float] | None:
    """Measured by the study ``source`` names, if it has this model and optimizer, else
    the model config's own (the paper's), else None."""
    path = tuned_file(source)
    if path is not None:
        found = _from_file(path, model.name, optimizer, data)
        if found is not None:
            return found
    own = model.get("tuned", {}).get(optimizer)
    return None if own is None else {"lr": float(own.lr), "wd": float(own.wd)}


def require(model: DictConfig, optimizer: str, data: str,
            source: str | None = None) -> dict[str, float]:
    """Like ``lookup``, but a missing value is the user's to fix: one line, one wording."""
    found = lookup(model, optimizer, data, source)
    if found is None:
        where = f" in {tuned_file(source)} or" if source else ""
        raise UserError(
            f"model {model.name} has no tuned lr/wd for {optimizer} on {data}{where} in its "
            "config; pass optimizer.lr=... optimizer.wd=..., or tuned=results/<study> (a "
            "tune study, or an lr/wd study run with sweep.save_tuned=true)")
    return found


def save(folder: Path, values: dict[str, dict[str, dict]]) -> Path:
    """``{model: {optimizer: {lr, wd, ...}}}`` as ``folder/tuned.yaml``, with the study."""
    path = Path(folder) / TUNED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(values), path)
    return path


def resolve(cfg: DictConfig) -> DictConfig:
    """A single trial's config with its (lr, wd) filled in: ``optimizer.lr``/``.wd`` when
    given, else the tuned values (``require``). The engine reads them from there only."""
    opt = cfg.optimizer
    if opt.lr is None or opt.wd is None:
        found = require(cfg.model, opt.name, cfg.data.name, cfg.get("tuned"))
        opt.lr = found["lr"] if opt.lr is None else opt.lr
        opt.wd = found["wd"] if opt.wd is None else opt.wd
    return cfg
