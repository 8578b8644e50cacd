"""Seaborn figures of the three stability studies.

Each function returns a matplotlib Figure, or None when the results hold no data for that
study, so callers can skip a figure rather than draw an empty one. Figures are plain
``Figure`` objects, not pyplot ones, so they need no display and no closing: the command
line renders them with Agg, a notebook shows them inline. Drawing time matters (100,000
trials in under 10 s), hence at most one seaborn call per panel, fixed margins instead of
a layout engine, legends at fixed places, and subsampled, rasterized scatter points.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator

from analysis import stats

MIN_EDF_TRIALS = 5  # groups with fewer finished trials are left out of the EDF figures
MAX_SCATTER = 1500  # points per model and panel in the lr/wd scatter; more are subsampled
PLOT_STEPS = 600  # EDF steps drawn per curve: finer than a panel's pixels
OPTIMIZER_NAMES = {"adamw": "AdamW", "sgd": "SGD"}
EDF_AXES = {
    "delta": ("Δ top-1 error (points above the group's best)", "EDF of Δerror"),
    "error": ("top-1 error (%)", "EDF of top-1 error"),
}


def theme() -> None:
    """One look for every figure."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=0.95)


def stem_colors(stems: list[str] | pd.Series) -> dict[str, tuple]:
    """Fixed colours per stem (ViT_P blue, ViT_C orange, others after) across figures."""
    order = list(stats.STEM_ORDER) + sorted(set(stems) - set(stats.STEM_ORDER))
    return dict(zip(order, sns.color_palette("colorblind", len(order)), strict=True))


def facet_label(values: dict) -> str:
    """A short title for a combination of settings, e.g. 'SGD · 50 ep · sweep lrwd'."""
    parts = []
    for key, value in values.items():
        if key == "optimizer":
            parts.append(OPTIMIZER_NAMES.get(value, str(value)))
        elif key == "epochs":
            parts.append(f"{value} ep")
        elif key in ("batch_size", "sweep"):
            parts.append(f"{key.split('_')[0]} {value}")
        else:
            parts.append(str(value))
    return " · ".join(parts)


def _combos(table: pd.DataFrame, cols: list[str], sizes: list[str]) -> list[dict]:
    """The distinct combinations of ``cols`` in ``table``, in the report's order."""
    return stats.ordered(table[cols].drop_duplicates(), sizes).to_dict("records")


def _select(table: pd.DataFrame, values: dict) -> pd.DataFrame:
    """Rows of ``table`` matching every key/value in ``values``."""
    if not values:
        return table
    return table[np.logical_and.reduce([table[k] == v for k, v in values.items()])]


def _grid(n_rows: int, n_cols: int, width: float = 3.8, height: float = 2.9,
          left: float = 0.75, gap_w: float = 0.6,
          gap_h: float = 0.8) -> tuple[Figure, np.ndarray]:
    """A figure with an (n_rows, n_cols) array of axes, each cell about ``width`` x
    ``height`` inches. Margins are fixed in inches rather than set by a layout engine,
    which would measure every label again and take most of a big grid's drawing time."""
    fig_w, fig_h = max(width * n_cols, 6.4), height * n_rows + 0.75  # room for the title
    axes_w = (fig_w - left - 0.2 - (n_cols - 1) * gap_w) / n_cols
    axes_h = (fig_h - 0.75 - 0.55 - (n_rows - 1) * gap_h) / n_rows
    fig = Figure(figsize=(fig_w, fig_h))
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={
        "left": left / fig_w, "right": 1 - 0.2 / fig_w, "bottom": 0.55 / fig_h,
        "top": 1 - 0.75 / fig_h, "wspace": gap_w / axes_w, "hspace": gap_h / axes_h})
    return fig, axes


def _edf_limits(frame: pd.DataFrame, keys: list[str], x: str) -> pd.DataFrame:
    """Per group, the x range showing the bulk of its finished (not diverged) trials:
    from the lowest value to the 98th percentile (all trials if every one diverged)."""
    ok = frame[~frame["diverged"]].groupby(keys)[x]
    every = frame.groupby(keys)[x]
    return pd.DataFrame({"lo": ok.min(), "hi": ok.quantile(0.98)}).reindex(
        every.min().index).fillna({"lo": every.min(), "hi": every.max()})


def _steps(curve: pd.DataFrame, x: str, lo: float, hi: float) -> pd.DataFrame:
    """One EDF's steps (at most PLOT_STEPS of them) padded to run from 0 at the panel's
    left edge to its right edge; before the first trial the band is [0, eps]."""
    curve = curve.iloc[stats.thin(len(curve), PLOT_STEPS)]
    first, last = curve.iloc[0], curve.iloc[-1]
    eps = stats.dkw_epsilon(int(first["n"]))
    head = pd.DataFrame({x: [min(lo, first[x])], "F": [0.0], "lower": [0.0],
                         "upper": [min(eps, 1.0)]})
    tail = pd.DataFrame({x: [max(hi, last[x])], "F": [last["F"]], "lower": [last["lower"]],
                         "upper": [last["upper"]]})
    return pd.concat([head, curve[[x, "F", "lower", "upper"]], tail], ignore_index=True)


