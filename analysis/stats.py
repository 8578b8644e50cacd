"""Per-group stability statistics, EDF tables and unpaired stem comparisons, plus each
group's tuned result (optimizer gap, training length).

A group is one arm of one experiment (``load.group_keys``): model x study x data x
optimizer x epochs x batch size. Library statistics (``scipy.stats.ecdf``, ``ks_2samp``,
``bootstrap``) do the work so the numbers match what a reviewer recomputes; the EDF maths
itself is in ``analysis.edf``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from analysis import edf as E

CONFIDENCE = E.CONFIDENCE
WITHIN = E.WITHIN
AUC_UPTO = E.AUC_UPTO
MAX_STEPS = 2000  # EDF steps kept per curve in edf.csv and the figures
LRWD = "lr_wd"  # the study whose trials are random lr/wd draws: EDFs describe it
N_RESAMPLES = 999  # bootstrap resamples for the within-4 difference; fewer (down to
MIN_RESAMPLES = 200  # MIN_RESAMPLES) when resamples x trials would exceed MAX_DRAWS
MAX_DRAWS = 5_000_000
N_BEST_RESAMPLES = 200  # bootstrap resamples for the interval of a group's best
# Stems compared, (reference, other): ViT_P vs ViT_C, and ViT_C vs the RegNetY baseline.
PAIRS = (("patchify", "conv"), ("conv", "cnn"))
STEM_ORDER = ("patchify", "conv", "cnn")  # then other stems alphabetically
STEM_NAMES = {"patchify": "ViT_P", "conv": "ViT_C", "cnn": "CNN"}
OPTIMIZER_ORDER = ("adamw", "sgd")
STUDY_ORDER = ("lr_wd", "optimizer", "schedule", "tune")


def ks_test(a: np.ndarray, b: np.ndarray):
    """``scipy.stats.ks_2samp``, quiet where its exact p-value overshoots 1 by rounding.

    With equal small samples and the smallest possible gap (D = 1/n) scipy's exact
    computation lands a hair above 1, warns and returns the asymptotic p, which is also 1:
    the warning carries no information a reader could act on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="ks_2samp: Exact calculation unsuccessful")
        return stats.ks_2samp(a, b)


def stem_name(stem: str) -> str:
    """ViT_P, ViT_C or CNN (other stems as they are)."""
    return STEM_NAMES.get(stem, str(stem))


def facet_keys(keys: list[str]) -> list[str]:
    """The group keys other than the model: the settings shared by curves of one panel."""
    return [k for k in keys if k != "model"]


def _rank(values: pd.Series, first: tuple[str, ...]) -> pd.Series:
    """Sort key placing ``first`` in that order, then everything else alphabetically."""
    order = list(first) + sorted(set(values) - set(first))
    return values.map({v: i for i, v in enumerate(order)})


def size_order(frame: pd.DataFrame) -> list[str]:
    """Model sizes from smallest to largest flops, so panels read left to right."""
    flops = frame.groupby("size")["gflops"].median().fillna(0)
    return sorted(flops.index, key=lambda s: (flops[s], s))


