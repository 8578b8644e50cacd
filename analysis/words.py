"""Findings in words, computed from the tables: what each comparison shows at the
measured n, and when it shows nothing. Every sentence carries its numbers, so none can
claim more than the data do. Used by the report and the notebook.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import expected, stats

ALPHA = 0.05  # significance level of the sentences
OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD"}


def where(row: pd.Series | dict) -> str:
    """Where a row's numbers come from, e.g. 'tiny · AdamW · 50 ep · lr_wd on synthetic'."""
    parts = [str(row[k]) for k in ("size",) if k in row]
    if "optimizer" in row:
        parts.append(OPTIMIZERS.get(row["optimizer"], str(row["optimizer"])))
    if "epochs" in row:
        parts.append(f"{row['epochs']} ep")
    if "study" in row:
        parts.append(f"{row['study']} on {row.get('data', '?')}")
    if "sweep" in row:
        parts.append(f"sweep {row['sweep']}")
    return " · ".join(parts)


def _names(row: pd.Series) -> tuple[str, str]:
    return stats.stem_name(row["stem_a"]), stats.stem_name(row["stem_b"])


def ks_sentence(row: pd.Series) -> str:
    """The unpaired KS comparison of two arms' Δ-EDFs, in words."""
    a, b = _names(row)
    n = f"n = {row['n_a']} per arm" if row["n_a"] == row["n_b"] else \
        f"n = {row['n_a']} ({a}) and {row['n_b']} ({b})"
    head = f"{a} vs {b} ({where(row)}): KS p = {row['ks_pvalue']:.2g} at {n}"
    band = max(row["dkw_a"], row["dkw_b"])
    if not row["ks_pvalue"] < ALPHA:
        return (f"{head}: the data cannot tell the two Δ-EDFs apart (each curve has a "
                f"±{band:.2f} DKW band).")
    return (f"{head}: the Δ-EDFs differ; within 4 points of their best: {a} "
            f"{row['within_4_a']:.0%}, {b} {row['within_4_b']:.0%} (difference "
            f"{row['within_4_diff']:+.2f}, 95% CI [{row['within_4_lo']:+.2f}, "
            f"{row['within_4_hi']:+.2f}]).")


def paired_sentence(row: pd.Series) -> str:
    """The paired comparison of two arms on shared draws, in words."""
    a, b = _names(row)
    head = (f"{b} − {a} on the same {row['n_pairs']} lr/wd draws ({where(row)}): median "
            f"{row['diff_median']:+.2f} points (mean {row['diff_mean']:+.2f}), {b} lower in "
            f"{row['b_lower']} of {row['n_pairs']}, Wilcoxon p = {row['wilcoxon_pvalue']:.2g}")
    if row["wilcoxon_pvalue"] < ALPHA:
        side = "lower" if row["diff_median"] < 0 else "higher"
        verdict = f"{b}'s error is {side} at the same settings"
    else:
        verdict = f"no paired difference detectable at n = {row['n_pairs']}"
    lo, hi = row["within_4_lo"], row["within_4_hi"]
    if np.isnan(lo):
        return f"{head}: {verdict}."
    ci = f"within-4 difference {row['within_4_diff']:+.2f}, paired 95% CI [{lo:+.2f}, {hi:+.2f}]"
    ci += " (excludes 0)" if lo > 0 or hi < 0 else " (includes 0: not resolved)"
    return f"{head}: {verdict}; {ci}."


def expected_sentences(curves: pd.DataFrame, keys: list[str], at: int = 8) -> list[str]:
    """Per arm: the expected best of ``at`` random trials and the trials needed to come
    within 1 point of the best found."""
    out = []
    for _, c in curves.groupby(keys, sort=False):
        first = c.iloc[0]
        n = min(at, int(first["N"]))
        value = c.loc[c["n_trials"] <= n, "expected"].iloc[-1]
        need = expected.trials_to_within(c, 1.0)
        out.append(f"{stats.stem_name(first['stem'])} {first['model']} ({where(first)}): "
                   f"expected best of {n} random draws {value:.1f}%; {need} draw(s) expected "
                   f"to come within 1 point of the best of all {first['N']} "
                   f"({c['expected'].iloc[-1]:.1f}%).")
    return out


def range_sentences(ranges: pd.DataFrame, param: str = "lr") -> list[str]:
    """Per arm: the width of the good range of ``param`` with the intervals of its ends."""
    out = []
    for _, r in ranges[ranges["param"] == param].iterrows():
        ends = ""
        if "lo_low" in r and not pd.isna(r.get("lo_low")):
            ends = (f" (ends' 95% CIs [{r['lo_low']:.3g}, {r['lo_high']:.3g}] and "
                    f"[{r['hi_low']:.3g}, {r['hi_high']:.3g}])")
        out.append(f"{stats.stem_name(r['stem'])} {r['model']} ({where(r)}): best "
                   f"{r['top']} of {r['n']} trials span {param} {r['lo']:.3g}–{r['hi']:.3g}, "
                   f"{r['decades']:.2f} decades{ends}.")
    return out


def importance_sentences(table: pd.DataFrame) -> list[str]:
    """Per arm: which of lr and wd matters more, with the evaluator named."""
    out = []
    for _, r in table.iterrows():
        top = "lr" if r["importance_lr"] >= r["importance_wd"] else "wd"
        out.append(f"{stats.stem_name(r['stem'])} {r['model']} ({where(r)}): {r['evaluator']} "
                   f"on {r['n_used']} trials gives lr {r['importance_lr']:.2f}, wd "
                   f"{r['importance_wd']:.2f}: {top} explains more of the error.")
    return out


def gap_sentences(gap: pd.DataFrame) -> list[str]:
    """Per model: the SGD - AdamW gap, and whether the two intervals overlap."""
    out = []
    for _, r in gap.iterrows():
        overlap = not (r["hi_adamw"] < r["lo_sgd"] or r["hi_sgd"] < r["lo_adamw"])
        verdict = ("the intervals overlap: not resolved at this n" if overlap
                   else "the intervals do not overlap")
        out.append(f"{r['model']} ({where(r)}): SGD − AdamW = {r['gap']:+.2f} points "
                   f"(AdamW {r['err_adamw']:.1f}% [{r['lo_adamw']:.1f}, {r['hi_adamw']:.1f}], "
                   f"n = {r['n_adamw']}; SGD {r['err_sgd']:.1f}% [{r['lo_sgd']:.1f}, "
                   f"{r['hi_sgd']:.1f}], n = {r['n_sgd']}); {verdict}.")
    return out


def length_sentences(lengths: pd.DataFrame) -> list[str]:
    """Per model: what the shortest schedule costs against the longest."""
    out = []
    series = [k for k in ("model", "study", "data", "optimizer", "batch_size", "sweep")
              if k in lengths]
    for _, r in lengths.loc[lengths.groupby(series)["epochs"].idxmin()].iterrows():
        out.append(f"{r['model']} ({where(r.drop(labels='epochs'))}): {r['epochs']} epochs "
                   f"cost {r['delta_to_longest']:+.2f} points against {r['longest']} "
                   f"(n = {r['n']} per length).")
    return out
