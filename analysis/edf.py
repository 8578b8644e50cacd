"""Command line: ``python -m analysis.edf PATH [PATH ...] [--out DIR]``.

Reads every ``trials.csv`` below the PATHs and writes into DIR (default: ``analysis/``
inside the first PATH): ``summary.csv``, ``ks.csv``, ``edf.csv``, ``optimizer_gap.csv`` and
``training_length.csv`` (when the results hold those studies), PNG and PDF figures
(``edf_delta``, ``edf_error``, ``hparams``, ``optimizer_gap``, ``training_length``) and a
self-contained ``report.html``. The summary table is printed; warnings go to stderr. Bad
input prints one ``error:`` line naming the fix and exits with status 2.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TABLES = ("summary", "ks", "edf", "optimizer_gap", "training_length")
FIGURES = ("edf_delta", "edf_error", "hparams", "optimizer_gap", "training_length")
REPORT = "report.html"
KS_COLUMNS = ("size", "optimizer", "epochs", "batch_size", "sweep", "model_p", "model_c",
              "n_p", "n_c", "ks_stat", "ks_pvalue", "within_4_p", "within_4_c",
              "within_4_diff", "within_4_lo", "within_4_hi")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.edf",
        description="EDFs, stability statistics and a report for vitstab sweep results.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="results folder(s) holding <sweep>/trials.csv, or trials.csv files")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: PATH/analysis for the first PATH)")
    return parser.parse_args(argv)


def default_out(paths: list[Path]) -> Path:
    """``analysis/`` next to the results: inside the first folder given (or the folder of
    the first file given)."""
    first = paths[0]
    return (first.parent if first.is_file() else first) / "analysis"


def prepare_out(out: Path) -> Path:
    """Create ``out`` and clear outputs of an earlier run, so no stale figure survives."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            (out / f"{name}.csv").unlink(missing_ok=True)
        for name in FIGURES:
            for ext in ("png", "pdf"):
                (out / f"{name}.{ext}").unlink(missing_ok=True)
        (out / REPORT).unlink(missing_ok=True)
    except OSError as exc:
        raise AnalysisError(f"cannot write to {out} ({exc.strerror}); pass a writable folder "
                            "with --out DIR") from None
    return out


def analyse(paths: list[Path], out: Path) -> dict:
    """Run the whole analysis; returns the tables, the written files and the messages."""
    from analysis import load

    results = load.load_results(paths)  # fails fast, before the heavy imports below
    import matplotlib

    matplotlib.use("Agg")
    from analysis import plots, report, stats

    frame, keys = results.frame, results.keys
    out = prepare_out(out)
    tables = {
        "edf": stats.edf_curves(frame, keys),
        "optimizer_gap": stats.optimizer_gap(frame, keys),
        "training_length": stats.training_length(frame, keys),
    }
    plots.theme()
    figures = Figures({  # the slowest first, so two workers finish together
        "hparams": lambda: plots.hparam_figure(frame, keys),
        "edf_delta": lambda: plots.edf_figure(tables["edf"], frame, keys, "delta"),
        "edf_error": lambda: plots.edf_figure(tables["edf"], frame, keys, "error"),
        "optimizer_gap": lambda: plots.optimizer_gap_figure(frame, keys,
                                                            tables["optimizer_gap"]),
        "training_length": lambda: plots.training_length_figure(tables["training_length"],
                                                                frame),
    }, out)
    tables = {"summary": stats.summary(frame, keys), "ks": stats.compare_pairs(frame, keys),
              **tables}  # computed while the figures are drawn
    written = []
    for name, table in tables.items():
        if not table.empty:
            table.to_csv(out / f"{name}.csv", index=False)
            written.append(out / f"{name}.csv")
    saved = figures.saved()
    pngs = {name: paths[0] for name, paths in saved.items() if paths}
    written += [path for paths in saved.values() for path in paths]
    meta = [
        f"Sources: {len(results.files)} trials.csv file(s): "
        + ", ".join(str(p) for p in results.files[:10])
        + (" ..." if len(results.files) > 10 else ""),
        f"{len(frame)} finished trials of {results.rows_read} rows read, in "
        f"{frame.groupby(keys).ngroups} groups (group keys: {', '.join(keys)}).",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by python -m analysis.edf.",
    ]
    sections = _sections(tables, pngs)
    written.append(report.write_report(out / REPORT, "ViT_P vs ViT_C stability report",
                                       meta, results.messages, sections))
    return {"results": results, "tables": tables, "written": written, "out": out}


