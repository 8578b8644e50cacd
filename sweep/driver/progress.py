"""The sweep's live progress: one line, rewritten in place on a terminal; on a pipe or a
log file (CI, nohup), a plain line each time a trial finishes and a summary at the end.

It reads the results writer's rows (trials and trial-epochs), so it needs no state of its
own beyond what it last printed. The ETA comes from epoch timings, not only from finished
trials: the median seconds per epoch of every trial that reported one, times the epochs
still to train (unfinished trials' remaining epochs, and the epochs of trials not yet
started), over the number of trials that run at once.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import sys
from collections.abc import Iterable
from typing import TextIO

FINISHED = ("done", "stopped")
CLEAR = "\r\x1b[K"  # back to the line's start, clear to its end


def fmt_s(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _num(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _diverged(row: dict) -> bool:
    return str(row.get("diverged")) == "True"


def eta_s(trials: list[dict], curves: list[dict], total: int, slots: int) -> float:
    """Seconds left: median s/epoch × epochs still to train ÷ slots (inf before any epoch)."""
    last: dict[str, dict] = {}
    for c in curves:
        if _num(c.get("epoch")) and (c["trial_id"] not in last
                                     or c["epoch"] > last[c["trial_id"]]["epoch"]):
            last[c["trial_id"]] = c
    per_epoch = [e / float(c["epoch"]) for c in last.values()
                 if (e := _num(c.get("elapsed_s"))) is not None and e > 0]
    if not per_epoch:
        return math.inf
    epochs = [int(x) for r in trials if (x := _num(r.get("epochs")))]
    typical = statistics.mean(epochs) if epochs else 1
    left = 0.0
    for r in trials:
        if r.get("status") in (*FINISHED, "failed"):
            continue
        todo = _num(r.get("epochs")) or typical
        done = float(last[r["trial_id"]]["epoch"]) if r["trial_id"] in last else 0.0
        left += max(0.0, todo - done)
    left += max(0, total - len(trials)) * typical  # not started (or not yet known)
    return statistics.median(per_epoch) * left / max(1, slots)


def best_per_group(trials: list[dict]) -> dict[str, float]:
    """Lowest best_error so far per model-optimizer group (diverged trials included only
    through the epochs they reported)."""
    best: dict[str, float] = {}
    for r in trials:
        err = _num(r.get("best_error"))
        if err is None or not r.get("model"):
            continue
        group = f"{r['model']}-{r['optimizer']}"
        best[group] = min(err, best.get(group, math.inf))
    return best


class Progress:
    """Renders the results writer's rows as a progress line on ``stream`` (stderr)."""

    def __init__(self, sweep: str, total: int, slots: int, *, stream: TextIO | None = None,
                 tty: bool | None = None) -> None:
        self.sweep, self.total, self.slots = sweep, total, slots
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._last_line = ""
        self._finished: int | None = None  # trials ended at the last plain line

    def line(self, trials: list[dict], curves: list[dict]) -> str:
        n = dict.fromkeys(("done", "stopped", "running", "failed"), 0)
        for r in trials:
            n[r.get("status")] = n.get(r.get("status"), 0) + 1
        diverged = sum(1 for r in trials if r.get("status") == "done" and _diverged(r))
        finished = n["done"] + n["stopped"]
        parts = [f"[{self.sweep}] {finished}/{self.total} done, {n['running']} running, "
                 f"{n['failed']} failed, {diverged} diverged"]
        best = best_per_group(trials)
        if best:
            parts.append("best " + " ".join(f"{g} {e:.1f}" for g, e in sorted(best.items())))
        if finished + n["failed"] < self.total:
            parts.append(f"ETA {fmt_s(eta_s(trials, curves, self.total, self.slots))}")
        return " | ".join(parts)

    def update(self, trials: Iterable[dict], curves: Iterable[dict]) -> None:
        trials, curves = list(trials), list(curves)
        ended = sum(1 for r in trials if r.get("status") in (*FINISHED, "failed"))
        if self._finished is None:  # what a resumed sweep had already finished
            self._finished = ended
        line = self.line(trials, curves)
        if self.tty:
            if line != self._last_line:
                self._write(CLEAR + line[: self._width() - 1])
        elif ended > self._finished:
            self._write(line + "\n")
        self._finished = max(self._finished, ended)
        self._last_line = line

    def summary(self, trials: Iterable[dict], curves: Iterable[dict]) -> None:
        """The last line: on a terminal the live line stays, ended; elsewhere a summary."""
        line = self.line(list(trials), list(curves))
        if self.tty:
            self._write(CLEAR + line + "\n")
        else:
            self._write(line.replace("] ", "] finished: ", 1) + "\n")
        self._last_line = line

    def _width(self) -> int:
        """The terminal's columns, so the line never wraps (a wrapped line is not
        rewritten in place); unknown or zero: no limit."""
        try:
            cols = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            cols = 0
        return cols if cols >= 20 else 10_000

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or terminal must not stop the sweep
            pass
