"""Several sweeps side by side (``python -m analysis A B --compare``): the same arms on
two datasets, two schedules, or a sweep and its grown sibling, in one figure and one
table. Each PATH is loaded on its own and stays its own curve: sweeps are never pooled.

The table (``compare.csv``) has a row per arm and sweep: n, best, median, within_k,
diverged_frac, auc_10, pycls's good lr range, and the KS test of the arm's Δ-EDF against
the same arm in the first sweep. The figure (``compare.png``) draws each arm's Δ-EDF per
sweep with its DKW band. ``compare.html`` holds both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import edf as E
from analysis.errors import AnalysisError

SOURCE = "source"  # the column naming which PATH a trial came from
ARM = ["model", "stem", "size", "optimizer"]  # what makes an arm the same across sweeps


def arm_columns(frame: pd.DataFrame) -> list[str]:
    """ARM, plus the --split subset when there is one (a subset is its own arm)."""
    return ARM + (["subset"] if "subset" in frame else [])
NAME = "compare"


def load_each(paths: list[Path], where: list[str], split: str | None) -> tuple[
        pd.DataFrame, list[str], list[str]]:
    """Every PATH's finished lr/wd-study trials with its name in SOURCE, the group keys
    and the loaders' messages; AnalysisError when a PATH has none."""
    from analysis import cli, load, stats

    if len(paths) < 2:
        raise AnalysisError("--compare needs two or more results folders, e.g. "
                            "python -m analysis results/a results/b --compare")
    frames, messages, keys = [], [], list(load.STUDY_KEYS)
    names = [p.parent.name if p.is_file() else p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    for path, name in zip(paths, names, strict=True):
        results = cli.select(load.load_results([path]), where, split)
        messages += [f"{name}: {line}" for line in results.messages]
        lrwd = results.frame[stats.lrwd_mask(results.frame)]
        if lrwd.empty:
            raise AnalysisError(f"{path} holds no finished lr_wd-study trials; --compare "
                                "draws lr/wd sweeps side by side")
        frames.append(lrwd.assign(**{SOURCE: name}))
        keys = list(dict.fromkeys(keys + results.keys))
    return pd.concat(frames, ignore_index=True), keys + [SOURCE], messages


def compare_table(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per arm and sweep (see the module docstring), in the order of the PATHs."""
    from analysis import ranges, stats

    frame = E.with_delta(frame, keys)
    good = ranges.good_ranges(frame, keys)
    good = good[good["param"] == "lr"].set_index(keys)
    sources = list(dict.fromkeys(frame[SOURCE]))
    cols = arm_columns(frame)
    rows = []
    for _, g in frame.groupby(keys, sort=False):
        first = g.iloc[0]
        arm = frame[(frame[cols] == first[cols]).all(axis=1)]
        ref = arm[arm[SOURCE] == sources[0]]
        delta = g["delta"].to_numpy()
        row = {c: first[c] for c in [SOURCE, *stats.group_info(keys[:-1])]}
        row.update(n=len(g), best=float(g["err"].min()), median=float(g["err"].median()))
        row.update({f"within_{k}": E.within(delta, k, bool(g["diverged"].all()))
                    for k in E.WITHIN})
        row.update(diverged_frac=float(g["diverged"].mean()), auc_10=E.area_under(delta))
        key = tuple(first[k] for k in keys)
        if key in good.index:
            row.update(lr_lo=good.at[key, "lo"], lr_hi=good.at[key, "hi"],
                       lr_decades=good.at[key, "decades"])
        if first[SOURCE] != sources[0] and len(ref):
            ks = stats.ks_test(ref["delta"].to_numpy(), delta)
            row.update(ks_vs_first=float(ks.statistic), ks_pvalue_vs_first=float(ks.pvalue))
        rows.append(row)
    out = pd.DataFrame(rows)
    arms = stats.ordered(frame[cols].drop_duplicates(), stats.size_order(frame))
    rank = {tuple(a): i for i, a in enumerate(arms.itertuples(index=False, name=None))}
    order = pd.DataFrame({"arm": [rank[tuple(r)] for r in out[cols].itertuples(
        index=False, name=None)], "source": out[SOURCE].map(
        {s: i for i, s in enumerate(sources)})})
    return out.loc[order.sort_values(["arm", "source"], kind="stable").index].reset_index(
        drop=True)


def compare_figure(frame: pd.DataFrame, keys: list[str]):
    """Δ-EDF per arm (a panel each: rows optimizer, columns model) with one curve and DKW
    band per sweep; the legend names each sweep with its n."""
    import seaborn as sns

    from analysis import plots, stats

    frame = E.with_delta(frame, keys)
    sources = list(dict.fromkeys(frame[SOURCE]))
    colors = dict(zip(sources, sns.color_palette("colorblind", len(sources)), strict=True))
    sizes = stats.size_order(frame)
    arms = stats.ordered(frame[arm_columns(frame)].drop_duplicates(), sizes).to_dict("records")
    n_cols = min(2, len(arms))  # two per row: each panel has its legend beside it
    fig, axes = plots._grid(-(-len(arms) // n_cols), n_cols, legend=True)
    for i, ax in enumerate(axes.flat):
        if i >= len(arms):
            ax.set_visible(False)
            continue
        cell = plots._select(frame, arms[i])
        hi = float(cell.loc[~cell["diverged"], "delta"].max()
                   if (~cell["diverged"]).any() else cell["delta"].max()) * 1.03 + 0.1
        for _, g in cell.groupby(keys, sort=False):
            curve = E.ecdf(g["delta"].to_numpy())
            steps = pd.DataFrame({"delta": np.r_[0.0, curve.x, hi],
                                  "F": np.r_[0.0, curve.F, curve.F[-1]],
                                  "lower": np.r_[0.0, curve.lower, curve.lower[-1]],
                                  "upper": np.r_[curve.eps, curve.upper, curve.upper[-1]]})
            steps = steps[steps["delta"] <= hi]
            source = g[SOURCE].iloc[0]
            plots._draw_edf(ax, steps, "delta", colors[source], f"{source} (n={len(g)})")
        first = arms[i]
        ax.set(xlim=(0, hi), ylim=(0, 1.01), xlabel="top-1 error − best (points)",
               ylabel="fraction of trials below",
               title=f"{stats.stem_name(first['stem'])} {first['model']} · "
                     f"{plots.OPTIMIZER_NAMES.get(first['optimizer'], first['optimizer'])}"
                     + (f" · {first['subset']}" if "subset" in first else ""))
        ax.legend(**plots.LEGEND)
    return plots.finish(fig, "Δ-EDF of each arm per sweep, side by side (never pooled; "
                        "shaded: 95% DKW band)")


def main(paths: list[Path], out: Path, where: list[str], split: str | None) -> int:
    """Write compare.csv, compare.png/pdf and compare.html into ``out``; print the table."""
    frame, keys, messages = load_each(paths, where, split)
    import matplotlib

    matplotlib.use("Agg")
    from analysis import cli, plots, report

    out = cli.prepare_out(out)
    for ext in ("csv", "png", "pdf", "html"):
        (out / f"{NAME}.{ext}").unlink(missing_ok=True)
    plots.theme()
    table = compare_table(frame, keys)
    table.to_csv(out / f"{NAME}.csv", index=False)
    saved = plots.save(compare_figure(frame, keys), out, NAME)
    section = report.Section("The sweeps side by side", "One row per arm and sweep; "
                             "ks_vs_first/ks_pvalue_vs_first: KS test of the arm's Δ-EDF "
                             "against the same arm in the first sweep; lr_lo/lr_hi/"
                             "lr_decades: pycls's good lr range.", table, saved[0],
                             significant=("lr_lo", "lr_hi"))
    meta = [f"Sweeps: {', '.join(str(p) for p in paths)}, in that order."]
    report.write_report(out / f"{NAME}.html", "Sweeps compared: " + ", ".join(
        dict.fromkeys(frame[SOURCE])), meta, messages, [section])
    for line in messages:
        print(line, file=sys.stderr)
    print(report.format_table(table).to_string(index=False))
    print(f"\nwrote {NAME}.csv, {NAME}.png, {NAME}.pdf and {NAME}.html to {out}")
    return 0
