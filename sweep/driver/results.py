"""Tidy sweep results: ``trials.csv`` and ``curves.csv``, rewritten atomically as trials
report, plus a live progress line. A Ray Tune callback, so it sees every trial event."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from ray.tune import Callback

from sweep.columns import CURVE_COLUMNS, STATUSES, TRIAL_COLUMNS
from sweep.driver import payload
from sweep.driver.progress import FINISHED, ProgressLine
from sweep.engine.checkpoint import atomic_write_bytes


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    buf = io.StringIO()
    pd.DataFrame(rows, columns=columns).to_csv(buf, index=False)
    atomic_write_bytes(path, lambda f: f.write(buf.getvalue().encode()))


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return pd.read_csv(path).to_dict("records")


def counts(rows: list[dict]) -> dict[str, int]:
    """Trials per status, plus how many of the done ones diverged."""
    out = dict.fromkeys(STATUSES, 0)
    for r in rows:
        out[r["status"]] = out.get(r["status"], 0) + 1
    out["diverged"] = sum(1 for r in rows
                          if r["status"] == "done" and str(r.get("diverged")) == "True")
    return out


class ResultsWriter(Callback):
    """Keeps one row per trial and one per trial-epoch; the CSVs on disk are the state,
    so a restarted sweep (or a restored, unpickled copy of this callback) carries on."""

    def __init__(self, folder: Path, sweep: str, *, study: str, total: int, slots: int) -> None:
        self.folder, self.sweep, self.study = Path(folder), sweep, study
        self.total, self.slots = total, slots
        self._load()

    def __getstate__(self) -> dict:
        return {k: self.__dict__[k] for k in ("folder", "sweep", "study", "total", "slots")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._load()

    def _load(self) -> None:
        self.trials = {r["trial_id"]: r for r in read_csv(self.folder / "trials.csv")}
        self.curves = {(r["trial_id"], int(r["epoch"])): r
                       for r in read_csv(self.folder / "curves.csv")}
        self._progress = ProgressLine(self.sweep, self.total, self.slots)

    def setup(self, **info) -> None:
        self._load()

    # -- Ray Tune events ----------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._update(trial, {}, "running")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self._update(trial, {}, "running")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if not result.get("final"):
            self.set_curve(trial.trial_id, result)
        self._update(trial, result, "running", curves=not result.get("final"))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        # A trial without its final report was stopped early (ASHA in the tune study).
        self._update(trial, result, "done" if result.get("final") else "stopped")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._update(trial, trial.last_result or {}, "failed")

    # -- state --------------------------------------------------------------------------
    def _update(self, trial, result: dict, status: str, curves: bool = False) -> None:
        self.set_row(trial, result, status)
        self.flush(curves=curves)

    def set_curve(self, trial_id: str, result: dict) -> None:
        """The trial-epoch row of one epoch report (in memory; ``flush`` writes it)."""
        row = {"sweep": self.sweep, "trial_id": trial_id}
        row.update({k: result.get(k) for k in CURVE_COLUMNS[2:]})
        row["lr"] = result.get("epoch_lr")  # this epoch's actual lr
        self.curves[(trial_id, int(result["epoch"]))] = row

    def set_row(self, trial, result: dict, status: str) -> None:
        """The trial's row from its config (``trial.config``) and its latest report, with
        ``status`` (in memory; ``flush`` writes it)."""
        base, spec = payload.decode(trial.config)
        row = dict(self.trials.get(trial.trial_id, {}))
        row.update({"sweep": self.sweep, "study": self.study, "data": base["data"]["name"],
                    "trial_id": trial.trial_id, "status": status, "sample": spec["sample"],
                    "model": base["model"]["name"], "size": base["model"]["size"],
                    "optimizer": base["optimizer"]["name"], "lr": spec["lr"],
                    "wd": spec["wd"], "epochs": spec["epochs"], "seed": spec["seed"],
                    "batch_size": base["data"]["batch_size"]})
        for key in TRIAL_COLUMNS:
            if key in result and key not in ("sweep", "study", "trial_id", "status"):
                row[key] = result[key]
        if "wall_s" not in result and "elapsed_s" in result:  # stopped before its end
            row["wall_s"] = result["elapsed_s"]
        self.trials[trial.trial_id] = row

    def forget(self, trial_ids: list[str]) -> None:
        """Drop these trials' rows and curves (unfinished trials that restart afresh)."""
        if not trial_ids:
            return
        gone = set(trial_ids)
        for tid in gone:
            self.trials.pop(tid, None)
        self.curves = {k: r for k, r in self.curves.items() if k[0] not in gone}
        self.flush()

    def flush(self, curves: bool = True) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # In trial-id order, so a table rebuilt from Ray's folders is the same bytes.
        rows = [self.trials[k] for k in sorted(self.trials)]
        write_csv(self.folder / "trials.csv", rows, TRIAL_COLUMNS)
        if curves:
            rows = sorted(self.curves.values(), key=lambda r: (r["trial_id"], r["epoch"]))
            write_csv(self.folder / "curves.csv", rows, CURVE_COLUMNS)
        self.progress()

    def progress(self) -> None:
        """The live progress line (see ``sweep.driver.progress``)."""
        self._progress.update(self.trials.values(), self.curves.values())

    def on_experiment_end(self, trials, **info) -> None:
        ended = sum(1 for r in self.trials.values() if r["status"] in (*FINISHED, "failed"))
        if ended >= self.total:
            self._progress.summary(self.trials.values(), self.curves.values())
