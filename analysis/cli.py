"""Command line: ``python -m analysis PATH [PATH ...] [--out DIR] [--where EXPR]
[--split SPEC] [--compare] [--max-best ERR]`` (``python -m analysis.edf`` is the same
command).

Reads every ``trials.csv`` below the PATHs (and the ``curves.csv`` beside each) and writes
into DIR (default: ``analysis/`` inside the first PATH) the tables of TABLES (each only
when the results hold its study; ``larger_sweeps.csv`` only when a sibling sweep folder
holds the same arms with more trials), PNG and PDF figures (FIGURES) and a self-contained
``report.html``. ``--where`` and ``--split`` restrict or cut the trials into sub-
populations (``analysis.subsets``). With ``--compare`` each PATH is one sweep and the
sweeps are drawn side by side instead (``analysis.compare``: one figure, one table, never
pooled). The summary table and the comparisons in words are printed; warnings go to
stderr. Bad input prints one ``error:`` line naming the fix and exits with status 2.
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

TABLES = ("resolution", "larger_sweeps", "summary", "headroom", "ks", "paired",
          "expected_best", "good_range", "importance", "edf", "stalls", "training_curves",
          "optimizer_gap", "training_length")
FIGURES = ("edf_delta", "edf_delta_norm", "edf_error", "expected_best", "paired", "hparams",
           "good_range", "rank_map", "training_curves", "optimizer_gap", "training_length")
REPORT = "report.html"
KS_COLUMNS = ("size", "optimizer", "epochs", "model_a", "model_b", "n_a", "n_b", "ks_stat",
              "ks_pvalue", "within_4_a", "within_4_b", "within_4_diff", "within_4_lo",
              "within_4_hi")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="EDFs, stability statistics and a report for vitstab sweep results.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="results folder(s) holding <sweep>/trials.csv, or trials.csv files")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: PATH/analysis for the first PATH, "
                             "PATH/analysis/compare with --compare)")
    parser.add_argument("--where", action="append", default=[], metavar="EXPR",
                        help="keep trials meeting COLUMN OP VALUE, e.g. 'lr>=1e-3' or "
                             "'lrwd<1e-4' (repeatable; all must hold)")
    parser.add_argument("--split", default=None, metavar="SPEC",
                        help="analyse subsets side by side: COLUMN (one per value, e.g. "
                             "seed) or COLUMN=CUT,CUT (bins, e.g. wd=1e-4,1e-3)")
    parser.add_argument("--compare", action="store_true",
                        help="each PATH is one sweep: draw them side by side (one figure, "
                             "one table), never pooled")
    parser.add_argument("--max-best", type=float, default=None, metavar="ERR",
                        help="validity gate: also require every lr/wd arm's best error "
                             "(%%) to be at most ERR (e.g. 40 for the Fashion-MNIST study)")
    args = parser.parse_args(argv)
    if args.max_best is not None and not 0 < args.max_best <= 100:
        parser.error(f"--max-best {args.max_best:g} is not an error in (0, 100]; pass a "
                     "percentage such as 40")
    return args


def default_out(paths: list[Path], compare: bool = False) -> Path:
    """``analysis/`` next to the results: inside the first folder given (or the folder of
    the first file given); ``analysis/compare`` there for a comparison."""
    first = paths[0]
    out = (first.parent if first.is_file() else first) / "analysis"
    return out / "compare" if compare else out


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


def first_tables(frame, keys: list[str], curves) -> dict:
    """The tables the figures need, computed before the figure workers fork."""
    from analysis import curves as C
    from analysis import expected, ranges, stats

    return {"edf": stats.edf_curves(frame, keys),
            "expected_best": expected.expected_curves(frame, keys),
            "good_range": ranges.good_ranges(frame, keys),
            "stalls": C.stall_table(frame, keys, curves),
            "training_curves": C.curve_table(frame, keys, curves),
            "optimizer_gap": stats.optimizer_gap(frame, keys),
            "training_length": stats.training_length(frame, keys)}


def figure_jobs(frame, keys: list[str], first: dict) -> dict[str, Callable[[], Figure | None]]:
    """The figures, each a closure over the data, the slowest first so two workers finish
    together. ``first`` holds the tables they need (computed before the workers fork)."""
    from analysis import curve_plots, paired, plots, range_plots

    return {
        "hparams": lambda: plots.hparam_figure(frame, keys),
        "good_range": lambda: range_plots.values_figure(frame, keys, first["good_range"]),
        "training_curves": lambda: curve_plots.curves_figure(
            first["training_curves"], first["stalls"], frame, keys),
        "rank_map": lambda: range_plots.rank_figure(frame, keys),
        "edf_delta": lambda: plots.edf_figure(first["edf"], frame, keys, "delta"),
        "edf_delta_norm": lambda: plots.edf_figure(first["edf"], frame, keys, "delta_norm"),
        "edf_error": lambda: plots.edf_figure(first["edf"], frame, keys, "error"),
        "paired": lambda: plots.paired_figure(paired.paired_points(frame, keys), frame),
        "expected_best": lambda: plots.expected_figure(first["expected_best"], frame, keys),
        "optimizer_gap": lambda: plots.optimizer_gap_figure(first["optimizer_gap"], frame),
        "training_length": lambda: plots.training_length_figure(first["training_length"],
                                                                frame),
    }


def select(results, where: list[str], split: str | None):
    """``results`` with the command line's filters applied and its split made a group
    key; the filters' lines join its messages."""
    from analysis import subsets

    frame, lines = subsets.where(results.frame, where) if where else (results.frame, [])
    keys = list(results.keys)
    if split:
        frame, more = subsets.split(frame, split)
        lines += more
        keys.append(subsets.KEY)
    results.frame, results.keys = frame, keys
    results.messages.extend(lines)
    return results


