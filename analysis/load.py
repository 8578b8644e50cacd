"""Find and read every ``trials.csv`` into one validated frame.

Sweeps are read while they run, so a file may end in a half-written line and hold trials
that are not finished yet. Those rows are left out and counted in a warning rather than
failing the whole analysis; a file that is not a trials table at all is an error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from sweep.columns import STATUSES, STUDIES, TRIAL_COLUMNS

TRIALS_FILE = "trials.csv"
COLUMNS = tuple(TRIAL_COLUMNS)  # the one definition, shared with the results writer
TEXT = ("sweep", "study", "data", "trial_id", "model", "size", "stem", "optimizer", "status",
        "diverged")
NUMERIC = tuple(c for c in COLUMNS if c not in TEXT)
# Only "done" rows are results; "stopped" is an early stop (ASHA in the tune study).
NAN_DIVERGED_ERROR = 100.0
BOOLS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
# Guessing error (%) of the datasets vitstab trains on, for tables that predate the
# chance_error column.
KNOWN_CHANCE = {"synthetic": 90.0, "cifar10": 90.0, "fashion_mnist": 90.0, "mnist": 90.0,
                "imagenet": 99.9}
RESULTS_FIX = "pass the folder that holds results/<sweep>/trials.csv"
# Every row must name its trial; a finished row must also carry these.
IDENTITY = ("sweep", "study", "data", "trial_id", "model", "optimizer")
DONE_REQUIRED = ("size", "stem", "lr", "wd", "epochs", "batch_size")
# Settings that make two trials one experiment; the analysis never pools across them.
STUDY_KEYS = ["model", "study", "data", "optimizer", "epochs", "batch_size"]


@dataclass
class Results:
    """Finished trials of all sweeps, plus what was skipped and why.

    ``frame`` holds one row per finished trial with the contract's columns and ``err``
    (the trial's error: ``best_error``, chance level for diverged trials whose error was
    lost). ``keys`` are the grouping columns (see group_keys).
    """

    frame: pd.DataFrame
    keys: list[str]
    files: list[Path]
    rows_read: int
    messages: list[str] = field(default_factory=list)
    search: dict[tuple, tuple] = field(default_factory=dict)


def read_search(files: list[Path]) -> dict[tuple, tuple]:
    """(sweep, optimizer) -> the lr interval the sweep declared, from the ``config.yaml``
    beside each ``trials.csv`` (``sweep.name`` and ``sweep.search``); sweeps without one
    (older records, studies that search nothing) are left out."""
    import yaml

    found = {}
    for path in files:
        try:
            config = yaml.safe_load((path.parent / "config.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        sweep = config.get("sweep") if isinstance(config, dict) else None
        if not isinstance(sweep, dict) or not isinstance(sweep.get("search"), dict):
            continue
        for optimizer, space in sweep["search"].items():
            lr = space.get("lr") if isinstance(space, dict) else None
            if isinstance(lr, list) and len(lr) == 2 and 0 < float(lr[0]) < float(lr[1]):
                found[(sweep.get("name"), optimizer)] = (float(lr[0]), float(lr[1]))
    return found


def find_trials(paths: list[Path | str]) -> list[Path]:
    """Every ``trials.csv`` at or below ``paths``; raises AnalysisError naming the fix."""
    if not paths:
        raise AnalysisError(f"no results folder given; {RESULTS_FIX}")
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise AnalysisError(f"{path} does not exist; {RESULTS_FIX}")
        if path.is_file():
            found.append(path)
            continue
        if not any(path.iterdir()):
            raise AnalysisError(
                f"{path} is empty; run a sweep first (make sweep) or {RESULTS_FIX}")
        below = sorted(path.rglob(TRIALS_FILE))
        if not below:
            raise AnalysisError(
                f"no {TRIALS_FILE} found under {path}; run a sweep first (make sweep) "
                f"or {RESULTS_FIX}")
        found.extend(below)
    return list(dict.fromkeys(found))


def _fields(line: bytes) -> int:
    """Number of CSV fields in one line (quote-aware only when the line has quotes)."""
    if b'"' not in line:
        return line.count(b",") + 1
    return len(next(csv.reader([line.decode("utf-8", "replace")]), []))


def complete_lines(data: bytes) -> tuple[bytes, int]:
    """``data`` without the lines whose field count differs from the header's, and how many
    were dropped: a row cut short while being written, or a garbled one. Blank lines go too.
    """
    lines = data.splitlines()
    if not lines:
        return data, 0
    width = _fields(lines[0])
    body = [line for line in lines[1:] if line.strip()]
    good = [line for line in body if _fields(line) == width]
    return b"\n".join([lines[0], *good]), len(body) - len(good)


def read_trials(path: Path) -> tuple[pd.DataFrame, int]:
    """One file's complete rows (text as str, numbers coerced) and the count of incomplete
    lines left out. Raises AnalysisError when the file is not a trials table (unreadable,
    no header, missing columns)."""
    fix = f"fix or remove {path} (a sweep writes it as results/<sweep>/{TRIALS_FILE})"
    try:
        data, dropped = complete_lines(path.read_bytes())
        frame = pd.read_csv(io.BytesIO(data), dtype={c: "str" for c in TEXT},
                            on_bad_lines="skip")
    except pd.errors.EmptyDataError:
        raise AnalysisError(f"{path} is empty (no header line); {fix}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnalysisError(f"{path} is not a readable CSV ({detail}); {fix}") from None
    except OSError as exc:
        raise AnalysisError(f"cannot read {path} ({exc.strerror}); {fix}") from None
    if "chance_error" not in frame.columns:  # written before the column existed
        frame["chance_error"] = frame.get("data", pd.Series(dtype=str)).map(KNOWN_CHANCE)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if "study" in missing and "trial_id" in frame.columns:
        raise AnalysisError(
            f"{path} predates the study column (old trials.csv format); re-run the sweep "
            "that wrote it (e.g. make example) to regenerate it in the current format")
    if missing:
        raise AnalysisError(
            f"{path} is not a trials table (missing columns: {', '.join(missing)}); {fix}")
    dropped += data.count(b"\n") - len(frame)  # anything pandas itself skipped
    frame = frame[list(COLUMNS)]
    for col in NUMERIC:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame, dropped


def _valid_rows(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Masks of well-formed rows, of diverged rows with their errors lost, and ``diverged``
    parsed to bool (unparseable counts as False; such done rows are not well formed)."""
    text_ok = frame[list(IDENTITY)].notna().all(axis=1)
    status_ok = frame["status"].isin(STATUSES) & frame["study"].isin(STUDIES)
    diverged = frame["diverged"].str.strip().str.lower().map(BOOLS)
    done = frame["status"] == "done"
    err = frame["best_error"]
    numbers_ok = frame[list(DONE_REQUIRED)].notna().all(axis=1) & (frame["lr"] > 0) & (
        frame["wd"] >= 0)
    err_ok = err.between(0, 100) | (diverged.eq(True) & err.isna())
    done_ok = diverged.notna() & numbers_ok & err_ok
    ok = text_ok & status_ok & (~done | done_ok)
    lost = ok & done & diverged.eq(True) & err.isna()
    as_bool = [m.fillna(False).astype(bool) for m in (ok, lost, diverged)]
    return as_bool[0], as_bool[1], as_bool[2]


