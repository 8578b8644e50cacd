"""Expected best error after n random lr/wd trials (Dodge et al. 2019, *Show Your Work*).

For a group's N errors sorted ascending, e_(1) <= ... <= e_(N), the best of n trials drawn
without replacement has expectation  sum_i C(N-i, n-1) / C(N, n) * e_(i)  (e_(i) is the
minimum when it is drawn and the other n-1 come from the N-i worse ones). The ±1σ band is
from the with-replacement form: the minimum of n draws from the empirical distribution is
e_(i) with probability ((N-i+1)/N)^n - ((N-i)/N)^n. Binomials are taken as logs (gammaln),
so N in the thousands is exact and stable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from analysis import stats

ALL_N_UPTO = 512  # every n = 1..N up to this N; beyond it a log-spaced grid of n
GRID_POINTS = 256


def n_grid(N: int) -> np.ndarray:
    """The n at which a group of N trials is evaluated: 1..N, or a log-spaced grid (with 1
    and N) when N > ALL_N_UPTO, which keeps the cost at O(GRID_POINTS * N)."""
    if N <= ALL_N_UPTO:
        return np.arange(1, N + 1)
    grid = np.round(np.geomspace(1, N, GRID_POINTS)).astype(int)
    return np.unique(np.r_[grid, N])


def _log_binom(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log C(a, b), -inf where b > a."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    out = np.full(a.shape, -np.inf)
    ok = (b >= 0) & (b <= a)
    out[ok] = gammaln(a[ok] + 1) - gammaln(b[ok] + 1) - gammaln(a[ok] - b[ok] + 1)
    return out


def expected_min(errors: np.ndarray, ns: np.ndarray) -> tuple[np.ndarray, ...]:
    """(E without replacement, E with replacement, σ with replacement) of the minimum of
    n trials, for each n in ``ns``."""
    e = np.sort(np.asarray(errors, dtype=float))
    N, i = len(e), np.arange(1, len(e) + 1)
    n = np.asarray(ns, dtype=float)[:, None]
    weights = np.exp(_log_binom(N - i, n - 1) - _log_binom(N, n))
    without = weights @ e
    p = ((N - i + 1) / N) ** n - ((N - i) / N) ** n
    with_mean = p @ e
    var = np.maximum(p @ (e * e) - with_mean**2, 0.0)
    return without, with_mean, np.sqrt(var)


def expected_curves(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per lr/wd-study group (arm): n_trials, expected (without replacement),
    expected_wr and sd_wr (with replacement), band lo/hi = expected_wr ∓ sd_wr, N."""
    info = stats.group_info(keys)
    parts = []
    for _, g in frame[stats.lrwd_mask(frame)].groupby(keys, sort=False):
        errors = g["err"].to_numpy()
        ns = n_grid(len(errors))
        without, with_mean, sd = expected_min(errors, ns)
        part = pd.DataFrame({"N": len(errors), "n_trials": ns, "expected": without,
                             "expected_wr": with_mean, "sd_wr": sd, "lo": with_mean - sd,
                             "hi": with_mean + sd})
        parts.append(part.assign(**{c: g[c].iloc[0] for c in info})[info + list(part)])
    if not parts:
        return pd.DataFrame()
    return stats.ordered(pd.concat(parts, ignore_index=True), stats.size_order(frame),
                         last=("n_trials",))


def trials_to_within(curve: pd.DataFrame, points: float = 1.0) -> int:
    """The fewest trials whose expected best is within ``points`` of the best found (the
    expectation at n = N is the best of all N)."""
    target = curve["expected"].iloc[-1] + points
    return int(curve.loc[curve["expected"] <= target, "n_trials"].iloc[0])
