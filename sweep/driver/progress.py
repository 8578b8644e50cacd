"""The sweep's live progress: one line, rewritten in place on a terminal; on a pipe or a
log file (CI, nohup), a plain line each time a trial finishes (written once the freed slot
has its next trial, so the running count is not one short) and a summary at the end.

It reads the results writer's rows (trials and trial-epochs), so it needs no state of its
own beyond what it last printed. The ETA comes from epoch timings, not only from finished
trials: each unfinished trial's remaining epochs and each trial not yet started cost the
median seconds per epoch of the trials that reported one, and that work is laid out over
the slots (trials that run at once) the way the cluster runs it, each trial on the first
free slot, so a sweep's last trials, fewer than the slots, are not counted as if they
shared the idle ones.
"""

from __future__ import annotations

import heapq
import io
import math
import os
import statistics
import sys
import time
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
    """Seconds left: the trials' remaining epochs × the median s/epoch, run ``slots`` at
    a time, running trials first (inf before any epoch)."""
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
    running, queued = [], []
    for r in trials:
        if r.get("status") in (*FINISHED, "failed"):
            continue
        todo = _num(r.get("epochs")) or typical
        done = float(last[r["trial_id"]]["epoch"]) if r["trial_id"] in last else 0.0
        (running if r.get("status") == "running" else queued).append(max(0.0, todo - done))
    queued += [typical] * max(0, total - len(trials))  # not started (or not yet known)
    return statistics.median(per_epoch) * makespan(running, queued, slots)


def makespan(running: list[float], queued: list[float], slots: int) -> float:
    """When the last of these trials ends (in epochs): the running ones hold a slot each
    (beyond ``slots``: stale rows of a killed run, queued), each queued one starts on the
    first slot that frees."""
    slots = max(1, slots)
    ends = sorted(running, reverse=True)
    queued = ends[slots:] + queued
    ends = ends[:slots] + [0.0] * (slots - min(slots, len(ends)))
    heapq.heapify(ends)
    for work in queued:
        heapq.heappush(ends, heapq.heappop(ends) + work)
    return max(ends)


def running(trials: list[dict], slots: int) -> int:
    """Trials running now: rows a killed run left as running count only up to the slots
    (they run again when Tune restarts them)."""
    return min(sum(1 for r in trials if r.get("status") == "running"), slots)


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


class ProgressLine:
    """Renders the results writer's rows as a progress line on ``stream`` (stderr)."""

    # Off a terminal, a finished trial's line waits at most this long for its slot's next
    # trial to start (a slot may stay free: a retry waiting, a full cluster).
    REFILL_WAIT_S = 30.0

    def __init__(self, sweep: str, total: int, slots: int, *, stream: TextIO | None = None,
                 tty: bool | None = None, clock=time.monotonic) -> None:
        self.sweep, self.total, self.slots = sweep, total, max(1, slots)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self._last_line = ""
        self._finished: int | None = None  # trials ended at the last plain line
        self._due: float | None = None  # when a trial ended whose plain line is unwritten

    def line(self, trials: list[dict], curves: list[dict]) -> str:
        n = dict.fromkeys(("done", "stopped", "running", "failed"), 0)
        for r in trials:
            n[r.get("status")] = n.get(r.get("status"), 0) + 1
        diverged = sum(1 for r in trials if r.get("status") == "done" and _diverged(r))
        finished = n["done"] + n["stopped"]
        parts = [f"[{self.sweep}] {finished}/{self.total} done, {running(trials, self.slots)} "
                 f"running, {n['failed']} failed, {diverged} diverged"]
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
        else:
            if ended > self._finished and self._due is None:
                self._due = self.clock()
            # The slot a trial freed gets the next trial a moment later: the line waits
            # for it, so "running" counts what runs.
            if self._due is not None and (
                    running(trials, self.slots) >= min(self.slots, self.total - ended)
                    or self.clock() - self._due >= self.REFILL_WAIT_S):
                self._write(line + "\n")
                self._due = None
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
