"""A results folder carried to another machine without ``ray/`` (what a commit of
``results/<sweep>`` holds) resumes: finished trials are kept, never retrained."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import INTERVAL, ROOT, sweep_args
from omegaconf import OmegaConf

CARRIED = ["sweep.models=[vitp_tiny]", "sweep.optimizers=[adamw]", "sweep.n=2",
           "schedule.epochs=1", "sweep.name=carried", "sweep.save_tuned=true", INTERVAL]


def conf_tree() -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((ROOT / "conf").rglob("*")) if p.is_file()}


def test_a_sweep_without_its_ray_folder_keeps_its_finished_trials(cli, tmp_path,
                                                                  ray_cluster):
    args = ["sweep.run", *sweep_args(tmp_path, ray_cluster, *CARRIED)]
    before = conf_tree()
    cli(*args)
    folder = tmp_path / "carried"
    trials = pd.read_csv(folder / "trials.csv")
    assert list(trials.status) == ["done", "done"]
    # The tuned values stay with the study that measured them; conf/ is not written.
    best = trials.loc[trials.best_error.idxmin()]
    saved = OmegaConf.load(folder / "tuned.yaml")
    assert saved.vitp_tiny.adamw.lr == pytest.approx(best.lr)
    assert saved.vitp_tiny.adamw.wd == pytest.approx(best.wd)
    assert conf_tree() == before
    # Carried without ray/, and with sample 1 caught mid-trial (its checkpoint is gone).
    shutil.rmtree(folder / "ray")
    kept = trials[trials["sample"] == 0].iloc[0]
    cut = trials[trials["sample"] == 1].iloc[0].trial_id
    trials.loc[trials.trial_id == cut, "status"] = "running"
    trials.to_csv(folder / "trials.csv", index=False)
    curves = pd.read_csv(folder / "curves.csv")
    curves[curves.trial_id != cut].to_csv(folder / "curves.csv", index=False)

    plan = cli(*args, "dry_run=true")
    assert f"1 of these 2 trials are finished in {folder / 'trials.csv'}" in plan.stdout
    again = cli(*args)
    assert "1 trials finished in trials.csv are kept (not retrained), 1 to run" in again.stderr
    after = pd.read_csv(folder / "trials.csv")
    assert sorted(after["sample"]) == [0, 1] and set(after.status) == {"done"}
    assert cut not in set(after.trial_id)  # the cut trial restarted under a new id
    row = after[after["sample"] == 0].iloc[0]
    assert (row.trial_id, row.wall_s, row.best_error) == (kept.trial_id, kept.wall_s,
                                                          kept.best_error)
    curves_after = pd.read_csv(folder / "curves.csv")
    assert set(curves_after.trial_id) == set(after.trial_id)
    assert len(curves_after) == 2  # one epoch each, none twice
