"""EDFs with confidence bands, per-group stability statistics and ViT_P/ViT_C comparisons.

Definitions follow PAPER.md: a group's EDF is F(e) = fraction of its trials with error < e;
Δerror is a trial's error minus its group's best. Library statistics (``scipy.stats.ecdf``,
``ks_2samp``, ``bootstrap``) do the work so the numbers match what a reviewer recomputes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
WITHIN = (1, 2, 4, 8)  # points of Δerror for the "fraction within k of best" columns
AUC_UPTO = 10.0  # area under the Δ-EDF on [0, AUC_UPTO] points
MAX_STEPS = 2000  # EDF steps kept per curve in edf.csv and the figures
MIN_LRWD_SETTINGS = 4  # distinct (lr, wd) pairs that make a group an lr/wd study (fixed-value
# studies repeat one tuned pair over seeds or schedule lengths)
N_RESAMPLES = 999  # bootstrap resamples for the within-4 difference
PAIR = ("patchify", "conv")  # stems of the ViT_P/ViT_C comparison
STEM_ORDER = PAIR  # ViT_P, ViT_C, then other stems alphabetically
OPTIMIZER_ORDER = ("adamw", "sgd")


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


def edf(values: np.ndarray, confidence: float = CONFIDENCE) -> Edf:
    """The EDF of ``values`` from ``scipy.stats.ecdf`` with its DKW band."""
    cdf = stats.ecdf(np.asarray(values, dtype=float)).cdf
    n = len(values)
    eps = dkw_epsilon(n, confidence)
    F = cdf.probabilities
    return Edf(cdf.quantiles, F, np.clip(F - eps, 0, 1), np.clip(F + eps, 0, 1), n, eps)


def fraction_below(values: np.ndarray, x: float | np.ndarray) -> np.ndarray:
    """PAPER.md's F(x): the fraction of ``values`` strictly below ``x``."""
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


def facet_keys(keys: list[str]) -> list[str]:
    """The group keys other than the model: the settings shared by curves of one panel."""
    return [k for k in keys if k != "model"]


