"""Fake but realistic sweep results, in the exact ``trials.csv``/``curves.csv`` format.

Tests, the benchmark and the notebook need results before any real sweep has run. The
columns, statuses and study names come from ``sweep.columns``, as the results writer's do.
The generator mimics the paper's findings so figures look like the real thing: ViT_P is
worse and more sensitive to lr/wd than ViT_C, SGD hurts ViT_P far more than ViT_C, ViT_P
diverges more often at high lr, and short schedules cost ViT_P more than ViT_C; the
optional RegNetY baseline (stem ``cnn``) behaves like ViT_C. In sampled studies (lr_wd,
tune) every group's sample k maps the same point of the unit square log-uniformly into its
own interval, so ViT_P and ViT_C of a size and optimizer share (lr, wd) at each k.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweep.columns import CURVE_COLUMNS, STUDIES, TRIAL_COLUMNS

CHANCE_ERROR = 99.9  # 1000 classes
SAMPLED = ("lr_wd", "tune")  # studies with a paired draw index ``sample``

# Tuned lr/wd (docs/PROTOCOL.md, batch 2048) and the lr/wd study's log-uniform intervals, per
# optimizer for the ViTs and separately for the CNN baseline.
TUNED = {"adamw": (2.0e-3, 0.20), "sgd": (1.9, 1.3e-5)}
INTERVAL = {"adamw": ((2.5e-4, 8.0e-3), (0.02, 0.8)), "sgd": ((0.1, 3.2), (4.0e-6, 1.2e-4))}
CNN_TUNED = {"adamw": (3.0e-3, 0.05), "sgd": (0.8, 5.0e-5)}
CNN_INTERVAL = {"adamw": ((4.0e-4, 1.2e-2), (0.005, 0.2)), "sgd": ((0.05, 3.2), (1e-5, 4e-4))}
# Error at the optimum after 400 epochs, per (size, stem, optimizer).
BASE = {
    ("tiny", "patchify", "adamw"): 27.7, ("tiny", "patchify", "sgd"): 33.5,
    ("tiny", "conv", "adamw"): 24.7, ("tiny", "conv", "sgd"): 25.3,
    ("tiny", "cnn", "adamw"): 25.9, ("tiny", "cnn", "sgd"): 25.1,
    ("4gf", "patchify", "adamw"): 19.6, ("4gf", "patchify", "sgd"): 24.9,
    ("4gf", "conv", "adamw"): 18.6, ("4gf", "conv", "sgd"): 19.2,
    ("4gf", "cnn", "adamw"): 19.9, ("4gf", "cnn", "sgd"): 19.4,
}
# Quadratic penalty per log2 step away from the optimum, and the log2(lr/lr*) at which
# half of the trials diverge: ViT_P is the touchy one, SGD makes it worse.
SENSITIVITY = {("patchify", "adamw"): 1.6, ("patchify", "sgd"): 2.6,
               ("conv", "adamw"): 0.6, ("conv", "sgd"): 0.8,
               ("cnn", "adamw"): 0.7, ("cnn", "sgd"): 0.6}
DIVERGE_AT = {("patchify", "adamw"): 1.7, ("patchify", "sgd"): 1.1,
              ("conv", "adamw"): 2.6, ("conv", "sgd"): 2.4,
              ("cnn", "adamw"): 2.8, ("cnn", "sgd"): 2.8}
LENGTH_GAP_50 = {"patchify": 10.0, "conv": 6.0, "cnn": 5.0}  # points behind 400 epochs at 50
FLOPS = {("tiny", "patchify"): (1.1, 4.8e6), ("tiny", "conv"): (1.1, 4.6e6),
         ("tiny", "cnn"): (1.0, 5.0e6),
         ("4gf", "patchify"): (3.9, 18.5e6), ("4gf", "conv"): (4.0, 17.8e6),
         ("4gf", "cnn"): (4.0, 20.6e6)}
PREFIX = {"patchify": "vitp", "conv": "vitc", "cnn": "regnety"}


def _tuned(stem: str, opt: str) -> tuple[float, float]:
    return (CNN_TUNED if stem == "cnn" else TUNED)[opt]


def _interval(stem: str, opt: str) -> tuple[tuple[float, float], tuple[float, float]]:
    return (CNN_INTERVAL if stem == "cnn" else INTERVAL)[opt]


def _settings(study: str, stem: np.ndarray, opt: np.ndarray, n: int, n_combos: int,
              rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(lr, wd, sample, seed) per row. Sampled studies map one shared unit-square draw per
    sample index into each group's interval; grid studies repeat the tuned values over
    seeds."""
    if study in SAMPLED:
        unit = rng.random((n, 2))  # the same n points for every group
        sample = np.tile(np.arange(n), n_combos)
        bounds = np.array([_interval(s, o) for s, o in zip(stem, opt, strict=True)])
        lo, hi = np.log(bounds[:, :, 0]), np.log(bounds[:, :, 1])
        lr_wd = np.exp(lo + unit[sample] * (hi - lo))
        return lr_wd[:, 0], lr_wd[:, 1], sample.astype(float), np.zeros(len(stem), int)
    tuned = np.array([_tuned(s, o) for s, o in zip(stem, opt, strict=True)])
    seeds = np.tile(np.arange(n), n_combos)
    return tuned[:, 0], tuned[:, 1], np.full(len(stem), np.nan), seeds


