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
    if "subset" in row:
        parts.append(f"subset {row['subset']}")
    return " · ".join(parts)


def _names(row: pd.Series | dict) -> tuple[str, str]:
    """Display names of a comparison's two stems (ViT_P, ViT_C, CNN)."""
    return stats.stem_name(row["stem_a"]), stats.stem_name(row["stem_b"])


def _per_arm(row: pd.Series | dict) -> str:
    """'6 per arm', or '6 (ViT_P) and 5 (ViT_C)' when the arms' n differ."""
    a, b = _names(row)
    if row["n_a"] == row["n_b"]:
        return f"{row['n_a']} per arm"
    return f"{row['n_a']} ({a}) and {row['n_b']} ({b})"


def ks_sentence(row: pd.Series) -> str:
    """The unpaired KS comparison of two arms' Δ-EDFs, in words."""
    a, b = _names(row)
    head = f"{a} vs {b} ({where(row)}): KS p = {row['ks_pvalue']:.2g} at n = {_per_arm(row)}"
    band = max(row["dkw_a"], row["dkw_b"])
    norm = row.get("ks_pvalue_norm", np.nan)
    head += "" if pd.isna(norm) else f" (p = {norm:.2g} on Δ as a share of the room to chance)"
    if not row["ks_pvalue"] < ALPHA:
        return (f"{head}: the data cannot tell the two Δ-EDFs apart (each curve has a "
                f"±{band:.2f} DKW band).")
    ci = within_ci(row["within_4_diff"], row["within_4_lo"], row["within_4_hi"], "95% CI")
    return (f"{head}: the Δ-EDFs differ; within 4 points of their best: {a} "
            f"{row['within_4_a']:.0%}, {b} {row['within_4_b']:.0%} ({ci}).")


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
    return f"{head}: {verdict}; {within_ci(row['within_4_diff'], lo, hi, 'paired 95% CI')}."


def within_ci(diff: float, lo: float, hi: float, name: str) -> str:
    """The within-4 difference with its bootstrap interval, in words. A zero-width
    interval is no evidence of a zero difference: every resample gave the same value,
    which happens when too few trials lie near the 4-point cut to move it."""
    text = f"within-4 difference {diff:+.2f}"
    if np.isclose(lo, hi):
        return (f"{text}, and every bootstrap resample gives {lo:+.2f} (a zero-width "
                "interval: too few trials near the 4-point cut to resolve it)")
    text += f", {name} [{lo:+.2f}, {hi:+.2f}]"
    return text + (" (excludes 0)" if lo > 0 or hi < 0 else " (includes 0: not resolved)")


def expected_sentences(curves: pd.DataFrame, keys: list[str], at: int = 8) -> list[str]:
    """Per arm: the expected best of ``at`` random trials and the trials needed to come
    within 1 point of the best found."""
    out = []
    for _, c in curves.groupby(keys, sort=False):
        first = c.iloc[0]
        n = min(at, int(first["N"]))
        at_n = c[c["n_trials"] <= n].iloc[-1]
        value, sd = at_n["expected"], at_n["sd"]
        need = expected.trials_to_within(c, 1.0)
        out.append(f"{stats.stem_name(first['stem'])} {first['model']} ({where(first)}): "
                   f"expected best of {n} random draws {value:.1f}% (±{sd:.1f}, 1σ over "
                   f"which {n} of the {first['N']} are drawn); {need} draw(s) expected "
                   f"to come within 1 point of the best of all {first['N']} "
                   f"({c['expected'].iloc[-1]:.1f}%).")
    return out


def range_sentences(ranges: pd.DataFrame, param: str = "lr") -> list[str]:
    """Per arm: pycls's good range of ``param`` and its width."""
    out = []
    for _, r in ranges[ranges["param"] == param].iterrows():
        out.append(f"{stats.stem_name(r['stem'])} {r['model']} ({where(r)}): the best trial "
                   f"of a random {r['subset_size']} of its {r['n']} lands at {param} "
                   f"{r['lo']:.3g}–{r['hi']:.3g} (95%; median {r['median']:.3g}), "
                   f"{r['decades']:.2f} decades.")
    return out


