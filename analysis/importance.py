"""How much of an arm's error lr and wd each explain: Optuna's PED-ANOVA importance.

Each lr/wd-study arm becomes an in-memory Optuna study (``optuna.create_study`` +
``add_trials`` of ``create_trial``) with log-uniform distributions over the arm's observed
lr and wd ranges, and ``optuna.importance.PedAnovaImportanceEvaluator`` scores the two
(normalised to sum to 1). PED-ANOVA needs no scikit-learn (fANOVA does) and is
deterministic; an arm with more than MAX_TRIALS trials is subsampled with a fixed seed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from analysis import stats

EVALUATOR = "PedAnovaImportanceEvaluator"
MAX_TRIALS = 1000  # per arm: the cost cap (100,000-row results stay under 10 s)
MIN_TRIALS = 4


def arm_importance(lr: np.ndarray, wd: np.ndarray, err: np.ndarray) -> dict[str, float]:
    """Normalised PED-ANOVA importance of lr and wd for one arm's trials."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {name: FloatDistribution(float(v.min()), float(v.max()), log=True)
             for name, v in (("lr", lr), ("wd", wd)) if v.max() > v.min()}
    if not dists:
        return {}
    study = optuna.create_study(direction="minimize")
    study.add_trials([
        optuna.trial.create_trial(params={k: float(v) for k, v in (("lr", a), ("wd", b))
                                          if k in dists},
                                  distributions=dists, value=float(e))
        for a, b, e in zip(lr, wd, err, strict=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's experimental-feature warnings
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    return {k: float(v) for k, v in found.items()}


def importance_table(frame: pd.DataFrame, keys: list[str], seed: int = 0) -> pd.DataFrame:
    """Per lr/wd-study arm: evaluator, n_used, importance_lr, importance_wd (the
    ``importance.csv`` table); arms with fewer than MIN_TRIALS trials are left out."""
    info = stats.group_info(keys)
    rows = []
    for _, g in frame[stats.lrwd_mask(frame)].groupby(keys, sort=False):
        if len(g) < MIN_TRIALS:
            continue
        if len(g) > MAX_TRIALS:
            g = g.sample(MAX_TRIALS, random_state=seed)
        found = arm_importance(g["lr"].to_numpy(), g["wd"].to_numpy(), g["err"].to_numpy())
        rows.append({**{c: g[c].iloc[0] for c in info}, "evaluator": EVALUATOR,
                     "n_used": len(g), "importance_lr": found.get("lr", np.nan),
                     "importance_wd": found.get("wd", np.nan)})
    if not rows:
        return pd.DataFrame()
    return stats.ordered(pd.DataFrame(rows), stats.size_order(frame))