def analyse(paths: list[Path], out: Path, where: list[str] | None = None,
            split: str | None = None, max_best: float | None = None) -> dict:
    """Run the whole analysis; returns the tables, the written files and the messages.
    ``max_best`` adds "every arm's best error at most this" to the validity gate."""
    from analysis import load

    results = select(load.load_results(paths), where or [], split)  # fails fast
    import matplotlib

    matplotlib.use("Agg")
    from analysis import curves, headroom, plots, report, resolution

    frame, keys = results.frame, results.keys
    out = prepare_out(out)
    first = first_tables(frame, keys, curves.read_curves(results.files))
    plots.theme()
    figures = Figures(figure_jobs(frame, keys, first), out)
    tables = {**compute_rest(frame, keys), **first}  # while the figures are drawn
    tables["headroom"] = headroom.headroom_table(frame, keys, results.search, max_best)
    tables["larger_sweeps"] = resolution.larger_sweeps(tables["resolution"], results.files)
    tables = {name: tables[name] for name in TABLES}
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
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by python -m analysis.",
    ]
    sections = report.sections(tables, pngs, keys)
    written.append(report.write_report(out / REPORT, report.title(frame), meta,
                                       results.messages, sections,
                                       report.verdicts(tables), pngs.get("edf_delta")))
    return {"results": results, "tables": tables, "written": written, "out": out}


def compute_rest(frame, keys: list[str]) -> dict:
    """The tables no figure needs (computed while the figures are drawn)."""
    from analysis import importance, paired, resolution, stats

    return {"resolution": resolution.resolution_table(frame, keys),
            "summary": stats.summary(frame, keys), "ks": stats.compare_pairs(frame, keys),
            "paired": paired.paired_table(frame, keys),
            "importance": importance.importance_table(frame, keys)}


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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        out = args.out or default_out(args.paths, args.compare)
        if args.compare:
            from analysis import compare

            return compare.main(args.paths, out, args.where, args.split)
        done = analyse(args.paths, out, args.where, args.split, args.max_best)
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
        print("\nArm a vs arm b (KS on Δerror; within_4_diff = b - a, 95% CI):")
        print(report.format_table(ks[[c for c in KS_COLUMNS if c in ks]]).to_string(index=False))
    for line in report.findings(done["tables"]):
        print(line)
    print(f"\nwrote {len(done['written'])} files to {done['out']} "
          f"(open {done['out'] / REPORT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