def ordered(table: pd.DataFrame, sizes: list[str], last: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows sorted by study, data, sweep, subset, optimizer, batch, epochs, size (in the order of
    ``sizes``), stem (ViT_P first) and model; columns in ``last`` sort last instead. The
    sort is stable, so rows that tie (the steps of one EDF) keep their order."""
    sizes = {s: i for i, s in enumerate(sizes)}
    rank = {"optimizer": lambda v: _rank(v, OPTIMIZER_ORDER),
            "study": lambda v: _rank(v, STUDY_ORDER),
            "stem": lambda v: _rank(v, STEM_ORDER), "size": lambda v: v.map(sizes)}
    cols = ("study", "data", "sweep", "subset", "optimizer", "batch_size", "epochs", "size",
            "stem", "model")
    cols = [c for c in cols if c in table and c not in last] + [c for c in last if c in table]
    key = pd.DataFrame({c: rank.get(c, lambda v: v)(table[c]) for c in cols})
    return table.loc[key.sort_values(cols, kind="stable").index].reset_index(drop=True)


def group_info(keys: list[str]) -> list[str]:
    """Descriptive columns that come with each group (its stem and size)."""
    return keys[:1] + ["stem", "size"] + keys[1:]


def lrwd_mask(frame: pd.DataFrame) -> pd.Series:
    """Trials of lr/wd studies: random draws, so their EDF is the distribution of errors
    over the lr/wd interval (grid studies repeat tuned values; TPE draws are not i.i.d.)."""
    return frame["study"] == LRWD


def summary(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per-group stability statistics (the ``summary.csv`` table), every study.

    Columns: the group keys with stem and size, n, best, median, within_k (fraction with
    Δ < k points, i.e. the Δ-EDF at k), diverged_frac, auc_10 (area under the Δ-EDF on
    [0, 10] points, max 10; within_k and auc_10 are empty when every trial diverged), and
    the lr/wd of the best trial.
    """
    frame = E.with_delta(frame, keys)
    rows = []
    for _, g in frame.groupby(keys, sort=False):
        top = g.loc[g["err"].idxmin()]
        delta = g["delta"].to_numpy()
        row = {c: top[c] for c in group_info(keys)}
        row.update(n=len(g), best=top["err"], median=float(np.median(g["err"])))
        none_ok = bool(g["diverged"].all())
        row.update({f"within_{k}": E.within(delta, k, none_ok) for k in WITHIN})
        row.update(diverged_frac=float(g["diverged"].mean()),
                   auc_10=np.nan if none_ok else E.area_under(delta), best_lr=top["lr"],
                   best_wd=top["wd"])
        rows.append(row)
    return ordered(pd.DataFrame(rows), size_order(frame))


def edf_curves(frame: pd.DataFrame, keys: list[str], max_steps: int = MAX_STEPS,
               confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Every lr/wd-study group's EDF as rows (``edf.csv`` and the EDF figures' data).

    Columns: group info, n, n_diverged, error (a step of the EDF), delta (the same step on
    Δerror), delta_norm (Δ / (chance − best), ``analysis.headroom``), F, lower and upper
    (the DKW band). A curve with more than ``max_steps`` distinct errors is thinned to
    ``max_steps`` of its exact steps; F stays exact there.
    """
    info = group_info(keys)
    parts = []
    for _, g in frame[lrwd_mask(frame)].groupby(keys, sort=False):
        curve = E.ecdf(g["err"].to_numpy(), confidence)
        keep = E.thin(len(curve.x), max_steps)
        delta = E.on_grid(curve.x[keep] - curve.x[0], curve.x)
        room = float(g["chance_error"].iloc[0]) - curve.x[0]
        part = pd.DataFrame({"n": curve.n, "n_diverged": int(g["diverged"].sum()),
                             "error": curve.x[keep], "delta": delta,
                             "delta_norm": delta / room if room > 0 else np.nan,
                             "F": curve.F[keep], "lower": curve.lower[keep],
                             "upper": curve.upper[keep]})
        parts.append(part.assign(**{c: g[c].iloc[0] for c in info})[info + list(part)])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _within_diff(delta_a: np.ndarray, delta_b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Fraction of arm b's trials within 4 points of its best minus that of arm a."""
    return np.mean(delta_b < 4, axis=axis) - np.mean(delta_a < 4, axis=axis)


def within_diff_ci(delta_a: np.ndarray, delta_b: np.ndarray, n_resamples: int = N_RESAMPLES,
                   confidence: float = CONFIDENCE, seed: int = 0,
                   paired: bool = False) -> tuple[float, float]:
    """Percentile bootstrap CI for the within-4 difference (b - a), resampling each arm's
    trials, or with ``paired`` the shared sample indices jointly.

    Each arm's best is held at its observed value (the bootstrap of a minimum is biased),
    so the interval answers: given the two reference points, is the difference real?
    Unpaired arms are sorted first and paired ones come in sample order, so the draws
    (by position) do not depend on the row order of trials.csv.
    """
    if min(len(delta_a), len(delta_b)) < 2:
        return float("nan"), float("nan")
    if not paired:
        delta_a, delta_b = np.sort(delta_a), np.sort(delta_b)
    size = len(delta_a) + len(delta_b)
    n_resamples = min(n_resamples, max(MIN_RESAMPLES, MAX_DRAWS // size))  # the cost cap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-equal samples: the CI is that one value
        res = stats.bootstrap((delta_a, delta_b), _within_diff, n_resamples=n_resamples,
                              confidence_level=confidence, method="percentile",
                              vectorized=True, paired=paired, rng=seed,
                              batch=max(1, 1_000_000 // size))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


def stem_pairs(frame: pd.DataFrame, keys: list[str]) -> list[tuple[dict, str, str]]:
    """(shared settings, model a, model b) for every comparable pair of groups: one size,
    stems (a, b) in PAIRS (ViT_P vs ViT_C, ViT_C vs CNN), all other group keys equal."""
    shared = ["size"] + facet_keys(keys)
    pairs = []
    for values, g in frame.groupby(shared, sort=False):
        by_stem = g.groupby("stem")["model"].unique()
        for stem_a, stem_b in PAIRS:
            for model_a in by_stem.get(stem_a, []):
                pairs.extend((dict(zip(shared, values, strict=True)), model_a, model_b)
                             for model_b in by_stem.get(stem_b, []))
    return pairs


def _arms(frame: pd.DataFrame, shared: dict, model_a: str,
          model_b: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials of the two arms of one comparison."""
    sel = np.logical_and.reduce([frame[k] == v for k, v in shared.items()])
    g = frame[sel]
    return g[g["model"] == model_a], g[g["model"] == model_b]


def compare_pairs(frame: pd.DataFrame, keys: list[str],
                  n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """Unpaired comparisons of lr/wd-study arms (the ``ks.csv`` table), a vs b.

    ks_stat/ks_pvalue: ``scipy.stats.ks_2samp`` on Δerror (does stability differ?);
    ks_stat_abs/ks_pvalue_abs: the same on absolute error; ks_stat_norm/ks_pvalue_norm: on
    Δ as a share of each arm's room to chance (``analysis.headroom``); within_4_diff = within_4_b -
    within_4_a (positive: b more stable) with a 95% bootstrap CI [lo, hi]; dkw_a/dkw_b:
    the half-widths of the arms' 95% DKW bands.
    """
    from analysis import headroom

    frame = headroom.with_room(frame[lrwd_mask(frame)], keys)
    rows = []
    for shared, model_a, model_b in stem_pairs(frame, keys):
        a, b = _arms(frame, shared, model_a, model_b)
        da, db = a["delta"].to_numpy(), b["delta"].to_numpy()
        ks = ks_test(da, db)
        ks_abs = ks_test(a["err"].to_numpy(), b["err"].to_numpy())
        na, nb = a["delta_norm"].dropna().to_numpy(), b["delta_norm"].dropna().to_numpy()
        ks_norm = ks_test(na, nb) if len(na) and len(nb) else None
        no_ref = bool(a["diverged"].all() or b["diverged"].all())
        lo, hi = (np.nan, np.nan) if no_ref else within_diff_ci(da, db, n_resamples)
        rows.append({**shared, "stem_a": a["stem"].iloc[0], "stem_b": b["stem"].iloc[0],
                     "model_a": model_a, "model_b": model_b, "n_a": len(a), "n_b": len(b),
                     "ks_stat": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
                     "ks_stat_abs": float(ks_abs.statistic),
                     "ks_pvalue_abs": float(ks_abs.pvalue),
                     "ks_stat_norm": np.nan if ks_norm is None else float(ks_norm.statistic),
                     "ks_pvalue_norm": np.nan if ks_norm is None else float(ks_norm.pvalue),
                     "dkw_a": E.dkw_epsilon(len(a)), "dkw_b": E.dkw_epsilon(len(b)),
                     "within_4_a": E.within(da, 4, a["diverged"].all()),
                     "within_4_b": E.within(db, 4, b["diverged"].all()),
                     "within_4_diff": np.nan if no_ref else float(_within_diff(da, db)),
                     "within_4_lo": lo, "within_4_hi": hi})
    if not rows:
        return pd.DataFrame()
    return ordered(pd.DataFrame(rows), size_order(frame))


def _best_interval(errors: np.ndarray, seed: int = 0,
                   n_resamples: int = N_BEST_RESAMPLES) -> tuple[float, float]:
    """2.5 and 97.5 percentiles of the minimum of ``errors`` resampled with replacement:
    how far the best of this many draws moves in a re-draw. Not a confidence interval of
    anything: a resample's minimum is never below the observed one, so lo is the best."""
    if len(errors) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # A resample's minimum is e_(i) with i the lowest drawn rank: draw ranks, not values.
    ranks = np.sort(errors)[rng.integers(0, len(errors), (n_resamples, len(errors))).min(1)]
    return float(np.quantile(ranks, 0.025)), float(np.quantile(ranks, 0.975))


def tuned(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each group's tuned result with an interval, one row per group.

    A group that repeats one (lr, wd) over seeds: err = the seed mean, [lo, hi] = the
    seeds' range, n = seeds. A group with several settings: err = the best setting's
    (seed-mean) error, [lo, hi] = the 2.5-97.5% spread of a resampled best
    (``_best_interval``; not a confidence interval), n = trials it was chosen from.
    ``interval`` names which.
    """
    rows = []
    for values, g in frame.groupby(keys, sort=False):
        means = g.groupby(["lr", "wd"])["err"].mean()
        row = dict(zip(keys, values, strict=True))
        row.update(stem=g["stem"].iloc[0], size=g["size"].iloc[0], err=float(means.min()),
                   n=len(g), settings=len(means))
        if len(means) == 1:
            row.update(lo=float(g["err"].min()), hi=float(g["err"].max()),
                       interval="range over seeds")
        else:
            lo, hi = _best_interval(g["err"].to_numpy())
            row.update(lo=lo, hi=hi, interval="resampled best, 2.5-97.5%")
        rows.append(row)
    return pd.DataFrame(rows)


def optimizer_gap(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """SGD minus AdamW tuned error per model trained with both under otherwise equal
    settings (one study, data, schedule), with each optimizer's n and interval.

    Empty when no model has both optimizers under otherwise equal settings.
    """
    best = tuned(frame, keys)
    shared = [k for k in keys if k != "optimizer"]
    wide = best.set_index(shared + ["optimizer"])[["err", "lo", "hi", "n", "interval"]]
    wide = wide.unstack("optimizer")
    if not set(OPTIMIZER_ORDER) <= set(wide.columns.get_level_values(1)):
        return pd.DataFrame()
    wide.columns = [f"{name}_{opt}" for name, opt in wide.columns]
    cols = [f"{c}_{o}" for o in OPTIMIZER_ORDER for c in ("err", "lo", "hi", "n", "interval")]
    out = wide[cols].dropna(subset=["err_adamw", "err_sgd"])
    if out.empty:
        return pd.DataFrame()
    out = out.assign(gap=out["err_sgd"] - out["err_adamw"]).astype(
        {"n_adamw": int, "n_sgd": int})
    info = best.groupby(shared)[["stem", "size"]].first()
    return ordered(out.join(info).reset_index(), size_order(frame))


def training_length(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Tuned error per schedule length and its gap to the longest schedule.

    Rows for every (model, optimizer, other keys) trained for at least two ``epochs``
    values; ``delta_to_longest`` = error at ``epochs`` minus error at the longest schedule.
    """
    per = tuned(frame, keys)
    series = [k for k in keys if k != "epochs"]
    lengths = per.groupby(series)["epochs"].transform("nunique")
    per = per[lengths >= 2]
    if per.empty:
        return pd.DataFrame()
    longest = per.loc[per.groupby(series)["epochs"].idxmax()].set_index(series)
    per = per.join(longest[["epochs", "err"]].rename(
        columns={"epochs": "longest", "err": "err_longest"}), on=series)
    per["delta_to_longest"] = per["err"] - per["err_longest"]
    return ordered(per.drop(columns="err_longest"), size_order(frame), last=("epochs",))
