"""Seaborn figures of the three stability studies.

Each function returns a matplotlib Figure, or None when the results hold no data for that
study, so callers can skip a figure rather than draw an empty one. Figures are plain
``Figure`` objects, not pyplot ones, so they need no display and no closing: the command
line renders them with Agg, a notebook shows them inline. Drawing time matters (100,000
trials in under 10 s), hence at most one seaborn call per panel, fixed margins instead of
a layout engine, legends at fixed places, and subsampled, rasterized scatter points.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator

from analysis import edf as E
from analysis import headroom, stats

MIN_EDF_TRIALS = 5  # groups with fewer finished trials are left out of the EDF figures
MAX_SCATTER = 1500  # points per model and panel in the lr/wd scatter; more are subsampled
PLOT_STEPS = 600  # EDF steps drawn per curve: finer than a panel's pixels
OPTIMIZER_NAMES = {"adamw": "AdamW", "sgd": "SGD"}
EDF_AXES = {
    "delta": ("top-1 error − best (points)", "EDF of Δerror"),
    "delta_norm": ("(error − best) / (chance − best)",
                   "EDF of Δerror as a share of the room to chance"),
    "error": ("top-1 error (%)", "EDF of top-1 error"),
}
HPARAM_AXES = {"lr": "lr (at batch 2048)", "wd": "wd (at batch 2048)",
               "lrwd": "lr·wd (at batch 2048)"}
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "fontsize": "x-small",
          "borderaxespad": 0.0}  # beside the axes: a legend never covers data
LEGEND_W = 2.3  # inches kept right of each panel for its legend


def theme() -> None:
    """One look for every figure."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=0.95)


def stem_colors(stems: list[str] | pd.Series) -> dict[str, tuple]:
    """Fixed colours per stem (ViT_P blue, ViT_C orange, CNN green, others after)."""
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
        elif key == "study":
            parts.append(f"study {value}")
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
          left: float = 0.75, gap_w: float = 0.6, gap_h: float = 0.8,
          legend: bool = False) -> tuple[Figure, np.ndarray]:
    """A figure with an (n_rows, n_cols) array of axes, each cell about ``width`` x
    ``height`` inches (plus LEGEND_W beside each for its legend when ``legend``). Margins
    are fixed in inches rather than set by a layout engine, which would measure every
    label again and take most of a big grid's drawing time."""
    right = 0.2 + (LEGEND_W if legend else 0.0)
    gap_w += LEGEND_W if legend else 0.0
    fig_w = max(width * n_cols + (LEGEND_W * n_cols if legend else 0), 6.4)
    fig_h = height * n_rows + 0.75  # room for the title
    axes_w = (fig_w - left - right - (n_cols - 1) * gap_w) / n_cols
    axes_h = (fig_h - 0.75 - 0.55 - (n_rows - 1) * gap_h) / n_rows
    fig = Figure(figsize=(fig_w, fig_h))
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={
        "left": left / fig_w, "right": 1 - right / fig_w, "bottom": 0.55 / fig_h,
        "top": 1 - 0.75 / fig_h, "wspace": gap_w / axes_w, "hspace": gap_h / axes_h})
    return fig, axes


def finish(fig: Figure, title: str) -> Figure:
    """Give ``fig`` its title, wrapped to the figure's width, then grow the canvas where
    any text (a long legend label, a tick label) would fall outside it: every artist
    lies inside the saved image, the notebook's inline one included."""
    chars = int(fig.get_figwidth() * 72 / (0.55 * 11))  # suptitle: about 11 pt
    lines = textwrap.wrap(title, max(30, chars))
    fig.suptitle("\n".join(lines), fontsize=11, y=1 - 0.12 / fig.get_figheight(),
                 va="top")
    grow(fig, top=0.2 * (len(lines) - 1))  # room above the axes' titles for more lines
    fit(fig)
    return fig


