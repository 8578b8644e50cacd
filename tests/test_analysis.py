"""``python -m analysis.edf`` end to end on fixture results, checked against scipy.

The command runs as a user runs it (a subprocess from the repository root); the numbers it
writes are recomputed here independently from the fixture's trials.csv files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import fixture, load, stats

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("edf_delta", "edf_error", "hparams", "optimizer_gap", "training_length")
TABLES = ("summary", "ks", "edf", "optimizer_gap", "training_length")


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    """The command exactly as documented, from the repository root."""
    return subprocess.run([sys.executable, "-m", "analysis.edf", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def trials_of(folder: Path) -> pd.DataFrame:
    """Finished trials straight from the CSVs, with the error the analysis must use."""
    frame = pd.concat([pd.read_csv(p) for p in sorted(folder.rglob("trials.csv"))])
    frame = frame[frame["status"] == "done"].copy()
    frame["err"] = frame["best_error"].fillna(100.0)
    frame["delta"] = frame["err"] - frame.groupby(KEYS)["err"].transform("min")
    return frame


KEYS = ["model", "optimizer", "epochs", "sweep"]  # the example has overlapping sweeps


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """All three studies (lr/wd, optimizer, length) analysed once, default output folder."""
    root = tmp_path_factory.mktemp("results")
    fixture.write_example(root)
    return root, run_cli(root)


def test_writes_every_output_and_prints_the_summary(example):
    root, done = example
    assert done.returncode == 0, done.stderr
    out = root / "analysis"
    for name in TABLES:
        assert (out / f"{name}.csv").is_file(), name
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 10_000, name
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name
    header = done.stdout.splitlines()[0].split()
    assert header[:3] == ["model", "stem", "size"] and "within_4" in header
    for model in ("vitp_tiny", "vitc_tiny", "vitp_4gf", "vitc_4gf"):
        assert model in done.stdout
    assert "3 trial(s) not done are left out" in done.stderr
    assert "1 diverged trial(s) have no error recorded" in done.stderr


def test_report_is_self_contained(example):
    root, _ = example
    html = (root / "analysis" / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(FIGURES)
    assert html.count("src=") == len(FIGURES) and "<link" not in html
    assert "Stability summary per group" in html and "ViT_P vs ViT_C" in html


def test_summary_numbers(example):
    root, _ = example
    summary = pd.read_csv(root / "analysis" / "summary.csv")
    trials = trials_of(root)
    assert len(summary) == trials.groupby(KEYS).ngroups == 32
    grid = np.linspace(0, stats.AUC_UPTO, 100_001)
    for _, row in summary.iterrows():
        g = trials[(trials[KEYS] == row[KEYS]).all(axis=1)]
        assert row["n"] == len(g)
        assert row["best"] == pytest.approx(g["err"].min())
        assert row["median"] == pytest.approx(g["err"].median())
        for k in stats.WITHIN:
            assert row[f"within_{k}"] == pytest.approx(np.mean(g["delta"] < k))
        assert row["diverged_frac"] == pytest.approx(g["diverged"].mean())
        cdf = sps.ecdf(g["delta"].to_numpy()).cdf.evaluate(grid)
        assert row["auc_10"] == pytest.approx(np.trapezoid(cdf, grid), abs=2e-3)


def test_edf_equals_scipy_ecdf(example):
    root, _ = example
    curves = pd.read_csv(root / "analysis" / "edf.csv")
    trials = trials_of(root)
    for key, g in trials.groupby(KEYS):
        curve = curves[(curves[KEYS] == pd.Series(key, index=KEYS)).all(axis=1)]
        ref = sps.ecdf(g["err"].to_numpy()).cdf
        np.testing.assert_allclose(curve["error"], ref.quantiles)
        np.testing.assert_allclose(curve["F"], ref.probabilities)
        np.testing.assert_allclose(curve["delta"], ref.quantiles - ref.quantiles[0])
        eps = stats.dkw_epsilon(len(g))
        np.testing.assert_allclose(curve["upper"], np.minimum(ref.probabilities + eps, 1))


def test_fraction_below_is_the_papers_strict_edf():
    values = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    x = np.array([0.5, 1.0, 2.0, 2.5, 5.0, 6.0])
    np.testing.assert_allclose(stats.fraction_below(values, x), [np.mean(values < v) for v in x])
    # scipy's ecdf is right-continuous (<=); the paper's F(e) is its left limit.
    left = sps.ecdf(values).cdf.evaluate(np.nextafter(x, -np.inf))
    np.testing.assert_allclose(stats.fraction_below(values, x), left)


def test_ks_equals_scipy_ks_2samp(example):
    root, _ = example
    ks = pd.read_csv(root / "analysis" / "ks.csv")
    trials = trials_of(root)
    assert len(ks) == 16
    for _, row in ks.iterrows():
        shared = (trials[["optimizer", "epochs", "sweep"]] == row[["optimizer", "epochs",
                                                                   "sweep"]]).all(axis=1)
        p = trials[shared & (trials["model"] == row["model_p"])]
        c = trials[shared & (trials["model"] == row["model_c"])]
        ref = sps.ks_2samp(p["delta"], c["delta"])
        assert row["ks_stat"] == pytest.approx(ref.statistic)
        assert row["ks_pvalue"] == pytest.approx(ref.pvalue)
        ref_abs = sps.ks_2samp(p["err"], c["err"])
        assert row["ks_stat_abs"] == pytest.approx(ref_abs.statistic)
        assert row["ks_pvalue_abs"] == pytest.approx(ref_abs.pvalue)
        diff = np.mean(c["delta"] < 4) - np.mean(p["delta"] < 4)
        assert row["within_4_diff"] == pytest.approx(diff)
        assert row["within_4_lo"] <= diff + 1e-9 and diff - 1e-9 <= row["within_4_hi"]


@pytest.mark.parametrize("n", [20, 64, 300])
def test_dkw_band_covers_the_true_cdf_at_the_nominal_rate(n):
    """Simulation: the 95% band must hold for the whole curve in about 95% of samples
    (DKW is slightly conservative, so a bit more). Fixed seed: deterministic."""
    rng = np.random.default_rng(2021 + n)
    reps, covered = 1000, 0
    for _ in range(reps):
        curve = stats.edf(rng.gamma(2.0, 3.0, n))
        true = sps.gamma.cdf(curve.x, 2.0, scale=3.0)
        # The band is constant on [x_i, x_i+1): the true CDF must start above its lower
        # edge there and reach x_i+1 below its upper edge; before x_1 the band is [0, eps].
        covered += bool(np.all(true >= curve.lower - 1e-12)
                        and np.all(true[1:] <= curve.upper[:-1] + 1e-12)
                        and true[0] <= curve.eps)
    assert 0.92 <= covered / reps <= 0.995


def test_bootstrap_ci_is_deterministic_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    dp, dc = rng.exponential(6, 64), rng.exponential(2, 64)
    lo, hi = stats.within_diff_ci(dp, dc)
    assert (lo, hi) == stats.within_diff_ci(dp, dc)
    diff = np.mean(dc < 4) - np.mean(dp < 4)
    assert lo < diff < hi and hi - lo < 0.5


def test_optimizer_gap_and_training_length(example):
    root, _ = example
    gap = pd.read_csv(root / "analysis" / "optimizer_gap.csv")
    seeds = gap[gap["sweep"] == "fixture_optimizer"].set_index("model")
    trials = trials_of(root)
    opt = trials[trials["sweep"] == "fixture_optimizer"]
    mean = opt.groupby(["model", "optimizer"])["err"].mean().unstack()
    for model, row in seeds.iterrows():
        assert row["gap"] == pytest.approx(mean.at[model, "sgd"] - mean.at[model, "adamw"])
    assert (seeds.loc[["vitp_tiny", "vitp_4gf"], "gap"] > 3).all()  # the fixture's ViT_P
    assert (seeds.loc[["vitc_tiny", "vitc_4gf"], "gap"] < 2).all()
    lengths = pd.read_csv(root / "analysis" / "training_length.csv")
    assert sorted(lengths["epochs"].unique()) == [50, 100, 200, 400]
    assert (lengths.loc[lengths["epochs"] == 400, "delta_to_longest"] == 0).all()
    at50 = lengths[lengths["epochs"] == 50].set_index("model")["delta_to_longest"]
    assert at50["vitp_tiny"] > at50["vitc_tiny"]


def test_malformed_rows_are_skipped_and_counted(example, tmp_path):
    root, _ = example
    sweep = tmp_path / "results" / "fixture_lrwd"
    sweep.mkdir(parents=True)
    clean = (root / "fixture_lrwd" / "trials.csv").read_text()
    row = next(line for line in clean.splitlines() if ",done,False," in line)
    trial_id = row.split(",")[1]
    bad = ["not,a,row",  # garbled
           row.replace(trial_id, "zz1").replace(",done,", ",finished,"),  # unknown status
           row.replace(trial_id, "zz2").rsplit(",", 2)[0] + ",abc,1.0",  # no best_error
           row[:40]]  # half-written: cut mid-row, as a crashed writer leaves the last line
    (sweep / "trials.csv").write_text(clean + "\n".join(bad))
    done = run_cli(tmp_path / "results", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "warning: skipped 4 malformed or half-written row(s)" in done.stderr
    dirty = pd.read_csv(tmp_path / "out" / "summary.csv")
    reference = pd.read_csv(root / "analysis" / "summary.csv")
    reference = reference[reference["sweep"] == "fixture_lrwd"].drop(columns="sweep")
    pd.testing.assert_frame_equal(dirty.reset_index(drop=True), reference.reset_index(drop=True))


def test_only_the_studies_present_are_drawn_and_stale_outputs_go(tmp_path):
    trials = fixture.make_trials("lrwd", optimizers=("adamw",), sizes=("tiny",),
                                 n_per_group=12, n_unfinished=2)
    fixture.write_results(tmp_path / "results", trials)
    out = tmp_path / "out"
    out.mkdir()
    (out / "training_length.png").write_bytes(b"old")
    done = run_cli(tmp_path / "results" / "fixture_lrwd" / "trials.csv", "--out", out)
    assert done.returncode == 0, done.stderr
    written = {p.name for p in out.iterdir()}
    assert {"summary.csv", "ks.csv", "edf_delta.png", "hparams.pdf", "report.html"} <= written
    assert not written & {"optimizer_gap.csv", "optimizer_gap.png", "training_length.png",
                          "training_length.csv"}
    assert len(pd.read_csv(out / "summary.csv")) == 2


def test_group_keys_add_batch_size_and_sweep_only_when_they_vary():
    base = fixture.make_trials("optimizer", sizes=("tiny",), n_per_group=2)
    assert load.group_keys(base) == ["model", "optimizer", "epochs"]
    assert load.group_keys(base.assign(batch_size=[256, 512] * (len(base) // 2))) == [
        "model", "optimizer", "epochs", "batch_size"]
    twice = pd.concat([base, base.assign(sweep="other")])
    assert load.group_keys(twice) == ["model", "optimizer", "epochs", "sweep"]
    apart = pd.concat([base, base.assign(sweep="other", epochs=100)])
    assert load.group_keys(apart) == ["model", "optimizer", "epochs"]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.parent.parent


def _only_running(tmp: Path) -> Path:
    trials = fixture.make_trials("lrwd", sizes=("tiny",), n_per_group=2, n_unfinished=3)
    fixture.write_results(tmp / "r", trials[trials["status"] != "done"], curves=False)
    return tmp / "r"


BAD_INPUTS = {
    "missing path": (lambda tmp: tmp / "nope", "does not exist"),
    "empty folder": (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "is empty"),
    "folder without results": (
        lambda tmp: _write(tmp / "r" / "x" / "notes.txt", b"hello"), "no trials.csv found"),
    "empty csv": (lambda tmp: _write(tmp / "r" / "s" / "trials.csv", b""), "is empty (no header"),
    "binary csv": (lambda tmp: _write(tmp / "r" / "s" / "trials.csv", bytes(range(256)) * 8),
                   "trials.csv is not a"),
    "wrong columns": (lambda tmp: _write(tmp / "r" / "s" / "trials.csv", b"a,b\n1,2\n"),
                      "missing columns: sweep, trial_id"),
    "nothing finished": (_only_running, "no finished trials"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_clear_line(case, tmp_path):
    make, expected = BAD_INPUTS[case]
    done = run_cli(make(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
