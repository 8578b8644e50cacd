"""How much of an arm's error lr and wd each explain: Optuna's PED-ANOVA importance.

Each lr/wd-study arm becomes an in-memory Optuna study (``optuna.create_study`` +
``add_trials`` of ``create_trial``) with log-uniform distributions over the arm's observed
lr and wd ranges, and ``optuna.importance.PedAnovaImportanceEvaluator`` scores the two.

What the number measures: PED-ANOVA's raw score of a parameter is the Pearson divergence
between the parameter's distribution among the arm's best 10% of trials and among all of
them (Parzen estimates on the log axis). 0 means the best trials are spread over the
parameter like all trials: the parameter does not pick out good runs. The table gives the
raw scores and the normalised split (raw / their sum). A split is only worth reading when
a raw score stands out from noise: two scores of noise split 0.6/0.4 as readily as two
real ones. So each raw score gets a permutation p-value (the same evaluator on the arm's
errors shuffled over its (lr, wd) points, N_PERMUTATIONS times, seeded), and an arm whose
scores both have p >= ALPHA is called negligible. PED-ANOVA needs no scikit-learn (fANOVA
does, so it is not used) and is deterministic; an arm with more than MAX_TRIALS trials is
subsampled with a fixed seed (from the data-ordered trials: no row-order dependence).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from analysis import stats

EVALUATOR = "PedAnovaImportanceEvaluator"
MAX_TRIALS = 128  # per arm: the cost cap (each of the 40 evaluations grows with n;
                  # 2x the 64 draws of a paper-size arm)
MIN_TRIALS = 4
N_PERMUTATIONS = 39  # shuffles per arm: the smallest p is 1/40 = 0.025
ALPHA = 0.05


def arm_study(lr: np.ndarray, wd: np.ndarray, err: np.ndarray):
    """An in-memory Optuna study of one arm's trials (log-uniform lr and wd over their
    observed ranges); None when neither varies."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {name: FloatDistribution(float(v.min()), float(v.max()), log=True)
             for name, v in (("lr", lr), ("wd", wd)) if v.max() > v.min()}
    if not dists:
        return None
    study = optuna.create_study(direction="minimize")
    study.add_trials([
        optuna.trial.create_trial(params={k: float(v) for k, v in (("lr", a), ("wd", b))
                                          if k in dists},
                                  distributions=dists, value=float(e))
        for a, b, e in zip(lr, wd, err, strict=True)])
    return study


def raw_scores(study, values: np.ndarray | None = None) -> dict[str, float]:
    """Raw (unnormalised) PED-ANOVA scores of lr and wd (0 for one that did not vary);
    ``values`` replaces the trials' errors (by trial number) for a permutation."""
    import optuna

    if study is None:
        return {"lr": 0.0, "wd": 0.0}
    target = None if values is None else (lambda t: float(values[t.number]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's experimental-feature warnings
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
            target=target, normalize=False)
    return {k: float(found.get(k, 0.0)) for k in ("lr", "wd")}


def arm_importance(lr: np.ndarray, wd: np.ndarray, err: np.ndarray) -> dict[str, float]:
    """Raw PED-ANOVA scores of lr and wd for one arm's trials."""
    return raw_scores(arm_study(lr, wd, err))


def permutation_p(study, err: np.ndarray, raw: dict[str, float], seed: int = 0,
                  n_permutations: int = N_PERMUTATIONS) -> dict[str, float]:
    """Per parameter, (1 + shuffles scoring at least ``raw``) / (1 + shuffles): how often
    errors shuffled over the same (lr, wd) points score as high as the real ones. The
    study is built once; each shuffle only changes the target it is scored on."""
    rng = np.random.default_rng(seed)
    null = [raw_scores(study, rng.permutation(err)) for _ in range(n_permutations)]
    return {k: (1 + sum(s[k] >= raw[k] for s in null)) / (1 + n_permutations) for k in raw}


def importance_table(frame: pd.DataFrame, keys: list[str], seed: int = 0) -> pd.DataFrame:
    """Per lr/wd-study arm: evaluator, n_used, raw_lr and raw_wd (PED-ANOVA's raw
    scores), p_lr and p_wd (their permutation p-values), importance_lr and importance_wd
    (the normalised split, empty when both raw scores are 0) and negligible (both p >=
    ALPHA) (the ``importance.csv`` table); arms with fewer than MIN_TRIALS trials are
    left out."""
    info = stats.group_info(keys)
    rows = []
    for _, g in frame[stats.lrwd_mask(frame)].groupby(keys, sort=False):
        if len(g) < MIN_TRIALS:
            continue
        if len(g) > MAX_TRIALS:
            g = g.sample(MAX_TRIALS, random_state=seed)
        lr, wd, err = g["lr"].to_numpy(), g["wd"].to_numpy(), g["err"].to_numpy()
        study = arm_study(lr, wd, err)
        raw = raw_scores(study)
        p = permutation_p(study, err, raw, seed)
        total = sum(raw.values())
        rows.append({**{c: g[c].iloc[0] for c in info}, "evaluator": EVALUATOR,
                     "n_used": len(g), "raw_lr": raw["lr"], "raw_wd": raw["wd"],
                     "p_lr": p["lr"], "p_wd": p["wd"],
                     "importance_lr": raw["lr"] / total if total > 0 else np.nan,
                     "importance_wd": raw["wd"] / total if total > 0 else np.nan,
                     "negligible": bool(min(p.values()) >= ALPHA)})
    if not rows:
        return pd.DataFrame()
    return stats.ordered(pd.DataFrame(rows), stats.size_order(frame))
