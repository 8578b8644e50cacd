"""Training curves: per arm, the best, median and worst trial's errors and training loss
per epoch, and which trials stalled at chance or diverged.

A final error near the chance level has two causes that look alike in ``trials.csv``: a
model that never learns (training loss stays at ln C for C classes, the loss of a uniform
guess) and one that learns and then blows up (``diverged``). ``curves.csv`` tells them
apart, so every sweep's curves are read beside its ``trials.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import ranges, stats
from sweep.columns import CURVE_COLUMNS

CURVES_FILE = "curves.csv"
ROLES = ("best", "median", "worst")
STALL_TOL = 0.03  # a final training loss within 3% of ln C counts as stalled at chance
SHOWN = ("lr_wd", "tune")  # studies of many settings: best/median/worst means something


def read_curves(files: list[Path]) -> pd.DataFrame:
    """Every ``curves.csv`` beside the given ``trials.csv`` files (missing ones skipped),
    numbers coerced, a repeated (sweep, trial, epoch) kept once (its last row)."""
    parts = []
    for trials in files:
        path = Path(trials).parent / CURVES_FILE
        if not path.is_file():
            continue
        try:
            part = pd.read_csv(path, dtype={"sweep": str, "trial_id": str},
                               on_bad_lines="skip")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
                OSError):
            continue  # curves are an extra: an unreadable file costs its figure only
        if set(CURVE_COLUMNS) <= set(part.columns):
            parts.append(part[CURVE_COLUMNS])
    if not parts:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    for col in CURVE_COLUMNS[2:]:
        out[col] = pd.to_numeric(out[col], errors="coerce")
    out = out.dropna(subset=["epoch"]).drop_duplicates(["sweep", "trial_id", "epoch"],
                                                       keep="last")
    return out.sort_values(["sweep", "trial_id", "epoch"]).reset_index(drop=True)


def chance_loss(chance_error: pd.Series) -> pd.Series:
    """ln C, the cross-entropy of a uniform guess over C = 100 / (100 - chance) classes."""
    return np.log(100.0 / (100.0 - chance_error.astype(float)))


def trial_states(frame: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Per trial with curves: final_loss, chance_loss, stalled (final training loss
    within STALL_TOL of ln C and not diverged) and diverged."""
    last = curves.groupby(["sweep", "trial_id"], sort=False).last()[["train_loss"]]
    states = frame[["sweep", "trial_id", "diverged", "chance_error"]].join(
        last.rename(columns={"train_loss": "final_loss"}), on=["sweep", "trial_id"],
        how="inner")
    states["chance_loss"] = chance_loss(states["chance_error"])
    near = (states["final_loss"] - states["chance_loss"]).abs() <= STALL_TOL * states[
        "chance_loss"]
    states["stalled"] = near & ~states["diverged"]
    return states


def _arms(frame: pd.DataFrame, keys: list[str]):
    """The arms of the studies whose curves are shown, each in data order."""
    shown = frame[frame["study"].isin(SHOWN)]
    for _, g in shown.groupby(keys, sort=False):
        yield ranges.in_data_order(g)


def picked(g: pd.DataFrame) -> dict[str, pd.Series]:
    """The best, median (lower middle) and worst trial of an arm in data order."""
    n = len(g)
    return {"best": g.iloc[0], "median": g.iloc[(n - 1) // 2], "worst": g.iloc[n - 1]}


def curve_table(frame: pd.DataFrame, keys: list[str], curves: pd.DataFrame) -> pd.DataFrame:
    """Per arm of an lr/wd or tune study, the epochs of its best, median and worst trial
    (the ``training_curves.csv`` table): group info, role, trial_id, lr, wd, err (the
    trial's result), diverged, epoch, error, ema_error, train_loss and chance_loss (ln C)."""
    if curves.empty:
        return pd.DataFrame()
    info = stats.group_info(keys)
    by_trial = {k: g for k, g in curves.groupby(["sweep", "trial_id"], sort=False)}
    parts = []
    for g in _arms(frame, keys):
        for role, t in picked(g).items():
            epochs = by_trial.get((t["sweep"], t["trial_id"]))
            if epochs is None:
                continue
            part = epochs[["epoch", "error", "ema_error", "train_loss"]].assign(
                role=role, trial_id=t["trial_id"], lr=t["lr"], wd=t["wd"], err=t["err"],
                diverged=t["diverged"], chance_loss=float(np.log(
                    100.0 / (100.0 - float(t["chance_error"])))),
                **{c: t[c] for c in info})
            parts.append(part)
    if not parts:
        return pd.DataFrame()
    cols = info + ["role", "trial_id", "lr", "wd", "err", "diverged", "epoch", "error",
                   "ema_error", "train_loss", "chance_loss"]
    return pd.concat(parts, ignore_index=True)[cols]


def stall_table(frame: pd.DataFrame, keys: list[str], curves: pd.DataFrame) -> pd.DataFrame:
    """Per arm of an lr/wd or tune study (the ``stalls.csv`` table): n, with_curves,
    stalled (final training loss at ln C: never learned), diverged, and the final
    training loss of its best, median and worst trial."""
    if curves.empty:
        return pd.DataFrame()
    states = trial_states(frame, curves).set_index(["sweep", "trial_id"])
    info = stats.group_info(keys)
    rows = []
    for g in _arms(frame, keys):
        ids = list(zip(g["sweep"], g["trial_id"], strict=True))
        here = states.reindex(ids).dropna(subset=["final_loss"])
        row = {c: g[c].iloc[0] for c in info}
        row.update(n=len(g), with_curves=len(here), stalled=int(here["stalled"].sum()),
                   diverged=int(g["diverged"].sum()),
                   chance_loss=float(chance_loss(g["chance_error"].iloc[:1]).iloc[0]))
        for role, t in picked(g).items():
            key = (t["sweep"], t["trial_id"])
            row[f"loss_{role}"] = states.at[key, "final_loss"] if key in states.index \
                else np.nan
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    return stats.ordered(pd.DataFrame(rows), stats.size_order(frame))
