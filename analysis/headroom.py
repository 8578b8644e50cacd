"""Room to chance: each lr/wd arm's Δerror as a share of its distance from chance, and the
study's validity gate (the ``headroom.csv`` table).

A Δ-EDF alone cannot tell stability from a floor: an arm whose draws all sit near chance
has no room to spread, so its Δ looks small (the synthetic study's ViT_P with AdamW).
Dividing Δ by the arm's room, chance − best, puts arms that learned to different depths on
one scale (0 = the arm's best, 1 = chance). The gate says whether an lr/wd study can carry
a Δ-EDF comparison at all: every arm learned (best at most ``max_best``, when given), few
draws sit near chance, and each arm's best draw has its lr inside the searched interval
rather than at an edge, where a wider interval might have found a better one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis import edf as E

NORM_WITHIN = (0.1, 0.25, 0.5)  # shares of the room for the "within" columns
NEAR_CHANCE_POINTS = 5.0  # a draw within this many points of chance counts as at chance
MAX_NEAR_CHANCE = 0.10  # the gate: fewer than this share of an arm's draws at chance
LR_MIDDLE = 0.8  # the gate: the best draw's log-lr in the middle 80% of the interval


def with_room(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame`` plus delta (``edf.with_delta``), room (chance − the group's best) and
    delta_norm = delta / room (empty where the best is at chance: no room to share)."""
    frame = E.with_delta(frame, keys)
    best = frame.groupby(keys, sort=False)["err"].transform("min")
    room = frame["chance_error"].astype(float) - best
    return frame.assign(room=room, delta_norm=(frame["delta"] / room).where(room > 0))


def lr_position(lr: float, lo: float, hi: float) -> float:
    """Where ``lr`` lies in [lo, hi] on a log scale: 0 at lo, 1 at hi."""
    return (math.log(lr) - math.log(lo)) / (math.log(hi) - math.log(lo))


def headroom_table(frame: pd.DataFrame, keys: list[str], search: dict[tuple, tuple],
                   max_best: float | None = None) -> pd.DataFrame:
    """Per lr/wd-study group: the room to chance, Δ as a share of it, and the gate.

    ``search`` maps (sweep, optimizer) to the declared lr interval (``load.read_search``);
    an arm without one is placed in its trials' own lr range (lr_source "observed").
    Columns: group info, n, chance, best, room, median_delta, median_delta_norm,
    within_norm_<s> (share of draws with Δ < s × room), auc_norm (area under the
    normalised Δ-EDF on [0, 1]; 1 = every draw at the best), near_chance_frac (draws
    within NEAR_CHANCE_POINTS of chance), best_lr, lr_lo, lr_hi, lr_source,
    best_lr_position (0..1 on log lr), and the gate's parts best_ok (empty without
    ``max_best``), near_ok, lr_ok and gate (all that apply hold).
    """
    from analysis import stats

    lrwd = frame[stats.lrwd_mask(frame)]
    if lrwd.empty:
        return pd.DataFrame()
    lrwd = with_room(lrwd, keys)
    edge = (1 - LR_MIDDLE) / 2
    rows = []
    for _, g in lrwd.groupby(keys, sort=False):
        top = g.loc[g["err"].idxmin()]
        chance, room = float(top["chance_error"]), float(top["room"])
        norm = g["delta_norm"].to_numpy(dtype=float)
        interval = search.get((top["sweep"], top["optimizer"]))
        lo, hi = interval if interval else (float(g["lr"].min()), float(g["lr"].max()))
        position = lr_position(float(top["lr"]), lo, hi) if hi > lo else float("nan")
        near = float(np.mean(g["err"] >= chance - NEAR_CHANCE_POINTS))
        row = {c: top[c] for c in stats.group_info(keys)}
        row.update(n=len(g), chance=chance, best=float(top["err"]), room=room,
                   median_delta=float(np.median(g["delta"])),
                   median_delta_norm=float(np.median(norm)) if room > 0 else np.nan)
        row.update({f"within_norm_{s:g}": float(np.mean(norm < s)) if room > 0 else np.nan
                    for s in NORM_WITHIN})
        best_ok = None if max_best is None else bool(top["err"] <= max_best)
        lr_ok = bool(edge <= position <= 1 - edge)
        near_ok = near < MAX_NEAR_CHANCE
        row.update(auc_norm=E.area_under(norm, 1.0) if room > 0 else np.nan,
                   near_chance_frac=near, best_lr=float(top["lr"]), lr_lo=lo, lr_hi=hi,
                   lr_source="config" if interval else "observed",
                   best_lr_position=position, best_ok=best_ok, near_ok=near_ok,
                   lr_ok=lr_ok, gate=near_ok and lr_ok and best_ok is not False)
        rows.append(row)
    return stats.ordered(pd.DataFrame(rows), stats.size_order(frame))


def gate_sentence(row: pd.Series | dict) -> str:
    """One arm's gate in words: which parts hold, with the numbers behind them."""
    from analysis import words

    parts = []
    if row["best_ok"] is not None and not pd.isna(row["best_ok"]):
        parts.append(f"best {row['best']:.1f}% ({'ok' if row['best_ok'] else 'FAILS'})")
    parts.append(f"{row['near_chance_frac']:.0%} of draws within {NEAR_CHANCE_POINTS:g} "
                 f"points of chance ({'ok' if row['near_ok'] else 'FAILS'}: < "
                 f"{MAX_NEAR_CHANCE:.0%})")
    parts.append(f"best lr {row['best_lr']:.3g} at {row['best_lr_position']:.2f} of the "
                 f"log interval [{row['lr_lo']:.3g}, {row['lr_hi']:.3g}] ("
                 f"{'ok' if row['lr_ok'] else 'FAILS'}: middle {LR_MIDDLE:.0%}"
                 + (", interval from the trials" if row["lr_source"] == "observed" else "")
                 + ")")
    verdict = "holds" if row["gate"] else "FAILS"
    return (f"Validity gate {verdict} for {row['model']} ({words.where(row)}): "
            + "; ".join(parts) + f". Room to chance {row['room']:.1f} points; median Δ "
            f"{row['median_delta']:.1f} points = {row['median_delta_norm']:.2f} of it.")
