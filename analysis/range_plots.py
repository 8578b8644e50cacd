"""pycls's hyperparameter views: error against each hyperparameter with the good range
shaded and the best marked (``plot_values``), and the lr × wd plane coloured by error rank
(``plot_values_2d``), one row or panel per arm of an lr/wd study."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import plots, ranges, stats, words

VALUE_AXES = {"lr": "lr", "wd": "wd"}  # lr·wd is in the all-arms figure (plots.hparam_figure)


def _arms(frame: pd.DataFrame, keys: list[str]) -> list[pd.DataFrame]:
    """The lr/wd-study arms in report order, each in data order (best first)."""
    lrwd = frame[stats.lrwd_mask(frame)]
    if lrwd.empty:
        return []
    lrwd = stats.ordered(lrwd.assign(lrwd=lrwd["lr"] * lrwd["wd"]), stats.size_order(frame))
    return [ranges.in_data_order(g) for _, g in lrwd.groupby(keys, sort=False)]


def _name(g: pd.DataFrame, keys: list[str], width: int = 200) -> str:
    """The arm's name (stem, model and its settings), wrapped at ``width`` characters."""
    first = g.iloc[0][stats.group_info(keys)]
    name = f"{stats.stem_name(first['stem'])} {first['model']} ({words.where(first)})"
    return "\n".join(textwrap.wrap(name, width))


def values_figure(frame: pd.DataFrame, keys: list[str], good: pd.DataFrame) -> Figure | None:
    """Error against lr and wd per arm; shaded: the good range (pycls's 2.5-97.5
    percentiles of the best trial of random 25% subsets), line: its median, star: the best
    trial; errors above the axis (diverged, chance) drawn at its top as ×. At most
    ``plots.MAX_SCATTER`` random trials per arm are drawn (the best always)."""
    arms = _arms(frame, keys)
    if not arms or good.empty:
        return None
    fig, axes = plots._grid(len(arms), len(VALUE_AXES), width=3.3, height=2.5, gap_h=1.0)
    for r, g in enumerate(arms):
        ok = g.loc[~g["diverged"], "err"]
        top = min(100.0, float(np.quantile(ok if len(ok) else g["err"], 0.95)) + 2)
        rows = plots._select(good, {k: g[k].iloc[0] for k in keys})
        shown = plots._subsample(g, plots.MAX_SCATTER, 0)
        for c, (param, label) in enumerate(VALUE_AXES.items()):
            ax = axes[r, c]
            x, err = shown[param], shown["err"]
            ax.scatter(x[err <= top], err[err <= top], s=12, alpha=0.7, linewidth=0,
                       rasterized=True)
            ax.scatter(x[err > top], np.full(int((err > top).sum()), top), marker="x", s=12,
                       rasterized=True)
            x, err = g[param], g["err"]  # the best (first in data order) from all trials
            band = rows[rows["param"] == param]
            if len(band):
                b = band.iloc[0]
                ax.axvspan(b["lo"], b["hi"], color="tab:green", alpha=0.15, linewidth=0)
                ax.axvline(b["median"], color="tab:green", linewidth=1)
            ax.scatter(x.iloc[:1], err.iloc[:1], marker="*", s=150, color="gold",
                       edgecolor="black", linewidth=0.8, zorder=5)
            ax.set(xscale="log", xlabel=label, ylabel="top-1 error (%)" if c == 0 else "",
                   ylim=(float(err.min()) - 1, top + 0.5))
            plots._log_ticks(ax)
        axes[r, 0].set_title(_name(g, keys), loc="left")
    return plots.finish(fig, "Error against each hyperparameter (shaded: pycls good range, "
                        "2.5-97.5% of the best of random 25% subsets; line: its median; "
                        "★ best; × above the axis)")


def rank_figure(frame: pd.DataFrame, keys: list[str]) -> Figure | None:
    """lr against wd per arm, each trial coloured by its error rank within the arm (0 =
    best, 1 = worst; ties in data order), the best starred."""
    arms = _arms(frame, keys)
    if not arms:
        return None
    n_cols = min(4, len(arms))
    n_rows = -(-len(arms) // n_cols)
    fig, axes = plots._grid(n_rows, n_cols, width=3.2, height=2.9, gap_h=1.0)
    mappable = None
    for i, ax in enumerate(axes.flat):
        if i >= len(arms):
            ax.set_visible(False)
            continue
        g = arms[i].assign(rank=np.arange(len(arms[i])) / max(1, len(arms[i]) - 1))
        shown = plots._subsample(g, plots.MAX_SCATTER, 0)
        mappable = ax.scatter(shown["lr"], shown["wd"], c=shown["rank"], cmap="viridis",
                              vmin=0, vmax=1, s=18, linewidth=0, rasterized=True)
        ax.scatter(g["lr"].iloc[:1], g["wd"].iloc[:1], marker="*", s=150, color="gold",
                   edgecolor="black", linewidth=0.8, zorder=5)
        ax.set(xscale="log", yscale="log", xlabel="lr", ylabel="wd", title=_name(g, keys, 38))
        plots._log_ticks(ax)
    fig.colorbar(mappable, ax=list(axes.flat), shrink=0.8, pad=0.02,
                 label="error rank in its arm (0 best, 1 worst)")
    return plots.finish(fig, "lr × wd coloured by error rank (pycls plot_values_2d; ★ best)")