def grow(fig: Figure, left: float = 0.0, bottom: float = 0.0, right: float = 0.0,
         top: float = 0.0) -> None:
    """Add inches to ``fig``'s sides; the axes and the suptitle keep their size and their
    place relative to each other."""
    w, h = fig.get_figwidth(), fig.get_figheight()
    new_w, new_h = w + left + right, h + bottom + top
    for ax in fig.axes:
        p = ax.get_position()
        ax.set_position([(p.x0 * w + left) / new_w, (p.y0 * h + bottom) / new_h,
                         p.width * w / new_w, p.height * h / new_h])
    if fig._suptitle is not None:  # pinned to the new top edge
        x, _ = fig._suptitle.get_position()
        fig._suptitle.set_position(((x * w + left) / new_w, 1 - 0.12 / new_h))
    fig.set_size_inches(new_w, new_h)


def fit(fig: Figure, pad: float = 0.06) -> None:
    """Grow ``fig`` by the inches its artists overflow on each side (plus ``pad``). One
    draw without rendering measures it."""
    for _ in range(2):  # a second pass catches text that moved with the figure's size
        fig.draw_without_rendering()
        box = fig.get_tightbbox()  # inches
        w, h = fig.get_figwidth(), fig.get_figheight()
        sides = {"left": max(0.0, pad - box.x0), "bottom": max(0.0, pad - box.y0),
                 "right": max(0.0, box.x1 - w + pad), "top": max(0.0, box.y1 - h + pad)}
        if max(sides.values()) <= pad / 2:
            return
        grow(fig, **sides)


def _edf_limits(frame: pd.DataFrame, keys: list[str], x: str) -> pd.DataFrame:
    """Per group, the x range holding every finished (not diverged) trial: from the lowest
    value to the highest, so no curve is cut short but by diverged trials (all trials if
    every one diverged)."""
    ok = frame[~frame["diverged"]].groupby(keys)[x]
    every = frame.groupby(keys)[x]
    return pd.DataFrame({"lo": ok.min(), "hi": ok.max()}).reindex(
        every.min().index).fillna({"lo": every.min(), "hi": every.max()})


def _steps(curve: pd.DataFrame, x: str, lo: float, hi: float) -> pd.DataFrame:
    """One EDF's steps (at most PLOT_STEPS of them) inside [lo, hi], padded to run from 0 at
    the panel's left edge to its right edge; before the first trial the band is [0, eps].
    Steps beyond ``hi`` (diverged trials only, see _edf_limits) are not drawn."""
    inside = curve[curve[x] <= hi]
    inside = inside.iloc[E.thin(len(inside), PLOT_STEPS)]
    first = curve.iloc[0]
    eps = E.dkw_epsilon(int(first["n"]))
    last = inside.iloc[-1] if len(inside) else pd.Series(
        {"F": 0.0, "lower": 0.0, "upper": min(eps, 1.0)})
    head = pd.DataFrame({x: [min(lo, first[x])], "F": [0.0], "lower": [0.0],
                         "upper": [min(eps, 1.0)]})
    tail = pd.DataFrame({x: [hi], "F": [last["F"]], "lower": [last["lower"]],
                         "upper": [last["upper"]]})
    return pd.concat([head, inside[[x, "F", "lower", "upper"]], tail], ignore_index=True)


def _edf_panel(ax: Axes, cell: pd.DataFrame, keys: list[str], x: str, lo: float, hi: float,
               colors: dict) -> None:
    """The curves of one EDF panel, each labelled with its n and diverged count; a curve
    that ends below 1 gets the count of its diverged trials beyond the axis written there."""
    for _, curve in cell.groupby(keys, sort=False):
        first = curve.iloc[0]
        n, n_div = int(first["n"]), int(first["n_diverged"])
        name = f"{stats.stem_name(first['stem'])} {first['model']} (n={n}" + (
            f", {n_div} diverged)" if n_div else ")")
        steps = _steps(curve, x, lo, hi)
        color = colors[first["stem"]]
        _draw_edf(ax, steps, x, color, name)
        beyond = n - int(round(steps["F"].iloc[-1] * n))
        if beyond:
            ax.annotate(f"{beyond} diverged beyond →", (hi, steps["F"].iloc[-1]),
                        xytext=(-3, -3), textcoords="offset points", ha="right", va="top",
                        fontsize="x-small", color=color)


