"""EDF maths: the empirical distribution of a group's errors, its DKW band, Δerror and the
numbers read off a Δ-EDF (fraction within k points, area under the curve).

Definitions follow docs/PROTOCOL.md: a group's EDF is F(e) = fraction of its trials with error < e;
Δerror is a trial's error minus its group's best. ``scipy.stats.ecdf`` does the work so the
numbers match what a reviewer recomputes.

Errors are recorded on a grid (0.1 points for a 10,000-image test set), and Δerror in
floats is not: (best + 0.4) − best can come out as 0.39999999999999858. ``with_delta``
rounds Δ to the data's own resolution (``decimals``), so an error of exactly best + k has
Δ = k, which never counts as within k (Δ < k, the strict F of the paper), whatever the
floats.

Run as ``python -m analysis.edf PATH... [--out DIR]``, this module starts the command line
(``analysis.cli``, also ``python -m analysis``), kept under this name because that is how
users call it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
WITHIN = (1, 2, 4, 8)  # points of Δerror for the "fraction within k of best" columns
AUC_UPTO = 10.0  # area under the Δ-EDF on [0, AUC_UPTO] points
MAX_DECIMALS = 6  # finer data is taken as continuous and rounded at 1e-6 (float noise)


@dataclass(frozen=True)
class Edf:
    """An EDF as steps: F[i] = fraction of trials with error <= x[i] (so < any e > x[i]),
    with a simultaneous DKW band [lower, upper] that holds over all e at once."""

    x: np.ndarray
    F: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: int
    eps: float


def dkw_epsilon(n: int, confidence: float = CONFIDENCE) -> float:
    """Half-width of the Dvoretzky-Kiefer-Wolfowitz band (Massart's constant).

    P(sup_e |F_n(e) - F(e)| > eps) <= 2 exp(-2 n eps^2), so the band F_n ± eps holds
    everywhere with probability >= ``confidence``; about ±0.17 for 64 trials.
    """
    return float(np.sqrt(np.log(2 / (1 - confidence)) / (2 * n)))


def ecdf(values: np.ndarray, confidence: float = CONFIDENCE) -> Edf:
    """The EDF of ``values`` from ``scipy.stats.ecdf`` with its DKW band."""
    cdf = stats.ecdf(np.asarray(values, dtype=float)).cdf
    n = len(values)
    eps = dkw_epsilon(n, confidence)
    F = cdf.probabilities
    return Edf(cdf.quantiles, F, np.clip(F - eps, 0, 1), np.clip(F + eps, 0, 1), n, eps)


def fraction_below(values: np.ndarray, x: float | np.ndarray) -> np.ndarray:
    """The paper's F(x): the fraction of ``values`` strictly below ``x``."""
    ordered = np.sort(np.asarray(values, dtype=float))
    return np.searchsorted(ordered, x, side="left") / len(ordered)


def area_under(delta: np.ndarray, upto: float = AUC_UPTO) -> float:
    """Area under the Δ-EDF on [0, upto], in points (upto = every trial at the best).

    The integral of P(Δ < t) over t in [0, upto] is the mean of upto - min(Δ, upto).
    """
    return float(np.mean(upto - np.minimum(np.asarray(delta, dtype=float), upto)))


def within(delta: np.ndarray, k: float, all_diverged: bool = False) -> float:
    """Fraction of trials within ``k`` points of the best (Δ < k, the Δ-EDF at k).

    NaN for a group whose every trial diverged: it has no finished reference, its Δ are
    all 0, and 1.0 would read as perfectly stable.
    """
    return float("nan") if all_diverged else float(np.mean(np.asarray(delta) < k))


def decimals(values: np.ndarray | pd.Series) -> int:
    """The fewest decimals (up to MAX_DECIMALS) at which every finite value is unchanged:
    the grid the errors were recorded on (1 for 83.1, 70.5, ...)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    for d in range(MAX_DECIMALS):
        if np.allclose(np.round(x, d), x, rtol=0, atol=10.0 ** -(d + 3)):
            return d
    return MAX_DECIMALS


def on_grid(values: np.ndarray | pd.Series, reference: np.ndarray | pd.Series) -> np.ndarray:
    """``values`` (differences of errors) rounded to the resolution of ``reference``: one
    tie is one tie, not two ranks that differ by 3e-15."""
    return np.round(np.asarray(values, dtype=float), decimals(reference))


def with_delta(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame`` plus ``delta``: each trial's error minus the best error of its group, on
    the errors' grid (see the module docstring: exactly best + k is not within k)."""
    best = frame.groupby(keys, sort=False)["err"].transform("min")
    return frame.assign(delta=on_grid(frame["err"] - best, frame["err"]))


def thin(n_steps: int, max_steps: int) -> np.ndarray:
    """Indices of at most ``max_steps`` evenly spaced steps, always keeping the last."""
    if n_steps <= max_steps:
        return np.arange(n_steps)
    return np.unique(np.linspace(0, n_steps - 1, max_steps).round().astype(int))


if __name__ == "__main__":
    # Run as a script this file is ``__main__``; registering it as ``analysis.edf`` too
    # lets the command line's own imports reuse it instead of loading a second copy.
    sys.modules.setdefault("analysis.edf", sys.modules[__name__])
    from analysis.cli import main

    sys.exit(main())