def _errors(size, stem, opt, ep, lr, wd, rng) -> tuple[np.ndarray, np.ndarray]:
    """(best_error, diverged): the paper-like response surface plus noise. A diverged
    trial keeps its best completed epoch's error, chance error when none completed."""
    total = len(size)
    star = np.array([_tuned(s, o) for s, o in zip(stem, opt, strict=True)])
    dlr, dwd = np.log2(lr / star[:, 0]), np.log2(wd / star[:, 1])
    pairs = list(zip(stem, opt, strict=True))
    sens = np.array([SENSITIVITY[p] for p in pairs])
    div_at = np.array([DIVERGE_AT[p] for p in pairs])
    base = np.array([BASE[z, s, o] for z, s, o in zip(size, stem, opt, strict=True)])
    gap50 = np.array([LENGTH_GAP_50[s] for s in stem])
    best = (base + gap50 * (400 / ep - 1) / 7 + sens * (dlr**2 + 0.5 * dwd**2)
            + rng.gamma(2.0, 0.25, total))
    diverged = rng.random(total) < 1 / (1 + np.exp(-3 * (dlr + 0.3 * dwd - div_at)))
    partial = np.minimum(best + rng.uniform(20, 60, total), CHANCE_ERROR)
    at_chance = rng.random(total) < 0.7  # most diverge before finishing an epoch
    best = np.where(diverged, np.where(at_chance, CHANCE_ERROR, partial),
                    np.minimum(best, CHANCE_ERROR))
    return best, diverged