def edf_figure(curves: pd.DataFrame, frame: pd.DataFrame, keys: list[str],
               x: str = "delta") -> Figure | None:
    """EDF panels (PAPER.md Fig. 4/5 bottom row) with 95% DKW bands.

    One column per model size, one row per optimizer (and other setting), one curve per
    model (ViT_P, ViT_C, other stems). ``x`` is "delta" (Δerror) or "error". Diverged
    trials sit at chance error, so a curve that stops short of 1 shows them.
    """
    curves = curves[curves["n"] >= MIN_EDF_TRIALS]
    if curves.empty:
        return None
    sizes = stats.size_order(frame)
    curves = stats.ordered(curves, sizes)
    frame = stats.with_delta(frame, keys)
    limits = _edf_limits(frame, keys, x)
    diverged = frame.groupby(keys)["diverged"].sum()
    rows = _combos(curves, stats.facet_keys(keys), sizes)
    columns = [s for s in sizes if s in set(curves["size"])]
    colors = stem_colors(curves["stem"])
    fig, axes = _grid(len(rows), len(columns))
    label, title = EDF_AXES[x]
    for r, row in enumerate(rows):
        in_row = _select(curves, row)
        for c, size in enumerate(columns):
            ax, cell = axes[r, c], in_row[in_row["size"] == size]
            if cell.empty:
                ax.set_visible(False)
                continue
            groups = list(cell[keys].drop_duplicates().itertuples(index=False, name=None))
            lo, hi = limits.loc[groups, "lo"].min(), limits.loc[groups, "hi"].max()
            if x == "delta":
                lo, hi = 0.0, float(np.ceil(max(hi, stats.AUC_UPTO) / 5) * 5)
            else:
                lo, hi = lo - 0.5, hi + 1.0
            for group, curve in cell.groupby(keys, sort=False):
                n_div = int(diverged[group])
                name = f"{curve['model'].iloc[0]} (n={curve['n'].iloc[0]}" + (
                    f", {n_div} diverged)" if n_div else ")")
                _draw_edf(ax, _steps(curve, x, lo, hi), x, colors[curve["stem"].iloc[0]], name)
            ax.set(xlim=(lo, hi), ylim=(0, 1.01), title=f"{size} · {facet_label(row)}",
                   xlabel=label if r == len(rows) - 1 else "",
                   ylabel="fraction of trials below" if c == 0 else "")
            ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{title} per model size (bands: 95% DKW, valid for the whole curve)")
    return fig


def _draw_edf(ax: Axes, steps: pd.DataFrame, x: str, color: tuple, name: str) -> None:
    """One EDF as a step line with its band. Drawn with matplotlib: seaborn's ecdfplot
    computes its own EDF and has no confidence band."""
    ax.fill_between(steps[x], steps["lower"], steps["upper"], step="post", color=color,
                    alpha=0.18, linewidth=0)
    ax.plot(steps[x], steps["F"], drawstyle="steps-post", color=color, linewidth=1.4,
            label=name)


def _log_ticks(ax: Axes) -> None:
    """Labelled ticks at 1, 2 and 5 per decade and no minor ticks: readable over the
    sweeps' 1-2 decades, and minor log ticks double the drawing time."""
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    ax.minorticks_off()