def edf_figure(curves: pd.DataFrame, frame: pd.DataFrame, keys: list[str],
               x: str = "delta") -> Figure | None:
    """EDF panels (the paper's Fig. 4/5 bottom row) of the lr/wd study with 95% DKW bands.

    One column per model size, one row per optimizer (and other setting), one curve per
    model (ViT_P, ViT_C, CNN). ``x`` is "delta" (Δerror), "delta_norm" (Δ / (chance − best))
    or "error". The x axis holds every
    finished trial, so a curve ends below 1 only for diverged trials beyond it (labelled).
    """
    if curves.empty or (curves := curves[curves["n"] >= MIN_EDF_TRIALS]).empty:
        return None
    if (curves := curves.dropna(subset=[x])).empty:  # delta_norm: no arm left chance
        return None
    sizes = stats.size_order(frame)
    curves = stats.ordered(curves, sizes)
    limits = _edf_limits(headroom.with_room(frame[stats.lrwd_mask(frame)], keys), keys, x)
    rows = _combos(curves, stats.facet_keys(keys), sizes)
    columns = [s for s in sizes if s in set(curves["size"])]
    colors = stem_colors(curves["stem"])
    fig, axes = _grid(len(rows), len(columns), legend=True)
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
            lo, hi = {"delta": (0.0, hi * 1.03 + 0.1), "delta_norm": (0.0, hi * 1.03 + 0.01)
                      }.get(x, (lo - 0.5, hi + 0.5))
            _edf_panel(ax, cell, keys, x, lo, hi, colors)
            ax.set(xlim=(lo, hi), ylim=(0, 1.01), title=f"{size} · {facet_label(row)}",
                   xlabel=label, ylabel="fraction of trials below" if c == 0 else "")
            ax.legend(**LEGEND)
    return finish(fig, f"{title} per model size (shaded, dashed edges: 95% DKW band for "
                 "the whole curve; a curve below 1 at the right edge = diverged trials)")


