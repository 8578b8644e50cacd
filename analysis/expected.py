"""Expected best error after n random lr/wd trials (Dodge et al. 2019, *Show Your Work*).

For a group's N errors sorted ascending, e_(1) <= ... <= e_(N), the best of n trials drawn
without replacement has expectation  sum_i C(N-i, n-1) / C(N, n) * e_(i)  (e_(i) is the
minimum when it is drawn and the other n-1 come from the N-i worse ones). The ±1σ band is
the standard deviation under those same weights (allentune's without-replacement σ), so
it is centred on the curve it surrounds and closes to 0 at n = N, where every draw is
taken. The with-replacement form (the minimum of n draws from the empirical distribution
is e_(i) with probability ((N-i+1)/N)^n - ((N-i)/N)^n) is kept as expected_wr/sd_wr: it
says how far a re-run of n fresh draws would move. Binomials are taken as logs
(gammaln), so N in the thousands is exact and stable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from analysis import stats

ALL_N_UPTO = 512  # every n = 1..N up to this N; beyond it a log-spaced grid of n
GRID_POINTS = 100  # plenty for a log-x curve; keeps 100,000 rows cheap


def n_grid(N: int) -> np.ndarray:
    """The n at which a group of N trials is evaluated: 1..N, or a log-spaced grid (with 1
    and N) when N > ALL_N_UPTO, which keeps the cost at O(GRID_POINTS * N)."""
    if N <= ALL_N_UPTO:
        return np.arange(1, N + 1)
    grid = np.round(np.geomspace(1, N, GRID_POINTS)).astype(int)
    return np.unique(np.r_[grid, N])


def expected_min(errors: np.ndarray, ns: np.ndarray) -> tuple[np.ndarray, ...]:
    """(E without replacement, E with replacement, σ with replacement, σ without
    replacement) of the minimum of n trials, for each n in ``ns``.

    log C(a, b) = G[a] - G[b] - G[a - b] with G[m] = log m! tabulated once (gammaln), so
    the (len(ns), N) weight matrix costs table look-ups, not gammaln calls.
    """
    e = np.sort(np.asarray(errors, dtype=float))
    N = len(e)
    G = gammaln(np.arange(N + 1) + 1.0)  # G[m] = log m!
    n = np.asarray(ns, dtype=np.int64)[:, None]
    rest = (N - np.arange(1, N + 1))[None, :]  # N - i for i = 1..N
    ok = rest >= n - 1  # C(N - i, n - 1) > 0
    log_w = (G[rest] - G[n - 1] - G[np.where(ok, rest - n + 1, 0)]
             - (G[N] - G[n] - G[N - n]))
    w = np.where(ok, np.exp(np.where(ok, log_w, 0.0)), 0.0)
    without = w @ e
    sd_without = np.sqrt(np.maximum(w @ (e * e) - without**2, 0.0))
    above = np.arange(N, 0, -1) / N  # P(one draw >= e_(i)) = (N - i + 1) / N
    survive = np.exp(n * np.log(above)[None, :])  # P(min of n >= e_(i))
    p = survive - np.concatenate([survive[:, 1:], np.zeros((len(n), 1))], axis=1)
    with_mean = p @ e
    var = np.maximum(p @ (e * e) - with_mean**2, 0.0)
    return without, with_mean, np.sqrt(var), sd_without


def expected_curves(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per lr/wd-study group (arm): n_trials, expected and sd (without replacement), band
    lo/hi = expected ∓ sd, expected_wr and sd_wr (with replacement), N."""
    info = stats.group_info(keys)
    parts = []
    for _, g in frame[stats.lrwd_mask(frame)].groupby(keys, sort=False):
        errors = g["err"].to_numpy()
        ns = n_grid(len(errors))
        without, with_mean, sd_wr, sd = expected_min(errors, ns)
        part = pd.DataFrame({"N": len(errors), "n_trials": ns, "expected": without,
                             "sd": sd, "lo": without - sd, "hi": without + sd,
                             "expected_wr": with_mean, "sd_wr": sd_wr})
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
