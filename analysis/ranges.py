"""Good ranges of lr, wd and lr·wd per arm (the sweep analysis of pycls).

An arm's good range of a hyperparameter is the interval spanned by its best 25% of
trials; its width in decades, log10(hi / lo), says how much room the recipe leaves:
narrower = more sensitive, less stable. Each end gets a 95% percentile bootstrap interval
(trials resampled with replacement, the best 25% taken again), so two widths can be
compared with their uncertainty in view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import stats

TOP = 0.25
N_RESAMPLES = 200  # bootstrap resamples per arm, shared by its three parameters; fewer
MAX_DRAWS = 1_500_000  # (down to MIN_RESAMPLES) when resamples x trials would exceed this
MIN_RESAMPLES = 100
PARAMS = ("lr", "wd", "lrwd")  # lrwd = lr * wd


def top_count(n: int, top: float = TOP) -> int:
    """How many trials make the best ``top`` fraction of n (at least one)."""
    return max(1, int(np.ceil(top * n)))


def good_range(values: np.ndarray, errors: np.ndarray, top: float = TOP) -> tuple[float, float]:
    """(lo, hi) of ``values`` over the best ``top`` fraction of trials by error (ties kept
    in their order)."""
    best = np.argsort(errors, kind="stable")[:top_count(len(errors), top)]
    return float(values[best].min()), float(values[best].max())


def _bootstrap_ends(values: np.ndarray, errors: np.ndarray, rng: np.random.Generator,
                    n_resamples: int) -> np.ndarray:
    """[[lo low, lo high], [hi low, hi high]] per parameter column of ``values`` (N, P):
    95% percentile intervals of the range's ends over resamples."""
    n = len(errors)
    k = top_count(n)
    n_resamples = min(n_resamples, max(MIN_RESAMPLES, MAX_DRAWS // n))  # the cost cap
    idx = rng.integers(0, n, (n_resamples, n))
    best = np.take_along_axis(idx, np.argpartition(errors[idx], k - 1, axis=1)[:, :k], 1)
    chosen = values[best]  # (resamples, k, P)
    ends = np.stack([chosen.min(axis=1), chosen.max(axis=1)], axis=1)  # (resamples, 2, P)
    return np.quantile(ends, [0.025, 0.975], axis=0).transpose(2, 1, 0)  # (P, 2, 2)


def good_ranges(frame: pd.DataFrame, keys: list[str], seed: int = 0,
                n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """Per lr/wd-study arm and parameter: n, top (trials in the best 25%), lo, hi,
    decades = log10(hi/lo), and 95% bootstrap intervals of the ends (lo_low, lo_high,
    hi_low, hi_high) (the ``good_range.csv`` table)."""
    info = stats.group_info(keys)
    rows = []
    rng = np.random.default_rng(seed)
    for _, g in frame[stats.lrwd_mask(frame)].groupby(keys, sort=False):
        errors = g["err"].to_numpy()
        values = np.column_stack([g["lr"], g["wd"], g["lr"] * g["wd"]])
        ci = _bootstrap_ends(values, errors, rng, n_resamples) if len(g) > 1 else None
        for p, param in enumerate(PARAMS):
            lo, hi = good_range(values[:, p], errors)
            row = {c: g[c].iloc[0] for c in info}
            row.update(param=param, n=len(g), top=top_count(len(g)), lo=lo, hi=hi,
                       decades=float(np.log10(hi / lo)) if lo > 0 else np.nan)
            if ci is not None:
                row.update(lo_low=ci[p, 0, 0], lo_high=ci[p, 0, 1], hi_low=ci[p, 1, 0],
                           hi_high=ci[p, 1, 1])
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    return stats.ordered(pd.DataFrame(rows), stats.size_order(frame))