def group_keys(frame: pd.DataFrame) -> list[str]:
    """Grouping columns: model, study, data, optimizer, epochs and batch_size, plus sweep
    when two sweeps hold trials of one such group (two lr/wd sweeps of the same models are
    then kept apart, and a sample index k only pairs trials of one sweep).

    A group is one arm of one experiment: two studies or two datasets are never pooled.
    """
    keys = list(STUDY_KEYS)
    if len(frame) and frame.groupby(keys)["sweep"].nunique().max() > 1:
        keys.append("sweep")
    return keys


def repeated_samples(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Trials whose (arm, sweep, sample) another trial shares: a paired join on them
    would pair every copy with every copy, so all of them are set aside from pairing."""
    with_sample = frame["sample"].notna()
    cols = list(dict.fromkeys([*keys, "sweep", "sample"]))
    return with_sample & frame.duplicated(cols, keep=False)


def studies_note(frame: pd.DataFrame) -> str | None:
    """One line when the results mix studies or datasets (analysed separately), else None."""
    studies = [s for s in STUDIES if s in set(frame["study"])]
    datasets = sorted(frame["data"].unique())
    if len(studies) < 2 and len(datasets) < 2:
        return None
    plural = "study" if len(studies) == 1 else "studies"
    sets = "dataset" if len(datasets) == 1 else "datasets"
    return (f"note: results hold {len(studies)} {plural} ({', '.join(studies)}) on "
            f"{len(datasets)} {sets} ({', '.join(datasets)}): analysed separately")


def load_results(paths: list[Path | str]) -> Results:
    """Read, validate and combine all trials below ``paths`` into a Results.

    Raises AnalysisError when nothing usable is found, with one line naming the fix.
    """
    files = find_trials(paths)
    frames, dropped = [], 0
    for path in files:
        frame, bad = read_trials(path)
        frames.append(frame)
        dropped += bad
    frame = pd.concat(frames, ignore_index=True)
    rows_read = len(frame) + dropped
    messages = []
    ok, lost, frame["diverged"] = _valid_rows(frame)
    malformed = dropped + int((~ok).sum())
    if malformed:
        messages.append(f"warning: skipped {malformed} malformed or half-written row(s) "
                        f"of {rows_read} in {len(files)} file(s)")
    frame = frame[ok]
    dupes = frame.duplicated(["sweep", "trial_id"], keep="last")
    if dupes.any():
        messages.append(f"warning: {int(dupes.sum())} trial row(s) repeat an earlier "
                        "(sweep, trial_id); the last row of each trial is used")
        frame = frame[~dupes]
    counts = frame["status"].value_counts()
    unfinished = {s: int(counts.get(s, 0)) for s in STATUSES
                  if s != "done" and counts.get(s, 0)}
    if unfinished:
        parts = ", ".join(f"{n} {s}" for s, n in unfinished.items())
        messages.append(f"note: {sum(unfinished.values())} trial(s) not done are left out "
                        f"({parts}); the analysis covers finished trials only")
    n_lost = int(lost[frame.index].sum())
    if n_lost:
        messages.append(f"warning: {n_lost} diverged trial(s) have no error recorded; "
                        f"counted at {NAN_DIVERGED_ERROR:g}% error")
    frame = frame[frame["status"] == "done"].reset_index(drop=True)
    if frame.empty:
        where = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        skipped = f" ({malformed} malformed row(s) skipped)" if malformed else ""
        raise AnalysisError(f"no finished trials (status done) in {where}{skipped}; wait for "
                            "the sweep to finish some trials, then run the analysis again")
    frame["err"] = frame["best_error"].fillna(NAN_DIVERGED_ERROR)
    # One order made from the data (trial ids are unique per sweep by now): every table
    # and bootstrap below sees the trials in it, whatever the row order of the files.
    frame = frame.sort_values(["sweep", "trial_id"], kind="stable").reset_index(drop=True)
    repeats = int(repeated_samples(frame, group_keys(frame)).sum())
    if repeats:
        messages.append(f"warning: {repeats} trial(s) share a sample index with another "
                        "trial of their arm (a hand-edited or merged trials.csv); they are "
                        "set aside from the paired comparison")
    note = studies_note(frame)
    if note:
        messages.append(note)
    frame["epochs"] = frame["epochs"].astype(np.int64)
    frame["batch_size"] = frame["batch_size"].astype(np.int64)
    return Results(frame=frame, keys=group_keys(frame), files=files, rows_read=rows_read,
                   messages=messages, search=read_search(files))