def importance_sentences(table: pd.DataFrame) -> list[str]:
    """Per arm: whether lr or wd picks out the best trials at all, and which more."""
    out = []
    for _, r in table.iterrows():
        head = (f"{stats.stem_name(r['stem'])} {r['model']} ({where(r)}): PED-ANOVA raw "
                f"scores on {r['n_used']} trials lr {r['raw_lr']:.3g} (permutation p = "
                f"{r['p_lr']:.2g}), wd {r['raw_wd']:.3g} (p = {r['p_wd']:.2g})")
        if r["negligible"]:
            out.append(f"{head}: neither stands out from shuffled errors, so the "
                       f"{r['importance_lr']:.2f}/{r['importance_wd']:.2f} split is noise.")
            continue
        top = "lr" if r["raw_lr"] >= r["raw_wd"] else "wd"
        out.append(f"{head}: {top} picks out the best trials more (split lr "
                   f"{r['importance_lr']:.2f}, wd {r['importance_wd']:.2f}).")
    return out


def gap_sentences(gap: pd.DataFrame) -> list[str]:
    """Per model: the SGD - AdamW gap, and whether the two intervals overlap, touch
    (share an end, at the printed 0.1 resolution) or are apart."""
    out = []
    for _, r in gap.iterrows():
        verdict = overlap_words(*(round(float(r[c]), 1) for c in ("lo_adamw", "hi_adamw",
                                                                   "lo_sgd", "hi_sgd")))
        out.append(f"{r['model']} ({where(r)}): SGD − AdamW = {r['gap']:+.2f} points "
                   f"(AdamW {r['err_adamw']:.1f}% [{r['lo_adamw']:.1f}, {r['hi_adamw']:.1f}], "
                   f"n = {r['n_adamw']}; SGD {r['err_sgd']:.1f}% [{r['lo_sgd']:.1f}, "
                   f"{r['hi_sgd']:.1f}], n = {r['n_sgd']}); {verdict}.")
    return out


def overlap_words(lo_a: float, hi_a: float, lo_b: float, hi_b: float) -> str:
    """How two intervals lie: overlapping, touching at one end, or apart."""
    if hi_a < lo_b or hi_b < lo_a:
        return "the intervals do not overlap"
    if hi_a == lo_b or hi_b == lo_a:
        return (f"the intervals touch at {max(lo_a, lo_b):.1f} (they share an end): not "
                "resolved at this n")
    return "the intervals overlap: not resolved at this n"


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


def _ks_can(row: pd.Series | dict) -> str | None:
    """What the KS test can detect at the row's n; None when no gap reaches ALPHA."""
    if pd.isna(row["ks_min_gap"]):
        return None
    if row["ks_min_gap"] >= 1:
        return "the KS test can only detect completely separated EDFs (a gap of 1)"
    return f"the KS test can only detect EDF gaps of at least {row['ks_min_gap']:.2f}"


def _paired_can(row: pd.Series | dict) -> str | None:
    """What a paired Wilcoxon test needs at the row's number of shared draws; None when
    no outcome reaches ALPHA."""
    n, same = row["n_pairs"], row["wilcoxon_min_same_way"]
    if not n or pd.isna(same):
        return None
    b = _names(row)[1]
    if int(same) == n:
        return f"a paired test needs {b} lower on all {n} draws (or higher on all)"
    return (f"a paired test needs {b} lower on at least {int(same)} of {n} draws (or higher "
            f"on as many)")


