"""Paired comparison of two arms on their shared lr/wd draws.

In an lr/wd study, sample k of every group maps the same point of the unit square into
that group's interval; ViT_P and ViT_C share the interval, so they train at identical
(lr, wd) at each k, and the CNN at the same quantiles of its own interval. Joining two
arms on (sweep, sample) removes the draw-to-draw variation that the unpaired KS test has to
live with: the per-sample difference err_b - err_a isolates the stem.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis import edf as E
from analysis import load, stats

JOIN = ["sweep", "sample"]
KEEP = ["err", "delta", "lr", "wd", "diverged"]


def join_arms(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows of arms a and b with the same (sweep, sample), in sample order (so a paired
    bootstrap draws by the data, not the file); columns ``<col>_a``/``<col>_b``."""
    m = a[JOIN + KEEP].merge(b[JOIN + KEEP], on=JOIN, suffixes=("_a", "_b"))
    return m.sort_values(JOIN, kind="stable").reset_index(drop=True)


def sampled(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """lr/wd-study trials with a sample index, with Δerror against their whole group;
    trials that share their arm's sample index are set aside (``load.repeated_samples``)."""
    lrwd = E.with_delta(frame[stats.lrwd_mask(frame)], keys)
    return lrwd[lrwd["sample"].notna() & ~load.repeated_samples(lrwd, keys)]


EXACT_UPTO = 50  # non-zero pairs up to which scipy's exact null distribution is used


def wilcoxon_p(diff: np.ndarray) -> tuple[float, float]:
    """(statistic, p) of ``scipy.stats.wilcoxon`` on the differences (already on the
    data's grid, so float noise makes no ranks); NaN when all are 0 or there are none.

    Up to EXACT_UPTO non-zero pairs scipy's exact distribution is used even with tied
    magnitudes, where scipy makes it conservative (it rounds a tied statistic towards
    the null): all 32 of 32 draws one way gives 2 / 2^32 = 4.7e-10, not the normal
    approximation's 8e-7 that ``method="auto"`` falls back to on ties.
    """
    if len(diff) == 0 or not np.any(diff != 0):
        return float("nan"), float("nan")
    method = "exact" if np.count_nonzero(diff) <= EXACT_UPTO else "asymptotic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zeros or ties: scipy notes its adjustments
        res = sps.wilcoxon(diff, method=method)
    return float(res.statistic), float(res.pvalue)


def _row(m: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame, n_resamples: int) -> dict:
    """The paired statistics of one joined pair of arms."""
    diff = E.on_grid(m["err_b"] - m["err_a"], pd.concat([m["err_a"], m["err_b"]]))
    stat, p = wilcoxon_p(diff)
    da, db = m["delta_a"].to_numpy(), m["delta_b"].to_numpy()
    no_ref = bool(a["diverged"].all() or b["diverged"].all())
    lo, hi = (np.nan, np.nan) if no_ref else stats.within_diff_ci(
        da, db, n_resamples, paired=True)
    same = np.isclose(m["lr_a"], m["lr_b"], rtol=1e-6) & np.isclose(m["wd_a"], m["wd_b"],
                                                                     rtol=1e-6)
    return {"n_pairs": len(m), "same_lr_wd": float(same.mean()),
            "diff_median": float(np.median(diff)), "diff_mean": float(np.mean(diff)),
            "b_lower": int((diff < 0).sum()), "wilcoxon_stat": stat, "wilcoxon_pvalue": p,
            "within_4_diff": np.nan if no_ref else float(np.mean(db < 4) - np.mean(da < 4)),
            "within_4_lo": lo, "within_4_hi": hi}


def paired_table(frame: pd.DataFrame, keys: list[str],
                 n_resamples: int = stats.N_RESAMPLES) -> pd.DataFrame:
    """ViT_P vs ViT_C (and ViT_C vs CNN) on shared draws (the ``paired.csv`` table).

    diff = err_b - err_a per sample (negative: b better); diff_median/diff_mean; b_lower:
    samples where b is lower; wilcoxon_pvalue: ``scipy.stats.wilcoxon`` signed-rank test;
    within_4_diff: fraction within 4 points of its arm's best, b minus a, with a paired
    bootstrap 95% interval (sample indices resampled jointly); same_lr_wd: fraction of
    pairs at identical (lr, wd) (1 for ViT_P/ViT_C, usually 0 against the CNN).
    """
    frame = sampled(frame, keys)
    rows = []
    for shared, model_a, model_b in stats.stem_pairs(frame, keys):
        a, b = stats._arms(frame, shared, model_a, model_b)
        m = join_arms(a, b)
        if m.empty:
            continue
        rows.append({**shared, "stem_a": a["stem"].iloc[0], "stem_b": b["stem"].iloc[0],
                     "model_a": model_a, "model_b": model_b, **_row(m, a, b, n_resamples)})
    if not rows:
        return pd.DataFrame()
    return stats.ordered(pd.DataFrame(rows), stats.size_order(frame))


def paired_points(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Joined rows of every compared pair (for the paired scatter figure), with the
    shared settings, stems and models as columns."""
    frame = sampled(frame, keys)
    parts = []
    for shared, model_a, model_b in stats.stem_pairs(frame, keys):
        a, b = stats._arms(frame, shared, model_a, model_b)
        m = join_arms(a, b)
        if not m.empty:
            parts.append(m.assign(**shared, stem_a=a["stem"].iloc[0], stem_b=b["stem"].iloc[0],
                                  model_a=model_a, model_b=model_b))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
