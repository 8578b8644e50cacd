"""The dry run: every trial a sweep will train and the compute it will spend."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sweep.driver import payload
from sweep.driver.studies import Experiment
from sweep.engine.config import architecture
from sweep.errors import UserError
from sweep.models import model_class

# Standard training-set sizes, for estimating compute where the files are not at hand.
KNOWN_TRAIN_SIZES = {"imagenet": 1_281_167, "cifar10": 50_000, "fashion_mnist": 60_000,
                     "mnist": 60_000}


def train_images(data: DictConfig, *, strict: bool = False) -> int:
    """Training-set size, from opening the dataset as a trial will. A dry run may estimate
    a standard dataset that is not at hand; a real sweep (``strict``) must find it."""
    from sweep.data import build_data

    try:
        return build_data(data, seed=int(data.seed)).train_size
    except UserError:
        if strict or data.name not in KNOWN_TRAIN_SIZES:
            raise
        return int(data.get("train_size") or KNOWN_TRAIN_SIZES[data.name])


def finished_line(experiments: list[Experiment], folder: Path) -> str | None:
    """How many planned trials ``folder/trials.csv`` holds as finished (a real run keeps
    them and trains the rest), or None when it holds none."""
    path = folder / "trials.csv"
    try:
        rows = pd.read_csv(path).to_dict("records") if path.exists() else []
        done = payload.finished_identities(rows)
    except (OSError, ValueError, KeyError, pd.errors.ParserError):
        return f"{path} cannot be read; a real run will say why"
    planned = [key for e in experiments if e.kind != "tpe" for key in e.identities()]
    kept = sum(key in done for key in planned)
    if not kept:
        return None
    return (f"{kept} of these {len(planned)} trials are finished in {path}: a real run "
            f"keeps them and trains the other {len(planned) - kept}")


def print_plan(experiments: list[Experiment], cfg: DictConfig, name: str) -> None:
    images = train_images(cfg.data)
    total, count = 0.0, 0
    sizes = sorted({g.base["data"]["image_size"] for e in experiments for g in e.groups})
    print(f"sweep {name}: study {cfg.sweep.study}, data {cfg.data.name} ({images} train images, "
          f"{'/'.join(map(str, sizes))} px)")
    print(f"{'group':<24} {'sample':>6} {'lr':>10} {'wd':>10} {'epochs':>6} {'seed':>4} "
          f"{'PMAC':>9}")
    for experiment in experiments:
        if experiment.kind == "repeat" and experiment.chosen is None:
            per = {g.name: _train_macs(g, cfg, images, g.epochs) for g in experiment.groups}
            repeats = len(experiment.seeds) * experiment.draws
            total += repeats * sum(per.values())
            count += repeats * len(per)
            print(f"then seeds {list(experiment.seeds)} at the {experiment.draws} best "
                  f"draws of each group: {experiment.num_trials} trials, chosen when the "
                  "draws have finished")
            continue
        for group, trial in experiment.fixed_trials():
            _, t = payload.decode(trial)
            macs = _train_macs(group, cfg, images, t["epochs"])
            total, count = total + macs, count + 1
            lr = "tpe" if t["lr"] is None else f"{t['lr']:.3g}"
            wd = "tpe" if t["wd"] is None else f"{t['wd']:.3g}"
            sample = "-" if t["sample"] is None else str(t["sample"])
            print(f"{group.name:<24} {sample:>6} {lr:>10} {wd:>10} {t['epochs']:>6} "
                  f"{t['seed']:>4} {macs / 1e15:>9.4f}")
    print(f"{count} trials, {total / 1e15:.3f} PMAC of training compute (3 × forward GF × "
          "images × epochs)")
    print(gpu_hours_line(total, cfg))


def _train_macs(group, cfg: DictConfig, images: int, epochs: int) -> float:
    """A trial's training multiply-adds: forward + backward ≈ 3× forward, per image."""
    arch = architecture(OmegaConf.create(group.base["model"]))
    gf = model_class(arch).complexity(arch, image_size=group.base["data"]["image_size"],
                                      num_classes=cfg.data.num_classes).flops / 1e9
    return 3 * gf * 1e9 * images * epochs


def gpu_hours(macs: float, *, peak_tflops: float, utilization: float) -> float:
    """GPU-hours of ``macs`` multiply-adds of training: 2 FLOPs each, at ``utilization``
    of the GPU's bf16 dense peak."""
    return 2.0 * macs / (peak_tflops * 1e12 * utilization) / 3600.0


def gpu_hours_line(macs: float, cfg: DictConfig) -> str:
    """The dry run's GPU-hours and wall time for ``cfg.gpu`` (conf/run.yaml)."""
    gpu = cfg.gpu  # its name and utilization are checked by the schema (GpuConfig)
    table = {str(k).lower(): float(v) for k, v in gpu.peak_tflops.items()}
    name, util = str(gpu.name).lower(), float(gpu.utilization)
    count = gpu.count if gpu.count is not None else cfg.get("ray", {}).get("num_gpus")
    count = int(count or 1)
    hours = gpu_hours(macs, peak_tflops=table[name], utilization=util)
    return (f"{hours:,.1f} GPU-hours on {name} ({table[name]:g} TFLOPS bf16 dense peak at "
            f"{util:.0%} utilization; FLOPs = 2 × multiply-adds); {hours / count:,.1f} h wall "
            f"on {count} GPU{'s' if count != 1 else ''} (gpu.name, gpu.utilization, gpu.count)")
