"""Rebuild ``trials.csv`` and ``curves.csv`` from Ray's experiment folders, so a deleted
row or file comes back on the next start. Each trial folder holds ``params.json`` (its
config) and ``result.json`` (one line per report, the last with ``final``); the newest
``experiment_state-*.json`` says whether it finished, failed or is still to run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from sweep.driver.results import ResultsWriter


def _statuses(experiment: Path) -> dict[str, str]:
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states:
        return {}
    out = {}
    for item in json.loads(states[-1].read_text()).get("trial_data", []):
        trial = json.loads(item[0]) if isinstance(item, list) else {}
        if "trial_id" in trial:
            out[trial["trial_id"]] = trial.get("status", "")
    return out


def _results(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill
                break
    return out


def rebuild(writer: ResultsWriter, storage: Path) -> tuple[list[str], list[str]]:
    """Put back every row the CSVs lack; returns the trial ids whose trials.csv row and
    whose curves.csv rows were missing."""
    rows, curves = [], []
    if not Path(storage).is_dir():  # a remote storage URI: nothing to read here
        return rows, curves
    for experiment in sorted(p for p in Path(storage).glob("*") if p.is_dir()):
        statuses = _statuses(experiment)
        for params in sorted(experiment.glob("*/params.json")):
            tid = params.parent.name
            results = _results(params.parent / "result.json")
            epochs = [r for r in results if not r.get("final") and "epoch" in r]
            lost = [r for r in epochs if (tid, int(r["epoch"])) not in writer.curves]
            for r in lost:
                writer.set_curve(tid, r)
            if lost:
                curves.append(tid)
            if tid in writer.trials:
                continue
            last = results[-1] if results else {}
            status = {"ERROR": "failed",
                      "TERMINATED": "done" if last.get("final") else "stopped"}.get(
                statuses.get(tid), "done" if last.get("final") else "running")
            trial = SimpleNamespace(trial_id=tid, config=json.loads(params.read_text()))
            writer.set_row(trial, last, status)
            rows.append(tid)
    if rows or curves:
        writer.flush(curves=True)
    return rows, curves