def resolution_sentence(row: pd.Series) -> str:
    """What the comparison's n can resolve at all, whatever the errors turned out to be."""
    a, b = _names(row)
    can = [part for part in (_ks_can(row), _paired_can(row)) if part]
    cannot = []
    if pd.isna(row["ks_min_gap"]):
        cannot.append(f"no EDF gap, however large, reaches KS p < {ALPHA:g}")
    if not row["n_pairs"]:
        cannot.append("there are no shared draws for a paired test")
    elif pd.isna(row["wilcoxon_min_same_way"]):
        cannot.append(f"no paired outcome on {row['n_pairs']} draws reaches p < {ALPHA:g}, "
                      "not even all draws one way")
    text = f"{a} vs {b} ({where(row)}): at n = {_per_arm(row)}, " + " and ".join(can + cannot)
    text += ("; differences smaller than that are not ruled out." if can
             else "; no difference between the arms is ruled out at this n.")
    text += (f" Each EDF is known only to ±{max(row['dkw_a'], row['dkw_b']):.2f} (95% DKW "
             "band)")
    if pd.isna(row.get("best_sd_a", np.nan)):
        return text + "."
    return text + (f", and the best error found would move by about ±{row['best_sd_a']:.1f} "
                   f"points for {a} and ±{row['best_sd_b']:.1f} for {b} in a re-run (1σ).")


def larger_sentence(row: pd.Series) -> str:
    """Where a sibling sweep holds the same arms with more trials, and what its n resolves."""
    a, b = _names(row)
    text = (f"{a} vs {b} ({where(row)}): a larger sweep of the same arms is in "
            f"{row['folder']} (relative to {row['beside']}/) with n = {_per_arm(row)} and "
            f"{row['n_pairs']} shared draws")
    can = [] if pd.isna(row["ks_min_gap"]) else [
        f"its n resolves EDF gaps of at least {row['ks_min_gap']:.2f} (KS p < {ALPHA:g})"]
    can += [part for part in (_paired_can(row),) if part]
    if not can:
        return text + f"; even its n resolves no difference at p < {ALPHA:g}."
    return text + "; " + " and ".join(can) + "."


def verdict(res: pd.Series, ks: pd.Series | None, pair: pd.Series | None) -> str:
    """One comparison's answer first: what differs, by how much, and whether the n
    resolves it (paired test on shared draws, then the Δ-EDFs' KS test)."""
    a, b = _names(res)
    parts = []
    if pair is not None and not pd.isna(pair["wilcoxon_pvalue"]):
        side = "lower" if pair["diff_median"] < 0 else "higher"
        shown = pair["wilcoxon_pvalue"] < ALPHA
        parts.append(
            f"on the same {pair['n_pairs']} lr/wd draws {b} is lower in {pair['b_lower']} of "
            f"{pair['n_pairs']} "
            f"(median {pair['diff_median']:+.2f} points, Wilcoxon p = "
            f"{pair['wilcoxon_pvalue']:.2g}): "
            + (f"{b}'s error is {side}, resolved" if shown else "not resolved at this n"))
    if ks is not None:
        told = ks["ks_pvalue"] < ALPHA
        gap = "" if pd.isna(res["ks_min_gap"]) else f"; this n sees gaps ≥ {res['ks_min_gap']:.2f}"
        parts.append(f"stability (Δ-EDF): KS D = {ks['ks_stat']:.2f}, p = {ks['ks_pvalue']:.2g}"
                     + (" — the curves differ" if told else " — not told apart") + gap)
    if not parts:
        parts.append("no shared draws and no KS comparison")
    return f"{b} vs {a} ({where(res)}, n = {_per_arm(res)}): " + "; ".join(parts) + "."


def stall_sentence(row: pd.Series) -> str:
    """Per arm: how many trials never left chance and how many diverged."""
    name = f"{stats.stem_name(row['stem'])} {row['model']} ({where(row)})"
    text = (f"{name}: {row['stalled']} of {row['with_curves']} trials end with training loss "
            f"at ln C = {row['chance_loss']:.2f} (never learned), {row['diverged']} of "
            f"{row['n']} diverged")
    if row["with_curves"] and row["stalled"] == row["with_curves"]:
        return text + "; no trial of this arm learned at all."
    return text + f"; the best trial's final loss is {row['loss_best']:.2f}."
