"""What a sweep's sample size can resolve, and where a larger sweep of the same arms is.

A small sweep that finds no difference has not shown two arms equal: its n may be too
small to see a difference of the size that matters. For every lr/wd-study comparison
(the arms ``stats.stem_pairs`` picks for the KS and paired tables) this module computes,
from the trial counts alone: the smallest EDF gap for which ``scipy.stats.ks_2samp``
gives p < α, each EDF's DKW band, the fewest shared draws that must go one way for
``scipy.stats.wilcoxon`` to give p < α, and how far each arm's best error moves between
re-runs. Both tests are inverted by feeding scipy samples built to have a chosen
statistic, so the thresholds are the ones the report's own p-values use.

``larger_sweeps`` then looks beside each analysed sweep folder for sibling sweeps
(``<parent>/<other>/trials.csv``, read only) that hold the same arms with more trials.
"""

from __future__ import annotations

import math
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis import edf as E
from analysis import expected, load, paired, stats
from analysis.errors import AnalysisError

ALPHA = 0.05
KS_EXACT_UPTO = 10_000  # ks_2samp's own 'auto' rule: exact when both arms have <= this
# What makes two comparisons the same pair of arms (the size comes with the models).
ARMS = ["model_a", "model_b", "study", "data", "optimizer", "epochs", "batch_size"]


def ks_method(n_a: int, n_b: int) -> str:
    """The method ``ks_2samp`` picks by default for these sizes: 'exact' or 'asymp'."""
    return "exact" if max(n_a, n_b) <= KS_EXACT_UPTO else "asymp"


