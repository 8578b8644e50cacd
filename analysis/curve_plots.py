"""The training-curve figure: per arm, the best, median and worst trial's error (EMA solid,
model dashed) and training loss per epoch, with chance marked.

One row per arm of an lr/wd or tune study, so "never left chance" (a flat loss at ln C)
and "learned, then diverged" (a curve that ends early, ×) read at a glance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from analysis import plots, stats, words

ROLE_COLORS = dict(zip(("best", "median", "worst"), sns.color_palette("colorblind", 3),
                       strict=True))


def _row_title(first: pd.Series, stalls: pd.DataFrame, keys: list[str]) -> str:
    """An arm's panel title: which arm, and how many of its trials stalled or diverged."""
    info = first[stats.group_info(keys)]
    arm = f"{stats.stem_name(first['stem'])} {first['model']} ({words.where(info)})"
    match = plots._select(stalls, {k: first[k] for k in keys}) if not stalls.empty else stalls
    if match.empty:
        return arm
    r = match.iloc[0]
    return (f"{arm}\n{r['stalled']} of {r['with_curves']} stalled at chance, "
            f"{r['diverged']} diverged")


def curves_figure(table: pd.DataFrame, stalls: pd.DataFrame, frame: pd.DataFrame,
                  keys: list[str]) -> Figure | None:
    """Error and training loss per epoch of each arm's best, median and worst trial."""
    if table.empty:
        return None
    table = stats.ordered(table, stats.size_order(frame), last=("epoch",))
    arms = list(table.groupby(keys, sort=False))
    fig, axes = plots._grid(len(arms), 2, width=4.4, height=2.6, gap_h=1.0, legend=True)
    for r, (_, arm) in enumerate(arms):
        ax_err, ax_loss = axes[r]
        first = arm.iloc[0]
        for role, t in arm.groupby("role", sort=False):
            color = ROLE_COLORS[role]
            label = (f"{role}: {t['err'].iloc[0]:.1f}% (lr {t['lr'].iloc[0]:.2g}, "
                     f"wd {t['wd'].iloc[0]:.2g})")
            ax_err.plot(t["epoch"], t["ema_error"], color=color, linewidth=1.4, label=label)
            ax_err.plot(t["epoch"], t["error"], color=color, linewidth=0.8, linestyle="--")
            ax_loss.plot(t["epoch"], t["train_loss"], color=color, linewidth=1.4,
                         label=role)
            if bool(t["diverged"].iloc[0]):
                for ax, col in ((ax_err, "ema_error"), (ax_loss, "train_loss")):
                    ax.scatter(t["epoch"].iloc[-1:], t[col].iloc[-1:], marker="x", s=40,
                               color=color, zorder=5)
        chance_err = 100.0 * (1 - 1 / np.exp(first["chance_loss"]))  # C = exp(ln C)
        ax_err.axhline(chance_err, color="grey", linewidth=0.8, linestyle=":")
        ax_loss.axhline(first["chance_loss"], color="grey", linewidth=0.8, linestyle=":",
                        label=f"ln C = {first['chance_loss']:.2f} (chance)")
        ax_err.set(xlabel="epoch", ylabel="top-1 error (%)",
                   title=_row_title(first, stalls, keys))
        ax_loss.set(xlabel="epoch", ylabel="training loss")
        ax_err.legend(**plots.LEGEND)
        ax_loss.legend(**plots.LEGEND)
    return plots.finish(fig, "Training curves of each arm's best, median and worst trial "
                        "(EMA error solid, model error dashed; dotted: chance; × diverged)")
