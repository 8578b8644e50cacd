"""The report's sections after its answer: each figure with its findings in words, and
what its numbers mean and its full table (both folded away by ``report``)."""

from __future__ import annotations

import pandas as pd

from analysis import words
from analysis.report import Section


def _tables(tables: dict, *names: str) -> list[pd.DataFrame]:
    return [tables.get(name, pd.DataFrame()) for name in names]


def pair_names(table: pd.DataFrame) -> str:
    """The compared stems, e.g. 'ViT_P vs ViT_C, ViT_C vs CNN' (only pairs present)."""
    from analysis import stats

    if table.empty:
        return ""
    pairs = table[["stem_a", "stem_b"]].drop_duplicates().itertuples(index=False)
    return ", ".join(f"{stats.stem_name(a)} vs {stats.stem_name(b)}" for a, b in pairs)


def resolution_section(tables: dict) -> Section:
    """What the sample size can resolve: the definitions behind the verdicts."""
    from analysis import report, resolution

    alpha = f"{resolution.ALPHA:g}"
    return Section(
        "What this sample size can resolve",
        "From the trial counts alone, per lr/wd-study comparison, at α = " + alpha + ". "
        "ks_min_gap: the smallest EDF gap (KS statistic) for which scipy.stats.ks_2samp "
        f"gives p < {alpha} with n_a and n_b trials (ks_method: exact or asymptotic, as "
        "ks_2samp picks). dkw_a/dkw_b: each EDF's 95% DKW band half-width. "
        "wilcoxon_min_same_way: the fewest of the n_pairs shared draws that must go one way "
        f"for scipy.stats.wilcoxon to give p < {alpha} (wilcoxon_max_minority: the largest "
        "signed-rank sum of the draws going the other way that still does; empty: no "
        "outcome does; wilcoxon_best_p: the p of all draws one way, exact up to 50 pairs). "
        "best_sd_a/best_sd_b: ±1σ of an arm's best of N fresh draws (with replacement from "
        "its errors). A larger sweep of the same arms beside this one is named with its n "
        "(larger_sweeps.csv).",
        tables.get("resolution", pd.DataFrame()),
        findings=report.resolution_findings(tables))


def comparison_sections(tables: dict, pngs: dict) -> list[Section]:
    """The paired and unpaired comparisons behind the verdicts."""
    ks, paired = _tables(tables, "ks", "paired")
    return [
        Section(f"Paired comparison on shared lr/wd draws ({pair_names(paired)})",
                "Arms joined on (sweep, sample): ViT_P and ViT_C train at identical lr/wd at "
                "each sample k, the CNN at the same quantiles of its own interval. diff = "
                "err_b − err_a per draw, rounded to the errors' resolution (one tie is one "
                "tie); wilcoxon_pvalue: scipy.stats.wilcoxon, exact distribution up to 50 "
                "non-zero pairs (conservative with ties), normal approximation beyond; "
                "within_4 interval: paired bootstrap over sample indices (in sample order).",
                paired, pngs.get("paired"),
                findings=[words.paired_sentence(r) for _, r in paired.iterrows()]),
        Section(f"Unpaired comparison: KS test ({pair_names(ks)})",
                "ks_pvalue: scipy.stats.ks_2samp on Δerror (ks.csv also has it on absolute "
                "error); within_4_diff = within_4_b − within_4_a with a 95% bootstrap "
                "interval (each arm's Δ sorted first, so the draws follow the data). "
                "dkw_a/dkw_b: each curve's 95% band half-width. Δerror is on the errors' "
                "grid: an error of exactly best + k has Δ = k and is not within k (Δ < k).",
                ks, findings=[words.ks_sentence(r) for _, r in ks.iterrows()]),
    ]


def headroom_section(tables: dict, pngs: dict) -> Section:
    """Δ as a share of the room to chance, and the validity gate."""
    from analysis import headroom

    table = tables.get("headroom", pd.DataFrame())
    shares = ", ".join(f"{s:g}" for s in headroom.NORM_WITHIN)
    return Section(
        "Room to chance and the validity gate",
        "room = chance − best (points): how far the arm learned. median_delta_norm and "
        f"within_norm_<s> ({shares}): Δerror as a share of the room (0 = the arm's best, "
        "1 = chance), so an arm stuck near chance cannot pass for a stable one; auc_norm: "
        "area under that Δ-EDF on [0, 1] (1 = every draw at the best); ks.csv's "
        "ks_pvalue_norm compares the twins on this scale. The gate: fewer than "
        f"{headroom.MAX_NEAR_CHANCE:.0%} of draws within {headroom.NEAR_CHANCE_POINTS:g} "
        f"points of chance (near_ok), the best draw's lr in the middle "
        f"{headroom.LR_MIDDLE:.0%} of the searched log-lr interval (lr_ok; lr_source: the "
        "sweep's config.yaml, or the trials' own range for older records), and with "
        "--max-best ERR every arm's best at most ERR (best_ok).",
        table, pngs.get("edf_delta_norm"),
        findings=[headroom.gate_sentence(r) for _, r in table.iterrows()])


