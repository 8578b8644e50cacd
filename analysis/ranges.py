"""Good ranges of lr, wd and lr·wd per arm: pycls's estimator (``pycls.sweep.analysis.
get_filters``).

pycls draws B random subsets of 25% of an arm's trials (with replacement, as
``np.random.choice(n, n_sample)`` does), keeps the best trial of each, and reports the
2.5, 50 and 97.5 percentiles of those best trials' log10 hyperparameter: where the best
trial of a quarter-size sweep lands. Its width in decades, log10(hi / lo), says how much
room the recipe leaves: narrower = more sensitive.

Two things differ from pycls, both to make the table a function of the data alone: the
trials are put in a data-derived order first (error, then lr, wd, sample, trial id), so
the positions the subsets draw, and hence which of several tied trials a subset's best is,
do not depend on the row order of ``trials.csv``; and the subsets are drawn from a seeded
``RandomState`` (pycls uses the global one). Given that order and seed the numbers are
pycls's exactly (tests/test_analysis.py re-implements ``get_filters`` from pycls's code
and compares).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import stats

SAMPLE = 0.25  # pycls's sample: the subset size as a fraction of the arm's trials
ALPHA = 5  # pycls's alpha: the 2.5 / 50 / 97.5 percentiles
N_SUBSETS = 2500  # pycls's b
PARAMS = ("lr", "wd", "lrwd")  # lrwd = lr * wd (pycls's aug.lr_wd)
ORDER = ["err", "lr", "wd", "sample", "trial_id"]  # the data-derived order of trials


def subset_size(n: int, sample: float = SAMPLE) -> int:
    """pycls's n_sample: ``int(sample)`` trials when sample > 1, else max(1, int(n sample))."""
    return int(sample) if sample > 1 else max(1, int(n * sample))


def best_of_subsets(errors: np.ndarray, seed: int = 0, n_subsets: int = N_SUBSETS,
                    sample: float = SAMPLE) -> np.ndarray:
    """Positions of the best trial of each of ``n_subsets`` random subsets (drawn with
    replacement) of trials in data order (``in_data_order``). A tie goes to the tied trial
    drawn first, as ``np.argmin`` does in pycls: the draws are seeded and the positions
    come from the data, so the result does too, and no tied trial is favoured (the lowest
    position would always pick the lowest lr of a tie, and narrow the range)."""
    n = len(errors)
    draws = np.random.RandomState(seed).choice(n, (n_subsets, subset_size(n, sample)))
    return draws[np.arange(n_subsets), np.argmin(errors[draws], axis=1)]


def in_data_order(g: pd.DataFrame) -> pd.DataFrame:
    """``g`` sorted by error, then lr, wd, sample and trial id: no row-order dependence."""
    return g.sort_values([c for c in ORDER if c in g], kind="stable")


def good_range(log_values: np.ndarray, best: np.ndarray,
               alpha: float = ALPHA) -> tuple[float, float, float]:
    """(lo, median, hi): pycls's percentiles of the subsets' best trials' log10 values."""
    lo, med, hi = np.percentile(log_values[best], [alpha / 2, 50, 100 - alpha / 2])
    return float(lo), float(med), float(hi)


def good_ranges(frame: pd.DataFrame, keys: list[str], seed: int = 0,
                n_subsets: int = N_SUBSETS) -> pd.DataFrame:
    """Per lr/wd-study arm and parameter (the ``good_range.csv`` table): n, subset_size (trials
    per subset), lo, median, hi (the 2.5/50/97.5 percentiles of the best trial of random
    25% subsets, back on the linear scale), decades = log10(hi/lo), and best (the value
    at the arm's best trial)."""
    info = stats.group_info(keys)
    rows = []
    for _, g in frame[stats.lrwd_mask(frame)].groupby(keys, sort=False):
        g = in_data_order(g)
        best = best_of_subsets(g["err"].to_numpy(), seed, n_subsets)
        values = {"lr": g["lr"].to_numpy(), "wd": g["wd"].to_numpy()}
        values["lrwd"] = values["lr"] * values["wd"]
        for param in PARAMS:
            if not np.all(values[param] > 0):
                continue  # wd = 0 has no log: no range in decades
            lo, med, hi = good_range(np.log10(values[param]), best)
            row = {c: g[c].iloc[0] for c in info}
            row.update(param=param, n=len(g), subset_size=subset_size(len(g)), lo=10**lo,
                       median=10**med, hi=10**hi, decades=hi - lo,
                       best=float(values[param][0]))
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    return stats.ordered(pd.DataFrame(rows), stats.size_order(frame))
