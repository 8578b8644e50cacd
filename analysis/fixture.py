"""Fake but realistic sweep results, in the exact ``trials.csv``/``curves.csv`` format.

Tests, the benchmark and the notebook need results before any real sweep has run. The
generator mimics the paper's findings so figures look like the real thing: ViT_P is worse
and more sensitive to lr/wd than ViT_C, SGD hurts ViT_P far more than ViT_C, ViT_P diverges
more often at high lr, and short schedules cost ViT_P more than ViT_C.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TRIAL_COLUMNS = [
    "sweep", "trial_id", "model", "stem", "gflops", "params", "optimizer", "lr", "wd",
    "epochs", "batch_size", "seed", "status", "diverged", "error", "ema_error", "best_error",
    "wall_s",
]
CURVE_COLUMNS = [
    "sweep", "trial_id", "epoch", "train_loss", "error", "ema_error", "lr", "images_per_s",
    "elapsed_s",
]
CHANCE_ERROR = 99.9  # 1000 classes

# Tuned lr/wd (PAPER.md, batch 2048) and the lr/wd study's log-uniform intervals.
TUNED = {"adamw": (2.0e-3, 0.20), "sgd": (1.9, 1.3e-5)}
INTERVAL = {"adamw": ((2.5e-4, 8.0e-3), (0.02, 0.8)), "sgd": ((0.1, 3.2), (4.0e-6, 1.2e-4))}
# Error at the optimum after 400 epochs, per (size, stem, optimizer).
BASE = {
    ("tiny", "patchify", "adamw"): 27.7, ("tiny", "patchify", "sgd"): 33.5,
    ("tiny", "conv", "adamw"): 24.7, ("tiny", "conv", "sgd"): 25.3,
    ("4gf", "patchify", "adamw"): 19.6, ("4gf", "patchify", "sgd"): 24.9,
    ("4gf", "conv", "adamw"): 18.6, ("4gf", "conv", "sgd"): 19.2,
}
# Quadratic penalty per log2 step away from the optimum, and the log2(lr/lr*) at which
# half of the trials diverge: ViT_P is the touchy one, SGD makes it worse.
SENSITIVITY = {("patchify", "adamw"): 1.6, ("patchify", "sgd"): 2.6,
               ("conv", "adamw"): 0.6, ("conv", "sgd"): 0.8}
DIVERGE_AT = {("patchify", "adamw"): 1.7, ("patchify", "sgd"): 1.1,
              ("conv", "adamw"): 2.6, ("conv", "sgd"): 2.4}
LENGTH_GAP_50 = {"patchify": 10.0, "conv": 6.0}  # points behind 400 epochs at 50 epochs
FLOPS = {("tiny", "patchify"): (1.1, 4.8e6), ("tiny", "conv"): (1.1, 4.6e6),
         ("4gf", "patchify"): (3.9, 18.5e6), ("4gf", "conv"): (4.0, 17.8e6)}
STUDIES = ("lrwd", "optimizer", "length")


def make_trials(
    study: str = "lrwd",
    *,
    sizes: tuple[str, ...] = ("tiny", "4gf"),
    stems: tuple[str, ...] = ("patchify", "conv"),
    optimizers: tuple[str, ...] = ("adamw", "sgd"),
    n_per_group: int = 32,
    epochs: tuple[int, ...] | None = None,
    batch_size: int = 2048,
    sweep: str | None = None,
    n_unfinished: int = 0,
    n_nan_diverged: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """One sweep's trial rows for ``study`` ("lrwd", "optimizer" or "length").

    "lrwd" samples ``n_per_group`` log-uniform (lr, wd) pairs per model and optimizer at 50
    epochs; "optimizer" repeats the tuned lr/wd over ``n_per_group`` seeds; "length" does
    the same for each of ``epochs`` (default 50, 100, 200, 400). ``n_unfinished`` extra
    rows are running/pending/failed and ``n_nan_diverged`` diverged rows lose their errors,
    as a crashed writer would leave them.
    """
    if study not in STUDIES:
        raise ValueError(f"study must be one of {STUDIES}, not {study!r}")
    rng = np.random.default_rng(seed)
    if epochs is None:
        epochs = (50, 100, 200, 400) if study == "length" else (50,)
    combos = [(sz, st, op, ep) for sz in sizes for st in stems for op in optimizers
              for ep in epochs]
    n = n_per_group
    size, stem, opt, ep = (np.repeat(np.array(c), n) for c in zip(*combos, strict=True))
    ep = ep.astype(int)
    total = len(size)
    if study == "lrwd":
        lo_lr = np.array([INTERVAL[o][0][0] for o in opt])
        hi_lr = np.array([INTERVAL[o][0][1] for o in opt])
        lo_wd = np.array([INTERVAL[o][1][0] for o in opt])
        hi_wd = np.array([INTERVAL[o][1][1] for o in opt])
        lr = np.exp(rng.uniform(np.log(lo_lr), np.log(hi_lr)))
        wd = np.exp(rng.uniform(np.log(lo_wd), np.log(hi_wd)))
        seeds = np.arange(total)
    else:
        lr = np.array([TUNED[o][0] for o in opt])
        wd = np.array([TUNED[o][1] for o in opt])
        seeds = np.tile(np.arange(n), len(combos))
    lr_star = np.array([TUNED[o][0] for o in opt])
    wd_star = np.array([TUNED[o][1] for o in opt])
    dlr, dwd = np.log2(lr / lr_star), np.log2(wd / wd_star)
    sens = np.array([SENSITIVITY[s, o] for s, o in zip(stem, opt, strict=True)])
    div_at = np.array([DIVERGE_AT[s, o] for s, o in zip(stem, opt, strict=True)])
    base = np.array([BASE[z, s, o] for z, s, o in zip(size, stem, opt, strict=True)])
    gap50 = np.array([LENGTH_GAP_50[s] for s in stem])
    best = (base + gap50 * (400 / ep - 1) / 7 + sens * (dlr**2 + 0.5 * dwd**2)
            + rng.gamma(2.0, 0.25, total))
    diverged = rng.random(total) < 1 / (1 + np.exp(-3 * (dlr + 0.3 * dwd - div_at)))
    best = np.where(diverged, CHANCE_ERROR, np.minimum(best, CHANCE_ERROR))
    ema = np.minimum(best + rng.exponential(0.15, total), CHANCE_ERROR)
    flops = np.array([FLOPS.get((z, s), (1.0, 1e6)) for z, s in zip(size, stem, strict=True)])
    prefix = np.where(stem == "patchify", "vitp", np.where(stem == "conv", "vitc", stem))
    name = sweep or f"fixture_{study}"
    frame = pd.DataFrame({
        "sweep": name,
        "trial_id": [f"t{i:06d}" for i in range(total)],
        "model": np.char.add(np.char.add(prefix, "_"), size),
        "stem": stem,
        "gflops": flops[:, 0],
        "params": flops[:, 1].astype(int),
        "optimizer": opt,
        "lr": lr,
        "wd": wd,
        "epochs": ep,
        "batch_size": batch_size,
        "seed": seeds,
        "status": "done",
        "diverged": diverged,
        "error": np.minimum(ema + 0.2, CHANCE_ERROR),
        "ema_error": ema,
        "best_error": best,
        "wall_s": np.round(ep * flops[:, 0] * 30 * rng.uniform(0.9, 1.1, total), 1),
    })
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
    return frame[TRIAL_COLUMNS]


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


def write_example(root: Path | str, *, n_per_group: int = 24, seed: int = 0) -> list[Path]:
    """A small results folder with all three studies, as a sweep would leave it."""
    frames = [
        make_trials("lrwd", n_per_group=n_per_group, n_unfinished=3, n_nan_diverged=1,
                    seed=seed),
        make_trials("optimizer", n_per_group=3, seed=seed + 1),
        make_trials("length", optimizers=("adamw",), n_per_group=2, seed=seed + 2),
    ]
    return write_results(root, pd.concat(frames, ignore_index=True))