def curve_sections(tables: dict, pngs: dict) -> list[Section]:
    """Training curves: not learning against unstable."""
    from analysis import curves

    stalls = tables.get("stalls", pd.DataFrame())
    return [Section(
        "Training curves: stalled at chance or diverged",
        "From curves.csv: per lr/wd-study arm, the best, median and worst trial (by error, "
        "ties in data order) with model and EMA error and training loss per epoch. stalled: "
        f"trials whose final training loss is within {curves.STALL_TOL:.0%} of ln C (C "
        "classes; the loss of a uniform guess) without diverging: they never learned. "
        "diverged: trials flagged diverged by the trainer. loss_best/median/worst: those "
        "trials' final training loss (training_curves.csv has every epoch).",
        stalls, pngs.get("training_curves"),
        findings=[words.stall_sentence(r) for _, r in stalls.iterrows()])]


def hparam_sections(tables: dict, pngs: dict) -> list[Section]:
    """Error against each hyperparameter, the good ranges, the lr × wd map, importance."""
    ranges, importance = _tables(tables, "good_range", "importance")
    return [
        Section("Good lr, wd and lr·wd ranges (pycls's estimator)",
                "pycls's get_filters: 2,500 random subsets of 25% of an arm's trials (with "
                "replacement), the best trial of each, and the 2.5/50/97.5 percentiles of "
                "those trials' log10 value: lo/median/hi, and decades = log10(hi/lo) "
                "(narrower = touchier). Trials are put in data order first (error, lr, wd, "
                "sample, trial id), so ties break the same way whatever the file's row "
                "order; best: the value at the arm's best trial.",
                ranges, pngs.get("good_range"),
                findings=words.range_sentences(ranges) if not ranges.empty else [],
                significant=("lo", "median", "hi", "best")),
        Section("lr × wd by error rank", "Each trial at its (lr, wd), coloured by its "
                "rank within its arm (0 best); the star is the best.",
                figure=pngs.get("rank_map")),
        Section("Error vs lr and wd, all arms",
                "Trials of lr/wd (and tune) studies, lr and wd as trained; the star marks "
                "each arm's best.", figure=pngs.get("hparams")),
        Section("Hyperparameter importance (Optuna PED-ANOVA)",
                "PED-ANOVA's raw score (raw_lr, raw_wd): the Pearson divergence between a "
                "parameter's distribution among the arm's best 10% of trials and among all "
                "(0: the best trials are spread like all trials). p_lr/p_wd: permutation "
                "p-values (errors shuffled over the same points, 39 times). importance_lr/"
                "importance_wd: the raw scores normalised to sum to 1, only meaningful when "
                "not negligible (negligible: both p >= 0.05).", importance,
                findings=words.importance_sentences(importance) if not importance.empty
                else []),
    ]


def budget_sections(tables: dict, pngs: dict, keys: list[str]) -> list[Section]:
    """Expected best error and the per-group summary."""
    from analysis import stats

    curves, summary = _tables(tables, "expected_best", "summary")
    within = ", ".join(str(k) for k in stats.WITHIN)
    return [
        Section("Expected best error vs number of trials",
                "Dodge et al. (2019): the expected best of n lr/wd trials drawn without "
                "replacement from an arm's N, with a band of ±1σ of the same draws "
                "(allentune's without-replacement σ; 0 at n = N). expected_wr/sd_wr in "
                "expected_best.csv: the with-replacement form.",
                figure=pngs.get("expected_best"),
                findings=words.expected_sentences(curves, keys) if not curves.empty else []),
        Section("Stability summary per group",
                f"Every study, each group one arm (keys: {', '.join(keys)}); studies and "
                f"datasets are never pooled. n finished trials; best and median top-1 error "
                f"(%); within_k: fraction of trials with Δerror < k points ({within}; "
                "exactly best + k is not within k); diverged_frac; auc_10: area under the "
                "Δ-EDF on [0, 10] points (10 = every trial at the best); best_lr/best_wd.",
                summary),
        Section("EDF of top-1 error (lr/wd study)", "The Δ-EDF curves of the answer on "
                "absolute error, with 95% DKW bands valid for the whole curve at once.",
                figure=pngs.get("edf_error")),
    ]


def recipe_sections(tables: dict, pngs: dict) -> list[Section]:
    """Optimizer gap and training length."""
    gap, lengths = _tables(tables, "optimizer_gap", "training_length")
    return [
        Section("Optimizer gap (AdamW vs SGD)",
                "Each optimizer's tuned error (the seed mean at a fixed lr/wd, or the best of "
                "an lr/wd sweep), n = trials it came from, [lo, hi] = seeds' range or "
                "the 2.5–97.5% spread of the best of a resample of the sweep (not a confidence "
                "interval: a resample's best is never below the observed one); gap = SGD − "
                "AdamW.",
                gap, pngs.get("optimizer_gap"),
                findings=words.gap_sentences(gap) if not gap.empty else []),
        Section("Training length",
                "Tuned error per schedule length and its gap to the longest schedule.",
                lengths, pngs.get("training_length"),
                findings=words.length_sentences(lengths) if not lengths.empty else []),
    ]


def sections(tables: dict, pngs: dict, keys: list[str]) -> list[Section]:
    """Every section in reading order."""
    return (curve_sections(tables, pngs) + [headroom_section(tables, pngs)]
            + comparison_sections(tables, pngs)
            + hparam_sections(tables, pngs) + budget_sections(tables, pngs, keys)
            + recipe_sections(tables, pngs) + [resolution_section(tables)])