def make_trials(
    study: str = "lr_wd",
    *,
    sizes: tuple[str, ...] = ("tiny", "4gf"),
    stems: tuple[str, ...] = ("patchify", "conv"),
    optimizers: tuple[str, ...] = ("adamw", "sgd"),
    n_per_group: int = 32,
    epochs: tuple[int, ...] | None = None,
    batch_size: int = 2048,
    sweep: str | None = None,
    data: str = "synthetic",
    cnn: bool = False,
    n_unfinished: int = 0,
    n_nan_diverged: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """One sweep's trial rows for ``study`` (one of ``sweep.columns.STUDIES``).

    "lr_wd" and "tune" draw ``n_per_group`` paired samples per model and optimizer at 50
    epochs; "optimizer" repeats the tuned lr/wd over ``n_per_group`` seeds; "schedule" does
    the same for each of ``epochs`` (default 50, 100, 200, 400). ``cnn`` adds the RegNetY
    baseline arm. ``n_unfinished`` extra rows are running/pending/failed and
    ``n_nan_diverged`` diverged rows lose their errors, as a crashed writer leaves them.
    """
    if study not in STUDIES:
        raise ValueError(f"study must be one of {STUDIES}, not {study!r}")
    rng = np.random.default_rng(seed)
    stems = tuple(stems) + (("cnn",) if cnn and "cnn" not in stems else ())
    if epochs is None:
        epochs = (50, 100, 200, 400) if study == "schedule" else (50,)
    combos = [(sz, st, op, ep) for sz in sizes for st in stems for op in optimizers
              for ep in epochs]
    n = n_per_group
    size, stem, opt, ep = (np.repeat(np.array(c), n) for c in zip(*combos, strict=True))
    ep = ep.astype(int)
    total = len(size)
    lr, wd, sample, seeds = _settings(study, stem, opt, n, len(combos), rng)
    best, diverged = _errors(size, stem, opt, ep, lr, wd, rng)
    ema = np.where(diverged, best, np.minimum(best + rng.exponential(0.15, total),
                                              CHANCE_ERROR))
    flops = np.array([FLOPS.get((z, s), (1.0, 1e6)) for z, s in zip(size, stem, strict=True)])
    frame = pd.DataFrame({
        "sweep": sweep or f"fixture_{study}", "study": study, "data": data,
        "trial_id": [f"t{i:06d}" for i in range(total)],
        "sample": pd.array(sample, dtype="Int64") if study in SAMPLED else pd.NA,
        "model": [f"{PREFIX.get(s, s)}_{z}" for s, z in zip(stem, size, strict=True)],
        "size": size, "stem": stem, "gflops": flops[:, 0], "params": flops[:, 1].astype(int),
        "optimizer": opt, "lr": lr, "wd": wd, "epochs": ep, "batch_size": batch_size,
        "seed": seeds, "status": "done", "diverged": diverged,
        "error": np.minimum(ema + 0.2, CHANCE_ERROR), "ema_error": ema, "best_error": best,
        "chance_error": CHANCE_ERROR,
        "wall_s": np.round(ep * flops[:, 0] * 30 * rng.uniform(0.9, 1.1, total), 1),
    })
    return _damage(frame, diverged, n_unfinished, n_nan_diverged, seed)[TRIAL_COLUMNS]


def _damage(frame: pd.DataFrame, diverged: np.ndarray, n_unfinished: int,
            n_nan_diverged: int, seed: int) -> pd.DataFrame:
    """What a running or crashed writer leaves: unfinished rows, diverged rows without errors."""
    if n_nan_diverged:
        idx = np.flatnonzero(diverged)[:n_nan_diverged]
        frame.loc[idx, ["error", "ema_error", "best_error"]] = np.nan
    if n_unfinished:
        extra = frame.sample(n_unfinished, replace=True, random_state=seed).copy()
        extra["trial_id"] = [f"u{i:06d}" for i in range(n_unfinished)]
        extra["status"] = np.resize(["running", "pending", "failed"], n_unfinished)
        extra["diverged"] = False
        extra[["error", "ema_error", "best_error", "wall_s"]] = np.nan
        frame = pd.concat([frame, extra], ignore_index=True)
    return frame


def make_curves(trials: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per-epoch rows for the finished trials, ending at each trial's final errors."""
    rng = np.random.default_rng(seed)
    done = trials[trials["status"] == "done"].reset_index(drop=True)
    reps = done["epochs"].to_numpy(dtype=int)
    row = np.repeat(np.arange(len(done)), reps)
    epoch = np.concatenate([np.arange(1, e + 1) for e in reps]) if len(done) else row
    frac = epoch / np.repeat(reps, reps)
    final = np.nan_to_num(done["ema_error"].to_numpy(dtype=float), nan=100.0)[row]
    ema = 100 - (100 - final) * (1 - np.exp(-5 * frac)) / (1 - np.exp(-5))
    peak = done["lr"].to_numpy(dtype=float)[row]
    return pd.DataFrame({
        "sweep": done["sweep"].to_numpy()[row],
        "trial_id": done["trial_id"].to_numpy()[row],
        "epoch": epoch,
        "train_loss": 7 * (1 - frac) + 2 + rng.normal(0, 0.05, len(row)),
        "error": np.minimum(ema + rng.exponential(0.5, len(row)), 100.0),
        "ema_error": ema,
        "lr": peak * 0.5 * (1 + np.cos(np.pi * frac)),
        "images_per_s": rng.normal(3000, 50, len(row)),
        "elapsed_s": epoch * 30.0,
    })[CURVE_COLUMNS]


def write_results(root: Path | str, trials: pd.DataFrame, *, curves: bool = True) -> list[Path]:
    """Write ``root/<sweep>/trials.csv`` (and ``curves.csv``) for each sweep in ``trials``."""
    written = []
    for name, rows in trials.groupby("sweep", sort=True):
        folder = Path(root) / str(name)
        folder.mkdir(parents=True, exist_ok=True)
        rows.to_csv(folder / "trials.csv", index=False)
        if curves:
            make_curves(rows).to_csv(folder / "curves.csv", index=False, float_format="%.4f")
        written.append(folder / "trials.csv")
    return written


def write_example(root: Path | str, *, n_per_group: int = 24, cnn: bool = True,
                  seed: int = 0) -> list[Path]:
    """A small results folder with three studies (lr_wd with a CNN arm, optimizer,
    schedule), as sweeps would leave it."""
    frames = [
        make_trials("lr_wd", n_per_group=n_per_group, cnn=cnn, n_unfinished=3,
                    n_nan_diverged=1, seed=seed),
        make_trials("optimizer", n_per_group=3, cnn=cnn, seed=seed + 1),
        make_trials("schedule", optimizers=("adamw",), n_per_group=2, cnn=cnn, seed=seed + 2),
    ]
    return write_results(root, pd.concat(frames, ignore_index=True))
