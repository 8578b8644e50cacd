"""One self-contained ``report.html``: tables and figures (base64 PNGs) in a single file.

A person should be able to mail the report or attach it to an issue, so nothing in it
points to other files.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import words

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 0.9em; } .warn { color: #a15c00; }
.scroll { max-height: 32em; overflow: auto; }
"""
# Columns printed with 3 significant digits (tiny or log-scale values); others get 3 decimals.
SIGNIFICANT = ("lr", "wd", "pvalue")


@dataclass
class Section:
    """A heading with an optional explanation, table and figure (a PNG file to embed)."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figure: Path | None = None
    findings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.figure is None and (self.table is None or self.table.empty)


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers as short strings for people: p-values and lr/wd to 3 significant digits,
    other floats to 3 decimals, integers as they are (a missing one as an empty cell)."""
    out = table.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.is_integer_dtype(values) and values.hasnans:
            out[col] = values.map(lambda v: "" if pd.isna(v) else str(v))
        if not pd.api.types.is_float_dtype(values):
            continue
        if any(part in col for part in SIGNIFICANT):
            out[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
        else:
            out[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return out


def _image(path: Path) -> str:
    """An <img> carrying the PNG's bytes, so the report needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def render(title: str, meta: list[str], messages: list[str], sections: list[Section]) -> str:
    """The report as one HTML string."""
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<p class="note">{html.escape(line)}</p>' for line in meta]
    parts += [f'<p class="warn">{html.escape(line)}</p>' for line in messages]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f'<p class="note">{html.escape(section.text)}</p>')
        if section.findings:
            items = "".join(f"<li>{html.escape(line)}</li>" for line in section.findings)
            parts.append(f'<ul class="findings">{items}</ul>')
        if section.table is not None and not section.table.empty:
            table = format_table(section.table).to_html(index=False, border=0)
            parts.append(f'<div class="scroll">{table}</div>')
        if section.figure is not None:
            parts.append(_image(section.figure))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, title: str, meta: list[str], messages: list[str],
                 sections: list[Section]) -> Path:
    """Write ``render(...)`` to ``path`` as UTF-8."""
    path.write_text(render(title, meta, messages, sections), encoding="utf-8")
    return path


def _tables(tables: dict, *names: str) -> list[pd.DataFrame]:
    return [tables.get(name, pd.DataFrame()) for name in names]


def resolution_findings(tables: dict) -> list[str]:
    """What each comparison's n can resolve, then the larger sibling sweeps, in words."""
    resolution, larger = _tables(tables, "resolution", "larger_sweeps")
    lines = [words.resolution_sentence(r) for _, r in resolution.iterrows()]
    return lines + [words.larger_sentence(r) for _, r in larger.iterrows()]


def findings(tables: dict) -> list[str]:
    """The comparisons in words: what the n can resolve, unpaired KS, then paired on shared
    draws."""
    ks, paired = _tables(tables, "ks", "paired")
    lines = resolution_findings(tables) + [words.ks_sentence(r) for _, r in ks.iterrows()]
    return lines + [words.paired_sentence(r) for _, r in paired.iterrows()]


def _resolution_section(tables: dict) -> Section:
    """What the sample size can resolve, before any result is read."""
    from analysis import resolution

    alpha = f"{resolution.ALPHA:g}"
    return Section(
        "What this sample size can resolve",
        "From the trial counts alone, per lr/wd-study comparison (the arms of the KS and "
        f"paired tables below), at α = {alpha}. ks_min_gap: the smallest EDF gap (KS "
        f"statistic) for which scipy.stats.ks_2samp gives p < {alpha} with n_a and n_b "
        "trials, found by inverting ks_2samp's p-value over the gaps those sizes can produce "
        "(ks_method: the distribution it uses, exact or asymptotic, as ks_2samp picks). "
        "dkw_a/dkw_b: each EDF's 95% DKW band half-width. wilcoxon_min_same_way: the fewest "
        f"of the n_pairs shared draws that must go one way for scipy.stats.wilcoxon to give "
        f"p < {alpha} (wilcoxon_max_minority: the largest signed-rank sum of the draws going "
        "the other way that still does; empty: no outcome does; wilcoxon_best_p: the p of "
        "all draws one way). best_sd_a/best_sd_b: ±1σ of an arm's best of its N draws "
        "(with-replacement form, as in the expected-best band). A larger sweep of the same "
        "arms beside this one (a sibling folder's trials.csv) is named with its n "
        "(larger_sweeps.csv).",
        tables.get("resolution", pd.DataFrame()), findings=resolution_findings(tables))


def _stability_sections(tables: dict, pngs: dict, keys: list[str]) -> list[Section]:
    """Summary, EDFs and the stem comparisons."""
    from analysis import plots, stats

    within = ", ".join(str(k) for k in stats.WITHIN)
    ks, paired = _tables(tables, "ks", "paired")
    return [
        Section("Stability summary per group",
                f"Every study, each group one arm (keys: {', '.join(keys)}); studies and "
                f"datasets are never pooled. n finished trials; best and median top-1 error "
                f"(%); within_k: fraction of trials with Δerror < k points ({within}); "
                "diverged_frac; auc_10: area under the Δ-EDF on [0, 10] points (10 = every "
                "trial at the best); best_lr/best_wd at batch 2048.", tables["summary"]),
        Section("EDF of Δerror (lr/wd study)",
                "F(e) = fraction of an arm's trials with error below its best + e. Steeper "
                "and higher is more stable. Shaded with dashed edges: 95% DKW band, valid for "
                f"the whole curve at once. Arms with fewer than {plots.MIN_EDF_TRIALS} trials "
                "are left out. The x axis holds every finished trial: a curve ending below 1 "
                "means diverged trials, counted at their recorded error.",
                figure=pngs.get("edf_delta")),
        Section("EDF of top-1 error (lr/wd study)", "The same curves on absolute error.",
                figure=pngs.get("edf_error")),
        Section("Unpaired comparison: KS test (ViT_P vs ViT_C, ViT_C vs CNN)",
                "ks_pvalue: scipy.stats.ks_2samp on Δerror (ks.csv also has it on absolute "
                "error); within_4_diff = within_4_b − within_4_a with a 95% bootstrap "
                "interval. dkw_a/dkw_b: each curve's 95% band half-width.",
                ks, findings=[words.ks_sentence(r) for _, r in ks.iterrows()]),
        Section("Paired comparison on shared lr/wd draws",
                "Arms joined on (sweep, sample): ViT_P and ViT_C train at identical lr/wd at "
                "each sample k, the CNN at the same quantiles of its own interval. diff = "
                "err_b − err_a per draw; wilcoxon_pvalue: scipy.stats.wilcoxon; "
                "within_4 interval: paired bootstrap over sample indices.",
                paired, pngs.get("paired"),
                findings=[words.paired_sentence(r) for _, r in paired.iterrows()]),
    ]


def _budget_sections(tables: dict, pngs: dict, keys: list[str]) -> list[Section]:
    """Expected best error, good ranges, importance, lr/wd maps."""
    curves, ranges, importance = _tables(tables, "expected_best", "good_range", "importance")
    return [
        Section("Expected best error vs number of trials",
                "Dodge et al. (2019): the expected best of n lr/wd trials drawn without "
                "replacement from an arm's N; band ±1σ of the with-replacement form. How "
                "many random tries each recipe needs (expected_best.csv).",
                figure=pngs.get("expected_best"),
                findings=words.expected_sentences(curves, keys) if not curves.empty else []),
        Section("Good lr, wd and lr·wd ranges",
                "pycls's sweep analysis: the interval spanned by an arm's best 25% of trials, "
                "its width in decades (narrower = less stable), and 95% bootstrap intervals "
                "of its ends.", ranges,
                findings=words.range_sentences(ranges) if not ranges.empty else []),
        Section("Hyperparameter importance (Optuna)",
                "Optuna's PedAnovaImportanceEvaluator on each arm's finished trials "
                "(log-uniform lr and wd over the arm's observed range), normalised to sum "
                "to 1.", importance,
                findings=words.importance_sentences(importance) if not importance.empty
                else []),
        Section("Error vs lr and wd",
                "Trials of lr/wd (and tune) studies, lr and wd at batch 2048; the star marks "
                "each arm's best.", figure=pngs.get("hparams")),
    ]


def _recipe_sections(tables: dict, pngs: dict) -> list[Section]:
    """Optimizer gap and training length."""
    gap, lengths = _tables(tables, "optimizer_gap", "training_length")
    return [
        Section("Optimizer gap (AdamW vs SGD)",
                "Each optimizer's tuned error (the seed mean at a fixed lr/wd, or the best of "
                "an lr/wd sweep), n = trials it came from, [lo, hi] = seeds' range or a "
                "bootstrap 95% interval of the best; gap = SGD − AdamW.",
                gap, pngs.get("optimizer_gap"),
                findings=words.gap_sentences(gap) if not gap.empty else []),
        Section("Training length",
                "Tuned error per schedule length and its gap to the longest schedule.",
                lengths, pngs.get("training_length"),
                findings=words.length_sentences(lengths) if not lengths.empty else []),
    ]


def sections(tables: dict, pngs: dict, keys: list[str]) -> list[Section]:
    """The report's sections in reading order; studies absent from the results drop out."""
    every = ([_resolution_section(tables)] + _stability_sections(tables, pngs, keys)
             + _budget_sections(tables, pngs, keys) + _recipe_sections(tables, pngs))
    return [s for s in every if not s.empty]