def with_delta(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame`` plus ``delta``: each trial's error minus the best error of its group."""
    best = frame.groupby(keys, sort=False)["err"].transform("min")
    return frame.assign(delta=frame["err"] - best)


def _rank(values: pd.Series, first: tuple[str, ...]) -> pd.Series:
    """Sort key placing ``first`` in that order, then everything else alphabetically."""
    order = list(first) + sorted(set(values) - set(first))
    return values.map({v: i for i, v in enumerate(order)})


def size_order(frame: pd.DataFrame) -> list[str]:
    """Model sizes from smallest to largest flops, so panels read left to right."""
    flops = frame.groupby("size")["gflops"].median().fillna(0)
    return sorted(flops.index, key=lambda s: (flops[s], s))


def ordered(table: pd.DataFrame, sizes: list[str], last: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows sorted by sweep, optimizer, batch, epochs, size (in the order of ``sizes``, see
    size_order), stem (ViT_P first) and model; columns in ``last`` sort last instead. The
    sort is stable, so rows that tie (the steps of one EDF) keep their order."""
    sizes = {s: i for i, s in enumerate(sizes)}
    rank = {"optimizer": lambda v: _rank(v, OPTIMIZER_ORDER),
            "stem": lambda v: _rank(v, STEM_ORDER), "size": lambda v: v.map(sizes)}
    cols = ("sweep", "optimizer", "batch_size", "epochs", "size", "stem", "model")
    cols = [c for c in cols if c in table and c not in last] + [c for c in last if c in table]
    key = pd.DataFrame({c: rank.get(c, lambda v: v)(table[c]) for c in cols})
    return table.loc[key.sort_values(cols, kind="stable").index].reset_index(drop=True)


def _group_info(keys: list[str]) -> list[str]:
    """Descriptive columns that come with each group (its stem and size)."""
    return keys[:1] + ["stem", "size"] + keys[1:]


def summary(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per-group stability statistics (the ``summary.csv`` table).

    Columns: the group keys with stem and size, n, best, median, within_k (fraction with
    Δ < k points, i.e. the Δ-EDF at k), diverged_frac, auc_10 (area under the Δ-EDF on
    [0, 10] points, max 10; within_k and auc_10 are empty when every trial diverged), and
    the lr/wd of the best trial.
    """
    frame = with_delta(frame, keys)
    rows = []
    for _, g in frame.groupby(keys, sort=False):
        top = g.loc[g["err"].idxmin()]
        delta = g["delta"].to_numpy()
        row = {c: top[c] for c in _group_info(keys)}
        row.update(n=len(g), best=top["err"], median=float(np.median(g["err"])))
        none_ok = bool(g["diverged"].all())
        row.update({f"within_{k}": within(delta, k, none_ok) for k in WITHIN})
        row.update(diverged_frac=float(g["diverged"].mean()),
                   auc_10=np.nan if none_ok else area_under(delta), best_lr=top["lr"],
                   best_wd=top["wd"])
        rows.append(row)
    return ordered(pd.DataFrame(rows), size_order(frame))


def thin(n_steps: int, max_steps: int) -> np.ndarray:
    """Indices of at most ``max_steps`` evenly spaced steps, always keeping the last."""
    if n_steps <= max_steps:
        return np.arange(n_steps)
    return np.unique(np.linspace(0, n_steps - 1, max_steps).round().astype(int))


def edf_curves(frame: pd.DataFrame, keys: list[str], max_steps: int = MAX_STEPS,
               confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Every group's EDF as rows (the ``edf.csv`` table and the data of the EDF figures).

    Columns: group info, n, error (a step of the EDF), delta (the same step on Δerror), F,
    lower and upper (the DKW band). A curve with more than ``max_steps`` distinct errors is
    thinned to ``max_steps`` of its exact steps; F stays exact at every kept step.
    """
    info = _group_info(keys)
    parts = []
    for _, g in frame.groupby(keys, sort=False):
        curve = edf(g["err"].to_numpy(), confidence)
        keep = thin(len(curve.x), max_steps)
        part = pd.DataFrame({"n": curve.n, "error": curve.x[keep],
                             "delta": curve.x[keep] - curve.x[0], "F": curve.F[keep],
                             "lower": curve.lower[keep], "upper": curve.upper[keep]})
        parts.append(part.assign(**{c: g[c].iloc[0] for c in info})[info + list(part)])
    return pd.concat(parts, ignore_index=True)


def _within_diff(delta_p: np.ndarray, delta_c: np.ndarray, axis: int = -1) -> np.ndarray:
    """Fraction of ViT_C trials within 4 points of its best minus that of ViT_P."""
    return np.mean(delta_c < 4, axis=axis) - np.mean(delta_p < 4, axis=axis)


def within_diff_ci(delta_p: np.ndarray, delta_c: np.ndarray, n_resamples: int = N_RESAMPLES,
                   confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI for the within-4 difference, resampling each model's trials.

    Each group's best is held at its observed value (the bootstrap of a minimum is biased),
    so the interval answers: given the two reference points, is the difference real?
    """
    if min(len(delta_p), len(delta_c)) < 2:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-equal samples: the CI is that one value
        res = stats.bootstrap((delta_p, delta_c), _within_diff, n_resamples=n_resamples,
                              confidence_level=confidence, method="percentile",
                              vectorized=True, rng=seed,
                              batch=max(1, 1_000_000 // (len(delta_p) + len(delta_c))))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


def stem_pairs(frame: pd.DataFrame, keys: list[str]) -> list[tuple[dict, str, str]]:
    """(shared settings, ViT_P model, ViT_C model) for every comparable pair of groups:
    one size, patchify vs conv stem, all other group keys equal."""
    shared = ["size"] + facet_keys(keys)
    pairs = []
    for values, g in frame.groupby(shared, sort=False):
        by_stem = g.groupby("stem")["model"].unique()
        for model_p in by_stem.get(PAIR[0], []):
            for model_c in by_stem.get(PAIR[1], []):
                pairs.append((dict(zip(shared, values, strict=True)), model_p, model_c))
    return pairs


def compare_pairs(frame: pd.DataFrame, keys: list[str],
                  n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """ViT_P vs ViT_C per pair (the ``ks.csv`` table).

    ks_stat/ks_pvalue: ``scipy.stats.ks_2samp`` on Δerror (does stability differ?);
    ks_stat_abs/ks_pvalue_abs: the same on absolute error; within_4_diff = within_4_c -
    within_4_p (positive: ViT_C more stable) with a 95% bootstrap CI [lo, hi].
    """
    frame = with_delta(frame, keys)
    rows = []
    for shared, model_p, model_c in stem_pairs(frame, keys):
        sel = np.logical_and.reduce([frame[k] == v for k, v in shared.items()])
        g = frame[sel]
        p, c = g[g["model"] == model_p], g[g["model"] == model_c]
        dp, dc = p["delta"].to_numpy(), c["delta"].to_numpy()
        ks = stats.ks_2samp(dp, dc)
        ks_abs = stats.ks_2samp(p["err"].to_numpy(), c["err"].to_numpy())
        no_ref = bool(p["diverged"].all() or c["diverged"].all())
        lo, hi = (np.nan, np.nan) if no_ref else within_diff_ci(dp, dc, n_resamples)
        rows.append({**shared, "model_p": model_p, "model_c": model_c, "n_p": len(p),
                     "n_c": len(c), "ks_stat": float(ks.statistic),
                     "ks_pvalue": float(ks.pvalue), "ks_stat_abs": float(ks_abs.statistic),
                     "ks_pvalue_abs": float(ks_abs.pvalue),
                     "within_4_p": within(dp, 4, p["diverged"].all()),
                     "within_4_c": within(dc, 4, c["diverged"].all()),
                     "within_4_diff": np.nan if no_ref else float(_within_diff(dp, dc)),
                     "within_4_lo": lo, "within_4_hi": hi})
    if not rows:
        return pd.DataFrame()
    return ordered(pd.DataFrame(rows), size_order(frame))


def lrwd_groups(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Mask of trials whose group is an lr/wd study (>= MIN_LRWD_SETTINGS distinct pairs)."""
    settings = frame.groupby(keys, sort=False)[["lr", "wd"]].transform("nunique")
    return (settings.min(axis=1) >= MIN_LRWD_SETTINGS).rename("lrwd")


def at_best_setting(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each group's trials at its best (lr, wd) setting (lowest mean error over seeds).

    This is the group's tuned result: the seed mean for a study repeated at fixed values,
    the best trial for an lr/wd sweep. Adds ``settings``: how many (lr, wd) pairs it had.
    """
    means = frame.groupby(keys + ["lr", "wd"], sort=False)["err"].mean().rename("setting_err")
    means = means.reset_index()
    means["settings"] = means.groupby(keys, sort=False)["lr"].transform("size")
    best = means.loc[means.groupby(keys, sort=False)["setting_err"].idxmin()]
    return frame.merge(best, on=keys + ["lr", "wd"])


def optimizer_gap(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """SGD minus AdamW error per model that was trained with both (tuned results).

    Empty when no model has both optimizers under otherwise equal settings.
    """
    tuned = at_best_setting(frame, keys)
    shared = [k for k in keys if k != "optimizer"]
    err = tuned.groupby(shared + ["optimizer"])["setting_err"].first().unstack("optimizer")
    if not set(OPTIMIZER_ORDER) <= set(err.columns):
        return pd.DataFrame()
    err = err[list(OPTIMIZER_ORDER)].dropna()
    if err.empty:
        return pd.DataFrame()
    n = tuned.groupby(shared + ["optimizer"]).size().unstack("optimizer")
    info = tuned.groupby(shared)[["stem", "size"]].first()
    out = pd.DataFrame({"err_adamw": err["adamw"], "err_sgd": err["sgd"],
                        "gap": err["sgd"] - err["adamw"],
                        "n_adamw": n["adamw"], "n_sgd": n["sgd"]}).join(info)
    out = out.dropna(subset=["gap"]).astype({"n_adamw": int, "n_sgd": int})
    return ordered(out.reset_index(), size_order(frame))


def training_length(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Tuned error per schedule length and its gap to the longest schedule.

    Rows for every (model, optimizer, other keys) trained for at least two ``epochs``
    values; ``delta_to_longest`` = error at ``epochs`` minus error at the longest schedule.
    """
    tuned = at_best_setting(frame, keys)
    series = [k for k in keys if k != "epochs"]
    per = tuned.groupby(keys, sort=False).agg(err=("setting_err", "first"), n=("err", "size"),
                                              stem=("stem", "first"), size=("size", "first"))
    per = per.reset_index()
    lengths = per.groupby(series)["epochs"].transform("nunique")
    per = per[lengths >= 2]
    if per.empty:
        return pd.DataFrame()
    longest = per.loc[per.groupby(series)["epochs"].idxmax()].set_index(series)
    per = per.join(longest[["epochs", "err"]].rename(
        columns={"epochs": "longest", "err": "err_longest"}), on=series)
    per["delta_to_longest"] = per["err"] - per["err_longest"]
    return ordered(per.drop(columns="err_longest"), size_order(frame), last=("epochs",))
