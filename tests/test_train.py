"""One trial end to end, through `python -m sweep.train` as a user runs it."""

from __future__ import annotations

import json

import pytest

from sweep.engine.config import compose
from sweep.engine.trainer import run_trial

SMALL = ["data.train_size=384", "data.test_size=128", "data.batch_size=64",
         "schedule.epochs=3", "optimizer.lr=0.02", "optimizer.wd=0.05", "threads=1"]
TIMING = {"images_per_s", "elapsed_s"}


def metrics(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def train(cli, out, *extra, check=True):
    return cli("sweep.train", *SMALL, *extra, f"out={out}", check=check)


def test_train_writes_result_json(cli, tmp_path):
    proc = train(cli, tmp_path / "run", "model=vitp_tiny")
    assert "epoch 3/3" in proc.stdout and "result.json" in proc.stdout
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    for key in ("error", "ema_error", "best_error", "diverged", "config", "history",
                "model", "optimizer", "lr", "wd", "epochs", "seed", "wall_s"):
        assert key in result, key
    assert result["diverged"] is False
    history = result["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for row in history:
        assert set(row) >= {"train_loss", "error", "ema_error", "lr", "images_per_s",
                            "elapsed_s"}
        assert 0 <= row["error"] <= 100 and 0 <= row["ema_error"] <= 100
    assert result["best_error"] == min(h["ema_error"] for h in history)
    assert result["error"] == history[-1]["error"]
    assert result["config"]["model"]["name"] == "vitp_tiny"
    assert result["config"]["optimizer"]["lr"] == 0.02
    assert history[-1]["lr"] < history[0]["lr"]  # cosine decay to 0
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_same_seed_same_metrics_and_seed_matters(cli, tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(cli, tmp_path / name, "schedule.epochs=2", f"seed={seed}")
        runs[name] = json.loads((tmp_path / name / "result.json").read_text())["history"]
    assert metrics(runs["a"]) == metrics(runs["b"])
    assert metrics(runs["a"]) != metrics(runs["c"])


def test_interrupted_trial_resumes_to_the_same_metrics(cli, tmp_path):
    train(cli, tmp_path / "straight", "model=vitc_tiny")
    straight = json.loads((tmp_path / "straight" / "result.json").read_text())

    class Interrupted(Exception):
        pass

    def crash_after_first_epoch(row, ckpt):
        if row["epoch"] == 1:
            raise Interrupted

    cfg = compose("train", [*SMALL, "model=vitc_tiny"])
    with pytest.raises(Interrupted):
        run_trial(cfg, workdir=tmp_path / "resumed",
                  on_epoch=crash_after_first_epoch, log=None)
    proc = train(cli, tmp_path / "resumed", "model=vitc_tiny")
    assert "resuming vitc_tiny from epoch 1" in proc.stdout
    resumed = json.loads((tmp_path / "resumed" / "result.json").read_text())
    assert metrics(resumed["history"]) == metrics(straight["history"])
    assert resumed["best_error"] == straight["best_error"]
    # A finished trial run again returns its result without training.
    again = train(cli, tmp_path / "resumed", "model=vitc_tiny")
    assert "epoch" not in again.stdout.replace("result.json", "")


def test_huge_lr_diverges_as_a_result_not_a_crash(cli, tmp_path):
    proc = train(cli, tmp_path / "div", "optimizer=sgd", "optimizer.lr=1e7")
    assert "diverged" in proc.stdout
    result = json.loads((tmp_path / "div" / "result.json").read_text())
    assert result["diverged"] is True
    assert result["error"] == result["ema_error"] == result["best_error"] == pytest.approx(90.0)


@pytest.mark.parametrize(("override", "message"), [
    ("optimizer=adam", "unknown optimizer 'adam'"),
    ("optimizer.lr=-1", "optimizer.lr must be > 0, got -1"),
    ("device=tpu", "device must be one of auto, cpu, cuda"),
    ("+model.widht=3", "unknown key model.widht"),
    ("seed=1.5", "seed: Value '1.5'"),
    ("model=vitz_tiny", "unknown model 'vitz_tiny'"),
    ("optimizer.lr=abc", "could not be converted to Float"),
    ("data.nonsense=1", "unknown key data.nonsense"),
])
def test_bad_input_is_one_clear_line(cli, tmp_path, override, message):
    proc = train(cli, tmp_path / "bad", override, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "bad" / "result.json").exists()


def test_missing_data_root_names_the_path(cli, tmp_path):
    missing = tmp_path / "nowhere"
    proc = cli("sweep.train", "data=cifar10", f"data.root={missing}", "optimizer.lr=0.1",
               "optimizer.wd=0.1", f"out={tmp_path / 'bad'}", check=False)
    assert proc.returncode != 0 and str(missing) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cfg_prints_the_composed_config(cli):
    out = cli("sweep.train", "--cfg", "optimizer=sgd").stdout
    assert "nesterov: true" in out and "name: sgd" in out and "ema_horizon" in out