def _ks_p(i: int, j: int, n_a: int, n_b: int) -> float:
    """``ks_2samp``'s p-value for the gap D = i/n_a - j/n_b. Its p depends on D and the
    sizes only, so two samples with that D stand in for any: i of a's and j of b's
    values at 0, the rest at 1."""
    a = np.r_[np.zeros(i), np.ones(n_a - i)]
    b = np.r_[np.zeros(j), np.ones(n_b - j)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's switch to asymp when exact fails
        return float(sps.ks_2samp(a, b, method=ks_method(n_a, n_b)).pvalue)


def _gap_at_least(h: int, n_a: int, n_b: int) -> tuple[int, int, int]:
    """The smallest attainable gap i/n_a - j/n_b >= h / lcm(n_a, n_b), as (its numerator
    over lcm, i, j). Integer arithmetic: gap * lcm = i * n_b/g - j * n_a/g, g = gcd."""
    g = math.gcd(n_a, n_b)
    step_i, step_j = n_b // g, n_a // g
    i = np.arange(n_a + 1, dtype=np.int64)
    j = (i * step_i - h) // step_j  # the largest j whose gap is still >= h
    ok = j >= 0
    num = i[ok] * step_i - j[ok] * step_j
    k = int(np.argmin(num))
    return int(num[k]), int(i[ok][k]), int(j[ok][k])


@lru_cache(maxsize=256)
def ks_min_gap(n_a: int, n_b: int, alpha: float = ALPHA) -> float:
    """The smallest EDF gap (KS statistic) that ``ks_2samp`` flags with p < ``alpha`` at
    these sizes; NaN when not even a gap of 1 does. Bisection over the gaps the two
    sizes can produce (the p-value falls as the gap grows)."""
    lcm = n_a * n_b // math.gcd(n_a, n_b)

    def flags(h: int) -> bool:
        _, i, j = _gap_at_least(h, n_a, n_b)
        return _ks_p(i, j, n_a, n_b) < alpha

    if min(n_a, n_b) < 1 or not flags(lcm):
        return float("nan")
    lo, hi = 0, lcm  # flags(hi) holds; flags(lo) does not (a zero gap never does)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if flags(mid) else (mid, hi)
    return _gap_at_least(hi, n_a, n_b)[0] / lcm


def _signed(n: int, t: int) -> np.ndarray:
    """Differences with magnitudes 1..n (no ties, no zeros) whose negative ones have the
    rank sum ``t`` (any t up to n(n+1)/2: taken greedily from the largest rank)."""
    d = np.arange(1, n + 1, dtype=float)
    for r in range(n, 0, -1):
        if r <= t:
            d[r - 1], t = -d[r - 1], t - r
    return d


def wilcoxon_p_at(n: int, t: int) -> float:
    """``scipy.stats.wilcoxon``'s two-sided p for n distinct non-zero differences whose
    minority side has the signed-rank sum ``t`` (exact up to 50 pairs, as scipy picks)."""
    return float(sps.wilcoxon(_signed(n, t)).pvalue)


@lru_cache(maxsize=256)
def wilcoxon_max_minority(n: int, alpha: float = ALPHA) -> int | None:
    """The largest rank sum of the differences going the other way that still gives
    p < ``alpha`` with n pairs; None when no outcome does (e.g. n <= 5 at 0.05)."""
    if n < 1 or not wilcoxon_p_at(n, 0) < alpha:
        return None
    lo, hi = 0, n * (n + 1) // 4  # p < alpha at lo; p rises with t up to half the total
    if wilcoxon_p_at(n, hi) < alpha:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if wilcoxon_p_at(n, mid) < alpha else (lo, mid)
    return lo


def fewest_same_way(n: int, minority: int | None) -> int | None:
    """The fewest of n draws that must go one way when the others' rank sum may be at
    most ``minority``: k draws the other way have a rank sum of at least k(k+1)/2."""
    if minority is None:
        return None
    k = int((math.isqrt(8 * minority + 1) - 1) // 2)  # the largest k with k(k+1)/2 <= it
    return n - k


def best_sd(errors: np.ndarray) -> float:
    """±1σ of the best of an arm's N draws (with replacement from its errors, as in the
    expected-best band): how far the best found would move in a re-run of N draws."""
    return float(expected.expected_min(errors, np.array([len(errors)]))[2][0])


def resolution_row(a: pd.DataFrame, b: pd.DataFrame, n_pairs: int,
                   alpha: float = ALPHA) -> dict:
    """The resolution of one comparison: arms a and b, ``n_pairs`` shared draws."""
    n_a, n_b = len(a), len(b)
    minority = wilcoxon_max_minority(n_pairs, alpha) if n_pairs else None
    same = fewest_same_way(n_pairs, minority)
    return {"n_a": n_a, "n_b": n_b, "n_pairs": n_pairs, "ks_method": ks_method(n_a, n_b),
            "ks_min_gap": ks_min_gap(n_a, n_b, alpha), "dkw_a": E.dkw_epsilon(n_a),
            "dkw_b": E.dkw_epsilon(n_b),
            "wilcoxon_best_p": wilcoxon_p_at(n_pairs, 0) if n_pairs else np.nan,
            "wilcoxon_max_minority": np.nan if minority is None else minority,
            "wilcoxon_min_same_way": np.nan if same is None else same,
            "best_sd_a": best_sd(a["err"].to_numpy()), "best_sd_b": best_sd(b["err"].to_numpy())}


def resolution_table(frame: pd.DataFrame, keys: list[str],
                     alpha: float = ALPHA) -> pd.DataFrame:
    """Per lr/wd-study comparison (the arms of ``ks.csv``/``paired.csv``): what its n can
    resolve (the ``resolution.csv`` table; columns in ``resolution_row``)."""
    lrwd = frame[stats.lrwd_mask(frame)]
    shared_draws = paired.sampled(frame, keys)
    rows = []
    for shared, model_a, model_b in stats.stem_pairs(lrwd, keys):
        a, b = stats._arms(lrwd, shared, model_a, model_b)
        m = paired.join_arms(*stats._arms(shared_draws, shared, model_a, model_b))
        rows.append({**shared, "stem_a": a["stem"].iloc[0], "stem_b": b["stem"].iloc[0],
                     "model_a": model_a, "model_b": model_b,
                     **resolution_row(a, b, len(m), alpha)})
    if not rows:
        return pd.DataFrame()
    counts = {"wilcoxon_max_minority": "Int64", "wilcoxon_min_same_way": "Int64"}
    return stats.ordered(pd.DataFrame(rows).astype(counts), stats.size_order(frame))


def sibling_sweeps(files: list[Path]) -> list[tuple[Path, Path]]:
    """(analysed sweep folder, sibling folder) for every folder beside an analysed one
    that holds a ``trials.csv`` and was not analysed itself; each sibling once."""
    here = {Path(f).resolve().parent for f in files}
    found: dict[Path, Path] = {}
    for folder in sorted(here):
        try:
            beside = sorted(p for p in folder.parent.iterdir() if p.is_dir())
        except OSError:
            continue
        for other in beside:
            if other not in here and other not in found and (other / load.TRIALS_FILE).is_file():
                found[other] = folder
    return [(folder, other) for other, folder in found.items()]


def _sibling_table(folder: Path, other: Path, alpha: float) -> pd.DataFrame:
    """The resolution table of the sibling ``other`` (its trials.csv only), with where it
    is relative to ``folder``; empty when it holds no usable lr/wd trials."""
    try:
        results = load.load_results([other / load.TRIALS_FILE])
    except AnalysisError:
        return pd.DataFrame()  # unreadable or nothing finished: nothing to point to
    table = resolution_table(results.frame, results.keys, alpha)
    if table.empty:
        return table
    return table.assign(folder=os.path.relpath(other, folder), beside=folder.name)


def larger_sweeps(resolution: pd.DataFrame, files: list[Path],
                  alpha: float = ALPHA) -> pd.DataFrame:
    """Sibling sweeps that hold a compared pair of arms (same models, study, data,
    optimizer, epochs, batch size) with more finished trials than ``resolution`` (both arms
    at least as many, more in all): their resolution rows, with ``folder`` (the sibling's
    path relative to the analysed sweep folder, ``beside``). Empty when there is none."""
    if resolution.empty:
        return pd.DataFrame()
    here = resolution[ARMS + ["n_a", "n_b"]].rename(
        columns={"n_a": "n_a_here", "n_b": "n_b_here"})
    parts = []
    for folder, other in sibling_sweeps(files):
        there = _sibling_table(folder, other, alpha)
        if there.empty:
            continue
        m = there.merge(here, on=ARMS)
        more = ((m["n_a"] >= m["n_a_here"]) & (m["n_b"] >= m["n_b_here"])
                & (m["n_a"] + m["n_b"] > m["n_a_here"] + m["n_b_here"]))
        parts.append(m[more])
    found = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return found if not found.empty else pd.DataFrame()