def _draw_edf(ax: Axes, steps: pd.DataFrame, x: str, color: tuple, name: str) -> None:
    """One EDF as a step line with its band: a light fill with dashed step outlines, so
    overlapping bands stay readable. Drawn with matplotlib: seaborn's ecdfplot computes
    its own EDF and has no confidence band."""
    ax.fill_between(steps[x], steps["lower"], steps["upper"], step="post", color=color,
                    alpha=0.08, linewidth=0)
    for edge in ("lower", "upper"):
        ax.plot(steps[x], steps[edge], drawstyle="steps-post", color=color, linewidth=0.6,
                linestyle=(0, (3, 2)), alpha=0.7)
    ax.plot(steps[x], steps["F"], drawstyle="steps-post", color=color, linewidth=1.6,
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


def _hparam_row(axes: np.ndarray, cell: pd.DataFrame, top_cell: pd.DataFrame,
                colors: dict, markers: dict) -> None:
    """One row of the lr/wd map: error against lr, wd and lr·wd."""
    ok = cell.loc[~cell["diverged"], "err"]
    top = min(100.0, float(np.quantile(ok if len(ok) else cell["err"], 0.95)) + 2)
    inside, above = cell[cell["err"] <= top], cell[cell["err"] > top]
    for c, col in enumerate(HPARAM_AXES):
        ax = axes[c]
        ax.set(xscale="log", xlabel=HPARAM_AXES[col], ylabel="top-1 error (%)")  # labels
        # first: else seaborn measures the tick labels to decide whether to show its own
        sns.scatterplot(data=inside, x=col, y="err", hue="stem", style="size",
                        palette=colors, markers=markers, s=14, alpha=0.6, linewidth=0,
                        rasterized=True, legend=c == len(HPARAM_AXES) - 1, ax=ax)
        ax.scatter(above[col], np.full(len(above), top), marker="x", s=14, alpha=0.7,
                   color=[colors[s] for s in above["stem"]], rasterized=True)
        ax.scatter(top_cell[col], top_cell["err"], marker="*", s=170, zorder=5,
                   color=[colors[s] for s in top_cell["stem"]], edgecolor="black",
                   linewidth=0.8)
        ax.set(ylim=(cell["err"].min() - 1, top + 0.5), ylabel="" if c else ax.get_ylabel())
        _log_ticks(ax)
    sns.move_legend(axes[-1], **LEGEND)


def hparam_figure(frame: pd.DataFrame, keys: list[str], seed: int = 0) -> Figure | None:
    """Error vs lr, wd and lr·wd on log axes (the paper's Fig. 4 top row), each model's best
    marked with a star.

    Trials of lr/wd and tune studies, one row per optimizer (and other setting); colour is
    the stem, marker the size. Errors above the plotted range (diverged trials at chance
    error) are drawn at the top edge as x. More than ``MAX_SCATTER`` trials per model are
    randomly subsampled (the best is kept) and points are rasterized in the PDF.
    """
    frame = frame[frame["study"].isin(("lr_wd", "tune"))]
    if frame.empty:
        return None
    sizes = stats.size_order(frame)
    frame = stats.ordered(frame.assign(lrwd=frame["lr"] * frame["wd"]), sizes)
    best = frame.loc[frame.groupby(keys, sort=False)["err"].idxmin()]
    shown = _subsample(frame, MAX_SCATTER, seed)
    rows = _combos(frame, stats.facet_keys(keys), sizes)
    colors = stem_colors(frame["stem"])
    markers = dict(zip([s for s in sizes if s in set(frame["size"])], "osD^vP", strict=False))
    fig, axes = _grid(len(rows), len(HPARAM_AXES), width=3.6, height=2.9)
    fig.subplots_adjust(right=1 - (0.2 + LEGEND_W) / fig.get_figwidth())
    for r, row in enumerate(rows):
        _hparam_row(axes[r], _select(shown, row), _select(best, row), colors, markers)
        axes[r, 1].set_title(facet_label(row))
    capped = (frame.groupby("model").size() > MAX_SCATTER).any()
    note = f"; at most {MAX_SCATTER} random trials per model shown" if capped else ""
    return finish(fig, f"Error vs lr, wd and lr·wd (★ best, × above the axis or diverged{note})")


def expected_figure(curves: pd.DataFrame, frame: pd.DataFrame,
                    keys: list[str]) -> Figure | None:
    """Expected best error against the number of random lr/wd trials (Dodge et al.
    2019), one panel per size (and study, data, batch), one curve per arm: colour = stem,
    line style = optimizer, width = schedule length. Band: ±1σ (with replacement)."""
    if curves.empty:
        return None
    sizes = stats.size_order(frame)
    facet = [k for k in stats.facet_keys(keys) if k not in ("optimizer", "epochs")]
    panels = _combos(curves, ["size"] + facet, sizes)
    colors = stem_colors(curves["stem"])
    styles = dict(zip(stats.OPTIMIZER_ORDER, ("-", "--"), strict=True))
    widths = {e: 1.0 + 0.6 * i for i, e in enumerate(sorted(curves["epochs"].unique()))}
    fig, axes = _grid(1, len(panels), width=4.2, height=3.6, legend=True)
    for ax, panel in zip(axes[0], panels, strict=True):
        for _, c in _select(curves, panel).groupby(keys, sort=False):
            first = c.iloc[0]
            color = colors[first["stem"]]
            ax.fill_between(c["n_trials"], c["lo"], c["hi"], color=color, alpha=0.08,
                            linewidth=0)
            ax.plot(c["n_trials"], c["expected"], color=color,
                    linestyle=styles.get(first["optimizer"], ":"),
                    linewidth=widths[first["epochs"]],
                    label=f"{stats.stem_name(first['stem'])} · "
                          f"{OPTIMIZER_NAMES.get(first['optimizer'], first['optimizer'])} · "
                          f"{first['epochs']} ep (N={first['N']})")
        ax.set(title=facet_label(panel), ylabel="expected best top-1 error (%)")
        _trials_axis(ax, int(_select(curves, panel)["N"].max()))
        ax.legend(**LEGEND)
    return finish(fig, "Expected best error after n random lr/wd trials drawn without "
                  "replacement (band: ±1σ of the same draws)")


LINEAR_UPTO = 12  # arms of at most this many trials get a linear n axis, every n ticked


def _trials_axis(ax: Axes, n_max: int) -> None:
    """The n axis: linear with every n labelled for a few trials (a log axis over 1..5
    shows two labels), log with 1-2-5 ticks beyond."""
    if n_max <= LINEAR_UPTO:
        ax.set(xlabel="random lr/wd trials n", xlim=(0.8, n_max + 0.2))
        ax.set_xticks(range(1, n_max + 1))
        return
    ax.set(xscale="log", xlabel="random lr/wd trials n (log scale)")
    _log_ticks(ax)


def paired_figure(points: pd.DataFrame, frame: pd.DataFrame) -> Figure | None:
    """Paired draws: arm b's error against arm a's at the same sample k, one panel per
    compared pair; below the diagonal, b is better at that draw."""
    if points.empty:
        return None
    shared = [c for c in ("size", "study", "data", "optimizer", "epochs", "batch_size",
                          "sweep", "stem_a", "stem_b") if c in points]
    panels = _combos(points, shared, stats.size_order(frame))
    n_cols = min(4, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = _grid(n_rows, n_cols, width=3.2, height=3.2)
    colors = stem_colors(list(points["stem_b"]) + list(points["stem_a"]))
    for i, ax in enumerate(axes.flat):
        if i >= len(panels):
            ax.set_visible(False)
            continue
        cell = _select(points, panels[i])
        a, b = (stats.stem_name(panels[i][s]) for s in ("stem_a", "stem_b"))
        lo = float(min(cell["err_a"].min(), cell["err_b"].min())) - 1
        hi = float(max(cell["err_a"].max(), cell["err_b"].max())) + 1
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--")
        ax.scatter(cell["err_a"], cell["err_b"], s=12, alpha=0.6, linewidth=0,
                   color=colors[panels[i]["stem_b"]], rasterized=True)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"{a} top-1 error (%)",
               ylabel=f"{b} top-1 error (%)",
               title=f"{panels[i]['size']} · {OPTIMIZER_NAMES.get(panels[i]['optimizer'])}"
                     f" · {panels[i]['epochs']} ep (n={len(cell)})")
    return finish(fig, "Paired draws: same sample k (same lr/wd for ViT_P/ViT_C); below the "
                 "dashed diagonal the second arm is better")


def _gap_bars(ax: Axes, cell: pd.DataFrame) -> None:
    """Bars of each model's tuned AdamW and SGD errors with their intervals and n."""
    x = np.arange(len(cell))
    palette = dict(zip(stats.OPTIMIZER_ORDER, sns.color_palette("muted", 2), strict=True))
    for j, opt in enumerate(stats.OPTIMIZER_ORDER):
        err = cell[f"err_{opt}"].to_numpy(dtype=float)
        yerr = np.vstack([err - cell[f"lo_{opt}"], cell[f"hi_{opt}"] - err]).clip(0)
        pos = x + (j - 0.5) * 0.38
        ax.bar(pos, err, width=0.36, color=palette[opt], label=OPTIMIZER_NAMES[opt])
        ax.errorbar(pos, err, yerr=np.nan_to_num(yerr), fmt="none", ecolor="black",
                    elinewidth=1, capsize=3)
        for p, top, n in zip(pos, cell[f"hi_{opt}"].fillna(cell[f"err_{opt}"]),
                             cell[f"n_{opt}"], strict=True):
            ax.annotate(f"n={n}", (p, top), xytext=(0, 2), textcoords="offset points",
                        ha="center", fontsize="xx-small")
    for i, g in enumerate(cell.itertuples()):
        ax.annotate(f"{g.gap:+.1f}", (i, max(g.hi_adamw, g.hi_sgd)), xytext=(0, 12),
                    textcoords="offset points", ha="center", fontweight="bold")
    ax.set_xticks(x, [f"{stats.stem_name(s)}\n{m}" for s, m in zip(cell["stem"], cell["model"],
                                                                   strict=True)])


def optimizer_gap_figure(gap: pd.DataFrame, frame: pd.DataFrame) -> Figure | None:
    """AdamW vs SGD tuned error per model (ViTs and CNN), whiskers = the tuned result's
    interval (seeds' range, or the spread of a resampled best of an lr/wd sweep), n = trials each
    bar came from, and the SGD - AdamW gap in bold above."""
    if gap.empty:
        return None
    facet = [k for k in ("study", "data", "epochs", "batch_size", "sweep") if k in gap]
    panels = _combos(gap, facet, stats.size_order(frame))
    fig, axes = _grid(1, len(panels), width=max(4.2, 1.2 * gap["model"].nunique()),
                      height=3.8, legend=True)
    for ax, panel in zip(axes[0], panels, strict=True):
        cell = _select(gap, panel)
        _gap_bars(ax, cell)
        kinds = sorted(set(cell["interval_adamw"]) | set(cell["interval_sgd"]))
        ax.set(title=facet_label(panel) + "\nwhiskers: " + "; ".join(kinds), xlabel="",
               ylabel="tuned top-1 error (%)")
        ax.set_ylim(0, float(np.nanmax(cell[["hi_adamw", "hi_sgd"]].to_numpy())) * 1.15)
        ax.legend(**LEGEND)
    return finish(fig, "Optimizer gap: error at each optimizer's best lr/wd (SGD − AdamW in bold)")


def training_length_figure(lengths: pd.DataFrame, frame: pd.DataFrame) -> Figure | None:
    """Gap to the longest schedule vs epochs (the paper's study 3), one line per model (ViTs
    and CNN, colour = stem, style = size)."""
    if lengths.empty:
        return None
    facet = [k for k in ("study", "data", "optimizer", "batch_size", "sweep") if k in lengths]
    panels = _combos(lengths, facet, stats.size_order(frame))
    fig, axes = _grid(1, len(panels), width=5.0, height=3.6, legend=True)
    colors = stem_colors(lengths["stem"])
    for ax, panel in zip(axes[0], panels, strict=True):
        data = _select(lengths, panel)
        sns.lineplot(data=data, x="epochs", y="delta_to_longest", hue="stem", style="size",
                     palette=colors, markers=True, dashes=True, ax=ax)
        ticks = sorted(data["epochs"].unique())
        ax.set(xscale="log", title=facet_label(panel), xlabel="training length (epochs)",
               ylabel="error − error at the longest schedule (points)")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        sns.move_legend(ax, **LEGEND)
    return finish(fig, "Training length: gap to the longest schedule (tuned lr/wd, seed mean)")


def save(fig: Figure, out: Path, name: str, dpi: int = 110) -> list[Path]:
    """Write ``name``.png and ``name``.pdf into ``out`` (the PDF lightly compressed:
    zlib at its default level is a third of the PDF's drawing time)."""
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi)
    with matplotlib.rc_context({"pdf.compression": 1}):
        fig.savefig(paths[1])
    return paths