def _subsample(frame: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most ``cap`` random trials per model, always keeping each model's best."""
    rng = np.random.default_rng(seed)
    keep = []
    for _, g in frame.groupby("model", sort=False):
        index = g.index.to_numpy()
        if len(index) > cap:
            index = np.union1d(rng.choice(index, cap, replace=False), [g["err"].idxmin()])
        keep.append(index)
    return frame.loc[np.concatenate(keep)]


def hparam_figure(frame: pd.DataFrame, keys: list[str], seed: int = 0) -> Figure | None:
    """Error vs lr, wd and lr·wd on log axes (PAPER.md Fig. 4 top row), each model's best
    marked with a star.

    Only lr/wd-study groups (at least ``stats.MIN_LRWD_SETTINGS`` distinct settings) are
    drawn, one row per optimizer (and other setting); colour is the stem, marker the
    size. Errors above the plotted range (diverged trials at chance error) are drawn at
    the top edge as x. More than ``MAX_SCATTER`` trials per model are randomly subsampled
    (the best is kept) and points are rasterized in the PDF.
    """
    frame = frame[stats.lrwd_groups(frame, keys)]
    if frame.empty:
        return None
    sizes = stats.size_order(frame)
    frame = stats.ordered(frame.assign(lrwd=frame["lr"] * frame["wd"]), sizes)
    best = frame.loc[frame.groupby(keys, sort=False)["err"].idxmin()]
    shown = _subsample(frame, MAX_SCATTER, seed)
    rows = _combos(frame, stats.facet_keys(keys), sizes)
    colors = stem_colors(frame["stem"])
    markers = dict(zip([s for s in sizes if s in set(frame["size"])], "osD^vP", strict=False))
    columns = [("lr", "lr"), ("wd", "wd"), ("lrwd", "lr·wd")]
    fig, axes = _grid(len(rows), len(columns), width=3.6, height=2.9)
    for r, row in enumerate(rows):
        cell, top_cell = _select(shown, row), _select(best, row)
        ok = cell.loc[~cell["diverged"], "err"]
        top = min(100.0, float(np.quantile(ok if len(ok) else cell["err"], 0.95)) + 2)
        inside = cell[cell["err"] <= top]
        above = cell[cell["err"] > top]
        for c, (col, name) in enumerate(columns):
            ax = axes[r, c]
            ax.set(xscale="log", xlabel=name, ylabel="top-1 error (%)")  # labels first: else
            # seaborn measures the tick labels to decide whether to show its own
            sns.scatterplot(data=inside, x=col, y="err", hue="stem", style="size",
                            palette=colors, markers=markers, s=14, alpha=0.6, linewidth=0,
                            rasterized=True, legend=c == 0, ax=ax)
            ax.scatter(above[col], np.full(len(above), top), marker="x", s=14, alpha=0.7,
                       color=[colors[s] for s in above["stem"]], rasterized=True)
            ax.scatter(top_cell[col], top_cell["err"], marker="*", s=170, zorder=5,
                       color=[colors[s] for s in top_cell["stem"]], edgecolor="black",
                       linewidth=0.8)
            ax.set(ylim=(cell["err"].min() - 1, top + 0.5), ylabel="" if c else ax.get_ylabel())
            _log_ticks(ax)
        axes[r, 1].set_title(facet_label(row))
        sns.move_legend(axes[r, 0], "upper left", fontsize="x-small", ncols=2)
    capped = (frame.groupby("model").size() > MAX_SCATTER).any()
    note = f"; at most {MAX_SCATTER} random trials per model shown" if capped else ""
    fig.suptitle(f"Error vs lr, wd and lr·wd (★ best, × above the axis or diverged{note})")
    return fig


def optimizer_gap_figure(frame: pd.DataFrame, keys: list[str],
                         gap: pd.DataFrame) -> Figure | None:
    """AdamW vs SGD tuned error per model, with the SGD - AdamW gap written above."""
    if gap.empty:
        return None
    sizes = stats.size_order(frame)
    shared = [k for k in keys if k != "optimizer"]
    tuned = stats.at_best_setting(frame, keys).merge(gap[shared], on=shared)
    panels = _combos(gap, [k for k in shared if k != "model"], sizes)
    fig, axes = _grid(1, len(panels), width=max(4.2, 1.1 * gap["model"].nunique()),
                      height=3.6)
    for ax, panel in zip(axes[0], panels, strict=True):
        cell = _select(gap, panel)
        sns.barplot(data=_select(tuned, panel), x="model", y="err", hue="optimizer",
                    order=list(cell["model"]), hue_order=list(stats.OPTIMIZER_ORDER),
                    errorbar="sd", palette="muted", ax=ax)
        for i, g in enumerate(cell.itertuples()):
            ax.annotate(f"{g.gap:+.1f}", (i, max(g.err_adamw, g.err_sgd)), xytext=(0, 8),
                        textcoords="offset points", ha="center")
        ax.set(title=facet_label(panel), xlabel="", ylabel="top-1 error (%)")
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle("Optimizer gap: error at each optimizer's best lr/wd (SGD - AdamW above)")
    return fig


def training_length_figure(lengths: pd.DataFrame, frame: pd.DataFrame) -> Figure | None:
    """Gap to the longest schedule vs epochs (PAPER.md study 3), one line per model."""
    if lengths.empty:
        return None
    facet = [k for k in ("optimizer", "batch_size", "sweep") if k in lengths]
    panels = _combos(lengths, facet, stats.size_order(frame))
    fig, axes = _grid(1, len(panels), width=5.0, height=3.6)
    colors = stem_colors(lengths["stem"])
    for ax, panel in zip(axes[0], panels, strict=True):
        data = _select(lengths, panel)
        sns.lineplot(data=data, x="epochs", y="delta_to_longest", hue="stem", style="size",
                     palette=colors, markers=True, dashes=True, ax=ax)
        ticks = sorted(data["epochs"].unique())
        ax.set(xscale="log", title=facet_label(panel), xlabel="epochs",
               ylabel="Δ to the longest schedule (points)")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    fig.suptitle("Training length: gap to the longest schedule")
    return fig


def save(fig: Figure, out: Path, name: str, dpi: int = 110) -> list[Path]:
    """Write ``name``.png and ``name``.pdf into ``out`` (the PDF lightly compressed:
    zlib at its default level is a third of the PDF's drawing time)."""
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi)
    with matplotlib.rc_context({"pdf.compression": 1}):
        fig.savefig(paths[1])
    return paths