_FIGURE_JOBS: dict[str, Callable[[], Figure | None]] = {}


def _draw(name: str, out: Path) -> list[Path]:
    """Build figure ``name`` and save it as PNG and PDF; [] when it has no data."""
    from analysis import plots

    fig = _FIGURE_JOBS[name]()
    return [] if fig is None else plots.save(fig, out, name)


class Figures:
    """Figures drawn by two forked worker processes while the caller goes on working.

    Drawing is most of a run's time and the figures are independent. Workers inherit the
    jobs (closures over the loaded data) through fork, so nothing big is pickled. With one
    core, or no fork, the figures are drawn in this process when ``saved`` is called.
    """

    def __init__(self, jobs: dict[str, Callable[[], Figure | None]], out: Path) -> None:
        _FIGURE_JOBS.clear()
        _FIGURE_JOBS.update(jobs)
        self.out, self.pool, self.futures = out, None, {}
        if min(2, os.cpu_count() or 1) == 2 and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            self.pool = ProcessPoolExecutor(2, mp_context=context)
            self.futures = {name: self.pool.submit(_draw, name, out) for name in jobs}

    def saved(self) -> dict[str, list[Path]]:
        """Wait for every figure; the files written per figure name."""
        if self.pool is None:
            return {name: _draw(name, self.out) for name in _FIGURE_JOBS}
        with self.pool:
            return {name: future.result() for name, future in self.futures.items()}


def _sections(tables: dict, pngs: dict) -> list:
    """The report's sections in reading order; studies absent from the results drop out."""
    from analysis import plots, report, stats

    within = ", ".join(str(k) for k in stats.WITHIN)
    return [s for s in [
        report.Section(
            "Stability summary per group",
            f"n finished trials; best and median top-1 error (%); within_k: fraction of trials "
            f"with Δerror < k points ({within}), i.e. the Δ-EDF at k; diverged_frac: fraction "
            f"diverged (counted at chance error); auc_10: area under the Δ-EDF on [0, 10] "
            f"points (10 = every trial at the best); best_lr/best_wd: the best trial's values.",
            tables["summary"]),
        report.Section(
            "EDF of Δerror",
            "F(e) = fraction of a group's trials with error below its best + e (PAPER.md). "
            "Steeper and higher is more stable. Shaded: 95% DKW band, which holds for the "
            f"whole curve at once. Groups with fewer than {plots.MIN_EDF_TRIALS} trials are "
            "left out of the figures.",
            figure=pngs.get("edf_delta")),
        report.Section("EDF of top-1 error", "The same curves on absolute error.",
                       figure=pngs.get("edf_error")),
        report.Section(
            "ViT_P vs ViT_C",
            "ks_stat/ks_pvalue: two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp) on "
            "Δerror; *_abs: the same on absolute error (in ks.csv). within_4_diff = "
            "within_4_c - within_4_p (positive: ViT_C more stable) with a 95% percentile "
            "bootstrap interval [within_4_lo, within_4_hi].",
            tables["ks"][[c for c in KS_COLUMNS if c in tables["ks"]]]
            if not tables["ks"].empty else None),
        report.Section(
            "Error vs lr and wd", "Trials of lr/wd sweeps; the star marks each model's best.",
            figure=pngs.get("hparams")),
        report.Section(
            "Optimizer gap (AdamW vs SGD)",
            "Error of each optimizer at its best lr/wd setting (mean over seeds there); gap = "
            "SGD - AdamW; settings: how many lr/wd pairs the best was chosen from.",
            tables["optimizer_gap"], pngs.get("optimizer_gap")),
        report.Section(
            "Training length",
            "Error at the best lr/wd per schedule length and its gap to the longest schedule.",
            tables["training_length"], pngs.get("training_length")),
    ] if s.figure is not None or (s.table is not None and not s.table.empty)]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        out = args.out or default_out(args.paths)
        done = analyse(args.paths, out)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    from analysis import report

    for line in done["results"].messages:
        print(line, file=sys.stderr)
    summary = report.format_table(done["tables"]["summary"])
    print(summary.to_string(index=False))
    ks = done["tables"]["ks"]
    if not ks.empty:
        print("\nViT_P vs ViT_C (KS on Δerror; within_4_diff = ViT_C - ViT_P, 95% CI):")
        print(report.format_table(ks[[c for c in KS_COLUMNS if c in ks]]).to_string(index=False))
    print(f"\nwrote {len(done['written'])} files to {done['out']} "
          f"(open {done['out'] / REPORT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
