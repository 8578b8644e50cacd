"""Sweeps end to end: `python -m sweep.run` on a Ray instance it starts, resume after a
killed driver, a two-node loopback cluster, and bad sweep specs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import INTERVAL, kill_tree, sweep_args

from sweep.columns import CURVE_COLUMNS, TRIAL_COLUMNS

ROOT = Path(__file__).resolve().parents[1]

def read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(folder / "trials.csv"), pd.read_csv(folder / "curves.csv")


def test_two_models_two_trials_end_to_end(cli, tmp_path, ray_cluster):
    proc = cli("sweep.run", *sweep_args(tmp_path, ray_cluster,
                                        "sweep.models=[vitp_tiny,vitc_tiny]",
                                        "sweep.optimizers=[adamw]", "sweep.n=2",
                                        "schedule.epochs=2", "sweep.name=e2e", INTERVAL))
    folder = tmp_path / "e2e"
    trials, curves = read(folder)
    assert list(trials.columns) == TRIAL_COLUMNS
    assert list(curves.columns) == CURVE_COLUMNS
    assert len(trials) == 4 and trials.trial_id.is_unique
    assert (trials.status == "done").all() and (trials.sweep == "e2e").all()
    assert sorted(trials.model.value_counts().items()) == [("vitc_tiny", 2), ("vitp_tiny", 2)]
    assert set(trials.stem) == {"patchify", "conv"}
    assert trials[["error", "ema_error", "best_error", "wall_s", "gflops"]].notna().all().all()
    assert ((trials.best_error >= 0) & (trials.best_error <= 100)).all()
    # The sampled batch-2048 lr/wd, inside the interval (not an epoch's decayed lr).
    assert trials.lr.between(1e-3, 1e-1).all() and trials.wd.between(0.01, 0.5).all()
    # The cosine ends at min_lr 0.005 of the trial's (batch-64) lr after its last step.
    last = curves.sort_values("epoch").groupby("trial_id").lr.last()
    scaled = trials.set_index("trial_id").lr * 64 / 2048
    assert last.to_numpy() == pytest.approx(0.005 * scaled.loc[last.index].to_numpy())
    assert len(curves) == 4 * 2 and set(curves.epoch) == {1, 2}
    for tid, rows in curves.groupby("trial_id"):
        best = trials.set_index("trial_id").loc[tid, "best_error"]
        assert best == pytest.approx(rows.ema_error.min())
    assert (folder / "config.yaml").exists() and (folder / "ray").is_dir()
    # Finished trials keep their results, not their weights (in both checkpoint copies).
    ckpts = list((folder / "ray").rglob("checkpoint.pt"))
    assert len(ckpts) >= 4 and all(p.stat().st_size < 100_000 for p in ckpts)
    assert "4/4 done" in proc.stderr
    # Paired draws: both models train at identical (lr, wd) for every sample index.
    assert (trials.study == "lr_wd").all() and (trials.data == "synthetic").all()
    assert set(trials["size"]) == {"tiny"} and sorted(set(trials["sample"])) == [0, 1]
    pairs = trials.pivot_table(index="sample", columns="model", values=["lr", "wd"])
    assert (pairs["lr"]["vitp_tiny"] == pairs["lr"]["vitc_tiny"]).all()
    assert (pairs["wd"]["vitp_tiny"] == pairs["wd"]["vitc_tiny"]).all()
    # The same name with another spec is refused, and nothing is touched.
    before = (folder / "trials.csv").read_bytes()
    clash = cli("sweep.run", *sweep_args(tmp_path, "sweep.models=[vitp_tiny,vitc_tiny]",
                                         "sweep.optimizers=[adamw]", "sweep.n=2",
                                         "schedule.epochs=3", "sweep.name=e2e", INTERVAL),
                check=False)
    assert clash.returncode != 0 and "sweep.epochs: 2 -> 3" in clash.stderr
    assert (folder / "trials.csv").read_bytes() == before
    # Growing n adds sample 2 and retrains nothing.
    cli("sweep.run", *sweep_args(tmp_path, ray_cluster, "sweep.models=[vitp_tiny,vitc_tiny]",
                                 "sweep.optimizers=[adamw]", "sweep.n=3",
                                 "schedule.epochs=2", "sweep.name=e2e", INTERVAL))
    grown, grown_curves = read(folder)
    assert len(grown) == 6 and sorted(set(grown["sample"])) == [0, 1, 2]
    old = trials.set_index("trial_id")
    kept = grown.set_index("trial_id").loc[old.index]
    assert (kept[["sample", "lr", "wd", "best_error"]] == old[["sample", "lr", "wd",
                                                               "best_error"]]).all().all()
    assert len(grown_curves) == 6 * 2  # every epoch once: nothing was trained twice


def test_repeat_best_trains_the_best_draws_again_at_other_seeds(cli, tmp_path, ray_cluster):
    """``sweep.repeat_best``: once the draws have ended, each group's best draw trains
    again at the given seeds, keeping its (lr, wd) and sample index; the dry run says so."""
    args = ["sweep.models=[vitp_tiny,vitc_tiny]", "sweep.optimizers=[adamw]", "sweep.n=2",
            "schedule.epochs=1", "sweep.name=rep", "sweep.repeat_best={draws:1,seeds:[1]}",
            INTERVAL]
    plan = cli("sweep.run", *sweep_args(tmp_path, "dry_run=true", *args)).stdout
    assert "then seeds [1] at the 1 best draws of each group: 2 trials" in plan
    assert "6 trials" in plan
    proc = cli("sweep.run", *sweep_args(tmp_path, ray_cluster, *args))
    trials, _ = read(tmp_path / "rep")
    assert len(trials) == 6 and (trials.status == "done").all() and "6/6 done" in proc.stderr
    draws, repeats = trials[trials.seed == 0], trials[trials.seed == 1]
    assert len(draws) == 4 and len(repeats) == 2
    for model, rep in repeats.groupby("model"):
        best = draws[draws.model == model].sort_values(["best_error", "sample"]).iloc[0]
        assert rep[["sample", "lr", "wd"]].iloc[0].tolist() == \
            best[["sample", "lr", "wd"]].tolist()


def test_dry_run_lists_trials_and_compute_without_running(cli, tmp_path):
    args = sweep_args(tmp_path, "dry_run=true", "sweep.n=3", "sweep.optimizers=[adamw,sgd]",
                      INTERVAL)
    out = cli("sweep.run", *args).stdout
    assert "12 trials" in out and "PMAC" in out
    assert not any(tmp_path.iterdir())
    again = cli("sweep.run", *args).stdout
    assert again == out  # same sweep config, same trials


def test_paired_draws_two_models_two_optimizers(cli, tmp_path):
    """Every group's sample k is the same unit-square point: the two stems get identical
    (lr, wd) at each k, the two optimizers the same quantiles of their own ranges; a
    larger n keeps the first draws; sobol is a sampler too."""
    def plan(*extra: str) -> pd.DataFrame:
        out = cli("sweep.run", *sweep_args(tmp_path, "dry_run=true",
                                           "sweep.optimizers=[adamw,sgd]", *extra)).stdout
        rows = [ln.split() for ln in out.splitlines()
                if "-" in ln.split(" ", 1)[0] and len(ln.split()) == 7]
        frame = pd.DataFrame(rows, columns=["group", "sample", "lr", "wd", "epochs", "seed",
                                            "pmac"])
        frame[["model", "optimizer"]] = frame.group.str.split("-", expand=True)
        return frame.astype({"sample": int, "lr": float, "wd": float})

    four = plan("sweep.n=4")
    assert len(four) == 16 and sorted(set(four["sample"])) == [0, 1, 2, 3]
    for _, same in four.groupby(["optimizer", "sample"]):
        assert same.lr.nunique() == 1 and same.wd.nunique() == 1 and len(same) == 2
    eight = plan("sweep.n=8")
    pd.testing.assert_frame_equal(eight[eight["sample"] < 4].reset_index(drop=True), four)
    sobol = plan("sweep.n=4", "sweep.sampler=sobol")
    assert not sobol[["lr", "wd"]].equals(four[["lr", "wd"]])


@pytest.mark.parametrize(("override", "message"), [
    ("sweep=grid", "unknown sweep 'grid'"),
    ("sweep.interval={lr:[1e-2,1e-3],wd:[0.1,0.2]}", "inverted"),
    ("sweep.interval={lr:[1e-3,1e-3],wd:[0.1,0.2]}", "empty"),
    (f"sweep.n=0 {INTERVAL}", "sweep.n must be >= 1"),
    ("sweep.models=[vitp_tiny] data.image_size=34 allow_resolution=true",
     "patch size 4 does not divide"),
    (f"sweep.repeat_best={{draws:0,seeds:[1]}} {INTERVAL}",
     "sweep.repeat_best.draws must be a whole number in 1..5"),
    (f"sweep.repeat_best={{draws:1,seeds:[0]}} {INTERVAL}", "holds the draws' own seed 0"),
])
def test_bad_sweep_specs_fail_before_any_trial(cli, tmp_path, override, message):
    proc = cli("sweep.run", *sweep_args(tmp_path, *override.split()), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not any(tmp_path.iterdir())


def test_missing_dataset_fails_before_any_trial(cli, tmp_path):
    missing = tmp_path / "no-cifar"
    proc = cli("sweep.run", "data=cifar10", f"data.root={missing}", f"results={tmp_path}",
               "sweep.models=[vitp_tiny,vitc_tiny]", INTERVAL, check=False)
    assert proc.returncode != 0 and str(missing) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "lr_wd-vitp_tiny+vitc_tiny-cifar10").exists()


def test_model_without_tuned_values_or_interval_fails_clearly(cli, tmp_path):
    proc = cli("sweep.run", *sweep_args(tmp_path, "preset=none", "sweep.models=[vitp_72gf]",
                                        "data.image_size=32", "allow_resolution=true",
                                        "sweep.optimizers=[sgd]",
                                        "sweep=optimizer"), check=False)
    assert proc.returncode != 0 and "no tuned lr/wd for sgd" in proc.stderr



def test_killed_driver_resumes_without_losing_or_retraining(tmp_path, ray_cluster):
    """SIGKILL the driver (and its Ray) once two trials are done and another has trained
    an epoch; the same command, here joining the shared Ray instance, finishes the rest
    and retrains nothing, even when the kill fell between Ray deleting a trial's older
    checkpoint folder and saving the state that names the newer one."""
    args = [sys.executable, "-m", "sweep.run",
            *sweep_args(tmp_path, "sweep.models=[vitp_tiny,vitc_tiny]",
                        "sweep.optimizers=[adamw]", "sweep.n=2", "schedule.epochs=3",
                        "sweep.name=killed", INTERVAL)]
    folder = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            time.sleep(0.5)
            if (folder / "trials.csv").exists() and (folder / "curves.csv").exists():
                trials, curves = read(folder)
                running = set(trials.trial_id[trials.status != "done"])
                if (trials.status == "done").sum() >= 2 and curves.trial_id.isin(running).any():
                    break
        else:
            pytest.fail("the sweep finished no trials in time")
    finally:
        kill_tree(driver)
    before_trials, before_curves = read(folder)
    done_before = set(before_trials.trial_id[before_trials.status == "done"])
    assert 2 <= len(done_before) < 4
    # The kill's worst moment: the state names a checkpoint folder Ray already deleted
    # (its newest folder, registered after the last state save, takes the next index).
    moved = 0
    for tid in set(before_trials.trial_id) - done_before:
        ckpts = sorted((folder / "ray" / "lr_wd" / tid).glob("checkpoint_[0-9]*"))
        if ckpts:
            index = int(ckpts[-1].name.split("_")[1])
            ckpts[-1].rename(ckpts[-1].with_name(f"checkpoint_{index + 1:06d}"))
            moved += 1
    assert moved

    proc = subprocess.run([*args, ray_cluster], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    trials, curves = read(folder)
    assert len(trials) == 4 and trials.trial_id.is_unique
    assert (trials.status == "done").all()
    assert len(curves) == 4 * 3 and not curves.duplicated(["trial_id", "epoch"]).any()
    # Finished trials were not trained again: their epoch rows are untouched.
    keep = before_curves[before_curves.trial_id.isin(done_before)].reset_index(drop=True)
    after = curves[curves.trial_id.isin(done_before)].reset_index(drop=True)
    pd.testing.assert_frame_equal(keep.sort_values(["trial_id", "epoch"]).reset_index(drop=True),
                                  after.sort_values(["trial_id", "epoch"]).reset_index(drop=True))


def test_two_node_loopback_cluster_runs_trials_on_both_nodes(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    from sweep.driver.runner import GCS_PORT_WAIT_S

    # The head's GCS may take longer than Ray's default 20 s to answer while another
    # sweep shares the cores (pytest -n 2): the wait init_ray allows a sweep's own start.
    monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", GCS_PORT_WAIT_S)

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 80_000_000})
    cluster.add_node(num_cpus=1, object_store_memory=80_000_000)
    try:
        cluster.wait_for_nodes()
        from sweep.run import main

        rc = main([*sweep_args(tmp_path, "cluster=ray", f"ray.address={cluster.address}",
                               "resources.cpus_per_trial=1", "resources.gpus_per_trial=0",
                               "sweep.models=[vitc_tiny]", "sweep.optimizers=[sgd]",
                               "sweep.n=4", "schedule.epochs=1", "sweep.name=twonode", INTERVAL)])
        assert rc == 0
    finally:
        cluster.shutdown()
    trials, _ = read(tmp_path / "twonode")
    assert len(trials) == 4 and (trials.status == "done").all()
    nodes = set()
    for result in (tmp_path / "twonode" / "ray").glob("*/*/result.json"):
        for line in result.read_text().splitlines():
            nodes.add(json.loads(line)["node_id"])
    assert len(nodes) == 2


def test_cnn_twin_is_the_third_curve_of_a_real_sweep(cli, tmp_path, ray_cluster):
    """The CPU ViT pair and the CPU RegNetY twin in one paired lr/wd sweep: the analysis
    draws three EDF curves in the tiny panel and compares ViT_C with the CNN too."""
    cli("sweep.run", *sweep_args(tmp_path, ray_cluster, "analyze=true"),
        "sweep.models=[vitp_tiny,vitc_tiny,regnety_tiny]", "sweep.optimizers=[adamw]",
        "sweep.n=5", "schedule.epochs=1", "sweep.name=cnn", INTERVAL)
    folder = tmp_path / "cnn"
    trials, _ = read(folder)
    assert len(trials) == 15 and (trials.status == "done").all()
    assert set(trials.stem) == {"patchify", "conv", "cnn"} and set(trials["size"]) == {"tiny"}
    edf = pd.read_csv(folder / "analysis" / "edf.csv")
    tiny = edf[edf["size"] == "tiny"]
    assert set(tiny.stem) == {"patchify", "conv", "cnn"} and (tiny.n == 5).all()
    ks = pd.read_csv(folder / "analysis" / "ks.csv")
    assert set(zip(ks.stem_a, ks.stem_b, strict=True)) == {("patchify", "conv"), ("conv", "cnn")}
    assert (folder / "analysis" / "edf_delta.png").exists()
