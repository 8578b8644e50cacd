"""``python -m analysis.edf`` end to end on fixture results, checked against scipy.

The command runs as a user runs it (a subprocess from the repository root); the numbers it
writes are recomputed here independently from the fixture's trials.csv files.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import edf, expected, fixture, importance, load, resolution, stats, words

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("edf_delta", "edf_delta_norm", "edf_error", "expected_best", "paired", "hparams",
           "good_range", "rank_map", "training_curves", "optimizer_gap", "training_length")
TABLES = ("resolution", "summary", "headroom", "ks", "paired", "expected_best", "good_range",
          "importance", "edf", "stalls", "training_curves", "optimizer_gap",
          "training_length")


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


KEYS = ["model", "study", "data", "optimizer", "epochs", "batch_size"]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """Three studies (lr_wd with a CNN arm, optimizer, schedule) analysed once, default
    output folder."""
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
    for model in ("vitp_tiny", "vitc_tiny", "vitp_4gf", "vitc_4gf", "regnety_tiny"):
        assert model in done.stdout
    assert "3 trial(s) not done are left out" in done.stderr
    assert ("results hold 3 studies (lr_wd, optimizer, schedule) on 1 dataset (synthetic): "
            "analysed separately") in done.stderr
    assert "1 diverged trial(s) have no error recorded" in done.stderr


def test_report_is_self_contained(example):
    root, _ = example
    html = (root / "analysis" / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(FIGURES)
    assert html.count("src=") == len(FIGURES) and "<link" not in html
    assert "Stability summary per group" in html and "ViT_P vs ViT_C" in html
    assert "ViT_C vs CNN" in html and "Wilcoxon p =" in html and "PedAnova" in html
    assert "<title>ViT_P, ViT_C and CNN stability report</title>" in html
    # The answer first: the Δ-EDF figure and the verdicts before any table or definition.
    answer = html.index("Answer: stability per comparison")
    assert answer < html.index('alt="edf_delta"') < html.index('class="verdicts"')
    assert html.index('class="verdicts"') < html.index("<table")
    for at in [i for i in range(len(html)) if html.startswith("<table", i)]:
        before = html[:at]  # every table is folded away inside a <details>
        assert before.rfind("<details>") > before.rfind("</details>")


def test_summary_numbers(example):
    root, _ = example
    summary = pd.read_csv(root / "analysis" / "summary.csv")
    trials = trials_of(root)
    assert len(summary) == trials.groupby(KEYS).ngroups == 48
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
    trials = trials[trials["study"] == "lr_wd"]
    assert len(curves.groupby(KEYS)) == trials.groupby(KEYS).ngroups == 12
    for key, g in trials.groupby(KEYS):
        curve = curves[(curves[KEYS] == pd.Series(key, index=KEYS)).all(axis=1)]
        ref = sps.ecdf(g["err"].to_numpy()).cdf
        np.testing.assert_allclose(curve["error"], ref.quantiles)
        np.testing.assert_allclose(curve["F"], ref.probabilities)
        # Δ on the errors' grid (here 1e-6: the fixture's errors are continuous)
        np.testing.assert_allclose(curve["delta"], ref.quantiles - ref.quantiles[0],
                                   atol=1e-6)
        np.testing.assert_array_equal(
            curve["delta"], edf.on_grid(ref.quantiles - ref.quantiles[0], ref.quantiles))
        eps = edf.dkw_epsilon(len(g))
        np.testing.assert_allclose(curve["upper"], np.minimum(ref.probabilities + eps, 1))


def test_fraction_below_is_the_papers_strict_edf():
    values = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    x = np.array([0.5, 1.0, 2.0, 2.5, 5.0, 6.0])
    np.testing.assert_allclose(edf.fraction_below(values, x), [np.mean(values < v) for v in x])
    # scipy's ecdf is right-continuous (<=); the paper's F(e) is its left limit.
    left = sps.ecdf(values).cdf.evaluate(np.nextafter(x, -np.inf))
    np.testing.assert_allclose(edf.fraction_below(values, x), left)


def test_ks_equals_scipy_ks_2samp(example):
    root, _ = example
    ks = pd.read_csv(root / "analysis" / "ks.csv")
    trials = trials_of(root)
    assert len(ks) == 8  # 2 sizes x 2 optimizers x (ViT_P/ViT_C, ViT_C/CNN), lr_wd only
    pairs = set(zip(ks["stem_a"], ks["stem_b"], strict=True))
    assert pairs == {("patchify", "conv"), ("conv", "cnn")}
    for _, row in ks.iterrows():
        shared = (trials[["study", "optimizer", "epochs"]] == row[
            ["study", "optimizer", "epochs"]]).all(axis=1)
        a = trials[shared & (trials["model"] == row["model_a"])]
        b = trials[shared & (trials["model"] == row["model_b"])]
        ref = sps.ks_2samp(a["delta"], b["delta"])
        assert row["ks_stat"] == pytest.approx(ref.statistic)
        assert row["ks_pvalue"] == pytest.approx(ref.pvalue)
        ref_abs = sps.ks_2samp(a["err"], b["err"])
        assert row["ks_stat_abs"] == pytest.approx(ref_abs.statistic)
        assert row["ks_pvalue_abs"] == pytest.approx(ref_abs.pvalue)
        diff = np.mean(b["delta"] < 4) - np.mean(a["delta"] < 4)
        assert row["within_4_diff"] == pytest.approx(diff)
        assert row["within_4_lo"] <= diff + 1e-9 and diff - 1e-9 <= row["within_4_hi"]


def test_ks_of_the_smallest_gap_is_quiet_and_equals_scipy():
    """Five draws a side, D = 1/5: scipy's exact p overshoots 1, warns and falls back to
    the asymptotic p (1 too). The report's KS gives the same numbers without the warning,
    which a notebook would otherwise print under every comparison."""
    a = np.array([0.0, 0.15584416, 0.68831169, 0.32467532, 0.18181818])
    b = np.array([0.12820513, 0.66153846, 0.0, 0.18974359, 0.21025641])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ref = sps.ks_2samp(a, b)
    assert any("Exact calculation unsuccessful" in str(w.message) for w in seen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = stats.ks_test(a, b)
    assert (ours.statistic, ours.pvalue) == (ref.statistic, ref.pvalue) == (0.2, 1.0)


@pytest.mark.parametrize("n", [20, 64, 300])
def test_dkw_band_covers_the_true_cdf_at_the_nominal_rate(n):
    """Simulation: the 95% band must hold for the whole curve in about 95% of samples
    (DKW is slightly conservative, so a bit more). Fixed seed: deterministic."""
    rng = np.random.default_rng(2021 + n)
    reps, covered = 1000, 0
    for _ in range(reps):
        curve = edf.ecdf(rng.gamma(2.0, 3.0, n))
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
    seeds = gap[gap["study"] == "optimizer"].set_index("model")
    trials = trials_of(root)
    opt = trials[trials["study"] == "optimizer"]
    mean = opt.groupby(["model", "optimizer"])["err"].mean().unstack()
    for model, row in seeds.iterrows():
        assert row["gap"] == pytest.approx(mean.at[model, "sgd"] - mean.at[model, "adamw"])
        for o in ("adamw", "sgd"):  # a seed study: n seeds, interval = their range
            runs = opt[(opt["model"] == model) & (opt["optimizer"] == o)]["err"]
            assert row[f"n_{o}"] == len(runs) == 3
            assert (row[f"lo_{o}"], row[f"hi_{o}"]) == pytest.approx((runs.min(), runs.max()))
    assert "regnety_tiny" in seeds.index  # the CNN is in the gap table
    assert seeds.loc["vitp_tiny", "gap"] > 3 and seeds.loc["vitc_tiny", "gap"] < 2
    swept = gap[gap["study"] == "lr_wd"].set_index("model")
    lrwd = trials[trials["study"] == "lr_wd"]
    for model, row in swept.iterrows():  # an lr/wd sweep: the best of its n trials
        runs = lrwd[(lrwd["model"] == model) & (lrwd["optimizer"] == "sgd")]["err"]
        assert row["err_sgd"] == pytest.approx(runs.min()) and row["n_sgd"] == len(runs)
        assert row["lo_sgd"] == pytest.approx(runs.min()) and row["hi_sgd"] >= runs.min()
    lengths = pd.read_csv(root / "analysis" / "training_length.csv")
    assert set(lengths["study"]) == {"schedule"}
    assert sorted(lengths["epochs"].unique()) == [50, 100, 200, 400]
    assert (lengths.loc[lengths["epochs"] == 400, "delta_to_longest"] == 0).all()
    at50 = lengths[lengths["epochs"] == 50].set_index("model")["delta_to_longest"]
    assert at50["vitp_tiny"] > at50["vitc_tiny"] and "regnety_tiny" in at50


def test_malformed_rows_are_skipped_and_counted(example, tmp_path):
    root, _ = example
    sweep = tmp_path / "results" / "fixture_lr_wd"
    sweep.mkdir(parents=True)
    clean = (root / "fixture_lr_wd" / "trials.csv").read_text()
    row = next(line for line in clean.splitlines() if ",done,False," in line)
    trial_id = row.split(",")[3]
    bad = ["not,a,row",  # garbled
           row.replace(trial_id, "zz1").replace(",done,", ",finished,"),  # unknown status
           row.replace(trial_id, "zz2").rsplit(",", 3)[0] + ",abc,99.9,1.0",  # no best_error
           row[:40]]  # half-written: cut mid-row, as a crashed writer leaves the last line
    (sweep / "trials.csv").write_text(clean + "\n".join(bad))
    done = run_cli(tmp_path / "results", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "warning: skipped 4 malformed or half-written row(s)" in done.stderr
    dirty = pd.read_csv(tmp_path / "out" / "summary.csv")
    reference = pd.read_csv(root / "analysis" / "summary.csv")
    reference = reference[reference["study"] == "lr_wd"]
    pd.testing.assert_frame_equal(dirty.reset_index(drop=True), reference.reset_index(drop=True))


def test_only_the_studies_present_are_drawn_and_stale_outputs_go(tmp_path):
    trials = fixture.make_trials("lr_wd", optimizers=("adamw",), sizes=("tiny",),
                                 n_per_group=12, n_unfinished=2)
    fixture.write_results(tmp_path / "results", trials)
    out = tmp_path / "out"
    out.mkdir()
    (out / "training_length.png").write_bytes(b"old")
    done = run_cli(tmp_path / "results" / "fixture_lr_wd" / "trials.csv", "--out", out)
    assert done.returncode == 0, done.stderr
    written = {p.name for p in out.iterdir()}
    assert {"summary.csv", "ks.csv", "edf_delta.png", "hparams.pdf", "report.html"} <= written
    assert not written & {"optimizer_gap.csv", "optimizer_gap.png", "training_length.png",
                          "training_length.csv"}
    assert len(pd.read_csv(out / "summary.csv")) == 2


def test_group_keys_add_sweep_only_when_two_sweeps_share_a_group():
    base = fixture.make_trials("optimizer", sizes=("tiny",), n_per_group=2)
    assert load.group_keys(base) == load.STUDY_KEYS == [
        "model", "study", "data", "optimizer", "epochs", "batch_size"]
    twice = pd.concat([base, base.assign(sweep="other")])
    assert load.group_keys(twice) == load.STUDY_KEYS + ["sweep"]
    apart = pd.concat([base, base.assign(sweep="other", data="cifar10")])
    assert load.group_keys(apart) == load.STUDY_KEYS


def test_studies_and_datasets_are_never_pooled(tmp_path):
    """An lr_wd sweep and a schedule sweep of the same models at the same 50 epochs, and
    an lr_wd sweep on another dataset: every statistic keeps them apart."""
    lrwd = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                               n_per_group=16)
    schedule = fixture.make_trials("schedule", sizes=("tiny",), optimizers=("adamw",),
                                   n_per_group=3, epochs=(50, 100), seed=1)
    other = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                n_per_group=8, data="cifar10", sweep="cifar", seed=2)
    fixture.write_results(tmp_path / "r", pd.concat([lrwd, schedule, other]), curves=False)
    done = run_cli(tmp_path / "r", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert ("note: results hold 2 studies (lr_wd, schedule) on 2 datasets (cifar10, "
            "synthetic): analysed separately") in done.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    vitp = summary[summary["model"] == "vitp_tiny"].set_index(["study", "data", "epochs"])
    assert vitp.loc[("lr_wd", "synthetic", 50), "n"] == 16  # not 16 + 3 + 8
    assert vitp.loc[("schedule", "synthetic", 50), "n"] == 3
    assert vitp.loc[("lr_wd", "cifar10", 50), "n"] == 8
    best = lrwd[lrwd["model"] == "vitp_tiny"]["best_error"].min()
    assert vitp.loc[("lr_wd", "synthetic", 50), "best"] == pytest.approx(best)
    lengths = pd.read_csv(tmp_path / "out" / "training_length.csv")
    assert set(lengths["study"]) == {"schedule"} and (lengths["n"] == 3).all()
    curves = pd.read_csv(tmp_path / "out" / "expected_best.csv")
    assert set(curves.groupby(["study", "data"])["N"].max().items()) == {
        (("lr_wd", "cifar10"), 8), (("lr_wd", "synthetic"), 16)}


def test_old_format_fails_with_one_line(tmp_path):
    old = fixture.make_trials("lr_wd", sizes=("tiny",), n_per_group=2).drop(
        columns=["study", "data", "sample", "size"])
    _write(tmp_path / "r" / "s" / "trials.csv", old.to_csv(index=False).encode())
    done = run_cli(tmp_path / "r")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "predates the study column" in done.stderr and "re-run the sweep" in done.stderr


def test_expected_best_matches_brute_force():
    """Without replacement: the mean of the minimum over every n-subset; with replacement:
    the mean and variance of the minimum over every ordered n-tuple."""
    from itertools import combinations, product

    errors = np.array([31.0, 27.5, 40.2, 27.5, 99.9, 33.3, 29.1])
    ns = np.arange(1, len(errors) + 1)
    without, with_mean, sd, sd_without = expected.expected_min(errors, ns)
    for n in ns:
        subsets = [min(c) for c in combinations(errors, n)]
        assert without[n - 1] == pytest.approx(np.mean(subsets))
        assert sd_without[n - 1] == pytest.approx(np.std(subsets), abs=1e-9)
        if n <= 4:
            tuples = np.array([min(t) for t in product(errors, repeat=n)])
            assert with_mean[n - 1] == pytest.approx(tuples.mean())
            assert sd[n - 1] == pytest.approx(tuples.std())
    big = np.random.default_rng(0).gamma(2.0, 3.0, 512)  # log-binomials: stable at N=512
    without, _, _, _ = expected.expected_min(big, np.arange(1, 513))
    assert np.all(np.isfinite(without)) and np.all(np.diff(without) <= 1e-9)
    assert without[0] == pytest.approx(big.mean()) and without[-1] == pytest.approx(big.min())


def test_expected_best_csv(example):
    root, _ = example
    curves = pd.read_csv(root / "analysis" / "expected_best.csv")
    trials = trials_of(root)
    g = trials[(trials["model"] == "vitp_tiny") & (trials["study"] == "lr_wd")
               & (trials["optimizer"] == "sgd")]
    c = curves[(curves["model"] == "vitp_tiny") & (curves["optimizer"] == "sgd")]
    assert list(c["n_trials"]) == list(range(1, len(g) + 1))
    rng = np.random.default_rng(1)  # Monte Carlo, without replacement, at n = 5
    draws = np.array([rng.choice(g["err"].to_numpy(), 5, replace=False).min()
                      for _ in range(40_000)])
    assert c["expected"].iloc[4] == pytest.approx(draws.mean(), abs=0.3)
    assert c["expected"].iloc[-1] == pytest.approx(g["err"].min())
    # The band is ±1σ of the same without-replacement draws: it holds its curve at every n.
    assert (curves["lo"] <= curves["expected"]).all() and (
        curves["expected"] <= curves["hi"]).all()
    np.testing.assert_allclose(curves["hi"] - curves["expected"], curves["sd"])
    np.testing.assert_allclose(curves["expected"] - curves["lo"], curves["sd"])
    assert c["sd"].iloc[4] == pytest.approx(draws.std(), rel=0.05)
    assert c["sd"].iloc[-1] == pytest.approx(0, abs=1e-9)  # every trial drawn
    assert expected.n_grid(20_000)[[0, -1]].tolist() == [1, 20_000]


def test_paired_comparison(example):
    root, _ = example
    table = pd.read_csv(root / "analysis" / "paired.csv")
    trials = trials_of(root)
    lrwd = trials[trials["study"] == "lr_wd"]
    assert len(table) == 8
    for _, row in table.iterrows():
        arm = (lrwd["size"] == row["size"]) & (lrwd["optimizer"] == row["optimizer"])
        a = lrwd[arm & (lrwd["model"] == row["model_a"])].set_index("sample")
        b = lrwd[arm & (lrwd["model"] == row["model_b"])].set_index("sample")
        d = (b["err"] - a["err"]).dropna()
        assert row["n_pairs"] == len(d) == 24
        assert row["diff_median"] == pytest.approx(d.median())
        assert row["diff_mean"] == pytest.approx(d.mean())
        d = edf.on_grid(d, pd.concat([a["err"], b["err"]]))
        ref = sps.wilcoxon(d, method="exact")  # 24 pairs: scipy's exact distribution
        assert row["wilcoxon_pvalue"] == pytest.approx(ref.pvalue)
        same = np.allclose(a["lr"], b["lr"].loc[a.index]) and np.allclose(
            a["wd"], b["wd"].loc[a.index])
        assert same == (row["stem_b"] == "conv") == (row["same_lr_wd"] == 1.0)
        diff = np.mean(b["delta"] < 4) - np.mean(a["delta"] < 4)
        assert row["within_4_diff"] == pytest.approx(diff)
        assert row["within_4_lo"] <= diff + 1e-9 <= row["within_4_hi"] + 2e-9
    vit = table[table["stem_a"] == "patchify"]
    assert (vit["diff_median"] < 0).all() and (vit["wilcoxon_pvalue"] < 0.05).all()


def test_paired_bootstrap_resamples_pairs_jointly():
    """Perfectly correlated arms: the paired interval is far narrower than the unpaired."""
    rng = np.random.default_rng(3)
    da = rng.exponential(4, 60)
    db = da * 0.98
    paired_ci = stats.within_diff_ci(da, db, paired=True)
    unpaired = stats.within_diff_ci(da, db)
    assert paired_ci[1] - paired_ci[0] < 0.5 * (unpaired[1] - unpaired[0])


def pycls_get_filters(errs: list[float], vals: dict[str, list[float]], alpha: float = 5,
                      sample: float = 0.25, b: int = 2500) -> dict[str, list[float]]:
    """pycls.sweep.analysis.get_filters (facebookresearch/pycls, main), re-written over
    plain lists: the sweep's "error" and each metric's already log10-transformed values."""
    errs = np.array(errs)
    n, b, filters = len(errs), int(b), {}
    percentiles = [alpha / 2, 50, 100 - alpha / 2]
    n_sample = int(sample) if sample > 1 else max(1, int(n * sample))
    samples = [np.random.choice(n, n_sample) for _ in range(b)]
    samples = [s[np.argmin(errs[s])] for s in samples]
    for metric, metric_vals in vals.items():
        v = np.array(metric_vals)
        v = [v[s] for s in samples]
        v_min, v_med, v_max = tuple(np.percentile(v, percentiles))
        filters[metric] = [v_min, v_med, v_max]
    return filters


def test_good_ranges_are_pycls_get_filters(example):
    root, _ = example
    table = pd.read_csv(root / "analysis" / "good_range.csv")
    trials = trials_of(root)
    lrwd = trials[trials["study"] == "lr_wd"]
    assert len(table) == 12 * 3 and set(table["param"]) == {"lr", "wd", "lrwd"}
    for (model, opt), rows in table.groupby(["model", "optimizer"]):
        g = lrwd[(lrwd["model"] == model) & (lrwd["optimizer"] == opt)]
        g = g.sort_values(["err", "lr", "wd", "sample", "trial_id"])  # the data order
        logs = {"lr": np.log10(g["lr"]), "wd": np.log10(g["wd"])}
        logs["lrwd"] = logs["lr"] + logs["wd"]  # pycls's aug.lr_wd
        np.random.seed(0)  # the analysis draws from RandomState(0)
        ref = pycls_get_filters(list(g["err"]), {k: list(v) for k, v in logs.items()})
        for _, row in rows.iterrows():
            lo, med, hi = ref[row["param"]]
            assert row["subset_size"] == 6 and row["n"] == 24
            assert (row["lo"], row["median"], row["hi"]) == pytest.approx(
                (10**lo, 10**med, 10**hi), rel=1e-9)
            assert row["decades"] == pytest.approx(hi - lo)


def test_importance_matches_optuna(example):
    import optuna
    from optuna.distributions import FloatDistribution

    root, _ = example
    table = pd.read_csv(root / "analysis" / "importance.csv")
    trials = trials_of(root)
    row = table[(table["model"] == "vitc_4gf") & (table["optimizer"] == "adamw")].iloc[0]
    g = trials[(trials["study"] == "lr_wd") & (trials["model"] == "vitc_4gf")
               & (trials["optimizer"] == "adamw")]
    dists = {k: FloatDistribution(g[k].min(), g[k].max(), log=True) for k in ("lr", "wd")}
    study = optuna.create_study()
    study.add_trials([optuna.trial.create_trial(params={"lr": r.lr, "wd": r.wd},
                                                distributions=dists, value=r.err)
                      for r in g.itertuples()])
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # normalize=False is "experimental" in Optuna
        raw = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                      normalize=False)
    ref = optuna.importance.get_param_importances(study, evaluator=evaluator)
    assert row["evaluator"] == "PedAnovaImportanceEvaluator" and row["n_used"] == len(g)
    assert row["raw_lr"] == pytest.approx(raw["lr"]) and row["raw_wd"] == pytest.approx(
        raw["wd"])
    assert row["importance_lr"] == pytest.approx(ref["lr"])
    assert row["importance_wd"] == pytest.approx(ref["wd"])
    assert 1 / 40 <= row["p_lr"] <= 1 and 1 / 40 <= row["p_wd"] <= 1
    assert row["negligible"] == (min(row["p_lr"], row["p_wd"]) >= 0.05)
    assert len(table) == 12 and importance.MAX_TRIALS <= 1000


def test_sentences_follow_the_data():
    small = pd.Series({"size": "tiny", "optimizer": "adamw", "epochs": 5, "stem_a": "patchify",
                       "stem_b": "conv", "n_a": 6, "n_b": 6, "ks_pvalue": 0.47,
                       "dkw_a": edf.dkw_epsilon(6), "dkw_b": edf.dkw_epsilon(6),
                       "within_4_a": 0.5, "within_4_b": 0.67, "within_4_diff": 0.17,
                       "within_4_lo": -0.3, "within_4_hi": 0.6})
    text = words.ks_sentence(small)
    assert "KS p = 0.47 at n = 6 per arm" in text and "cannot tell" in text
    assert "±0.55 DKW band" in text
    assert "differ" in words.ks_sentence(small.replace(0.47, 0.001))


def _ks_null(n_a: int, n_b: int) -> np.ndarray:
    """Every value of the two-sample KS statistic under H0, one per way of splitting the
    pooled ranks (no ties) into the two arms: the exact null, by brute force."""
    from itertools import combinations

    n = n_a + n_b
    out = []
    for chosen in combinations(range(n), n_a):
        in_a = np.zeros(n)
        in_a[list(chosen)] = 1
        gap = np.cumsum(in_a) / n_a - np.cumsum(1 - in_a) / n_b
        out.append(np.abs(gap).max())
    return np.array(out)


@pytest.mark.parametrize(("n_a", "n_b"), [(3, 3), (4, 4), (6, 6), (5, 7), (6, 8)])
def test_ks_min_gap_matches_the_enumerated_null(n_a, n_b):
    """The smallest gap with p < 0.05, against all C(n_a + n_b, n_a) splits."""
    null = _ks_null(n_a, n_b)
    gaps = np.unique(np.round(null, 12))
    p = np.array([np.mean(null >= g - 1e-9) for g in gaps])
    flagged = gaps[p < 0.05]
    want = flagged.min() if len(flagged) else np.nan
    got = resolution.ks_min_gap(n_a, n_b)
    assert got == pytest.approx(want, nan_ok=True)
    assert resolution.ks_method(n_a, n_b) == "exact"
    assert (n_a, n_b) != (6, 6) or got == pytest.approx(5 / 6)


def test_ks_min_gap_asymptotic_inverts_kstwo():
    """Past 10,000 trials ks_2samp uses kstwo.sf(D, round(n_a n_b / (n_a + n_b)))."""
    n = 12_000
    gap = resolution.ks_min_gap(n, n)
    assert resolution.ks_method(n, n) == "asymp"
    assert sps.kstwo.sf(gap, n // 2) < 0.05 <= sps.kstwo.sf(gap - 1 / n, n // 2)


def _signed_rank_null(n: int) -> tuple[np.ndarray, np.ndarray]:
    """W+ and the count of positive signs for every one of the 2^n sign patterns of the
    ranks 1..n: the exact null of the signed-rank test, by brute force."""
    from itertools import product

    signs = np.array(list(product([0, 1], repeat=n)))
    return signs @ np.arange(1, n + 1), signs.sum(axis=1)


@pytest.mark.parametrize("n", range(1, 13))
def test_wilcoxon_minimum_matches_enumeration(n):
    w_plus, positive = _signed_rank_null(n)
    total = n * (n + 1) // 2
    t = np.minimum(w_plus, total - w_plus)
    p = np.minimum(1.0, 2 * np.array([np.mean(w_plus <= v) for v in t]))
    flagged = p < 0.05
    most = resolution.wilcoxon_max_minority(n)
    if not flagged.any():
        assert most is None and n <= 5
        return
    assert most == t[flagged].max()
    fewest = np.maximum(positive, n - positive)[flagged].min()
    assert resolution.fewest_same_way(n, most) == fewest
    assert (n != 6) or (most == 0 and fewest == 6)  # at 6 pairs only all-one-way counts


@pytest.mark.parametrize("n", [60, 400])
def test_wilcoxon_minimum_normal_approximation(n):
    """Past 50 pairs scipy uses the normal approximation (no continuity correction)."""
    mean, sd = n * (n + 1) / 4, np.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    t = np.arange(int(mean))
    want = t[2 * sps.norm.cdf((t - mean) / sd) < 0.05].max()
    assert resolution.wilcoxon_max_minority(n) == want


def test_resolution_csv_and_report(example):
    root, done = example
    table = pd.read_csv(root / "analysis" / "resolution.csv")
    trials = trials_of(root)
    assert len(table) == 8  # the comparisons of ks.csv and paired.csv
    assert (table[["n_a", "n_b", "n_pairs"]] == 24).all().all()
    assert table["ks_min_gap"].eq(resolution.ks_min_gap(24, 24)).all()
    assert table["dkw_a"].eq(edf.dkw_epsilon(24)).all()
    row = table[(table["model_a"] == "vitp_tiny") & (table["optimizer"] == "sgd")].iloc[0]
    errors = trials[(trials["model"] == "vitp_tiny") & (trials["study"] == "lr_wd")
                    & (trials["optimizer"] == "sgd")]["err"].to_numpy()
    rng = np.random.default_rng(0)  # Monte Carlo: best of 24 draws with replacement
    best = rng.choice(errors, (40_000, len(errors))).min(axis=1)
    assert row["best_sd_a"] == pytest.approx(best.std(), rel=0.05)
    html = (root / "analysis" / "report.html").read_text(encoding="utf-8")
    assert html.index("Answer") < html.index("What this sample size can resolve")
    assert ("at n = 24 per arm, the KS test can only detect EDF gaps of at least "
            f"{resolution.ks_min_gap(24, 24):.2f}") in done.stdout
    assert not (root / "analysis" / "larger_sweeps.csv").exists()  # every sweep analysed


def _resolution_row(n: int, n_pairs: int) -> pd.Series:
    arm = pd.DataFrame({"err": np.linspace(30, 40, n)})
    return pd.Series({"size": "tiny", "optimizer": "adamw", "epochs": 5, "study": "lr_wd",
                      "data": "synthetic", "stem_a": "patchify", "stem_b": "conv",
                      **resolution.resolution_row(arm, arm, n_pairs)})


def test_resolution_sentences_say_what_the_n_cannot_see():
    six = words.resolution_sentence(_resolution_row(6, 6))
    assert ("at n = 6 per arm, the KS test can only detect EDF gaps of at least 0.83 and a "
            "paired test needs ViT_C lower on all 6 draws") in six
    assert "differences smaller than that are not ruled out" in six and "±0.55" in six
    five = words.resolution_sentence(_resolution_row(6, 5))
    assert "no paired outcome on 5 draws reaches p < 0.05" in five
    assert "lower on at least 6 of 8 draws" in words.resolution_sentence(_resolution_row(8, 8))
    four = words.resolution_sentence(_resolution_row(4, 4))
    assert "only detect completely separated EDFs (a gap of 1)" in four
    two = words.resolution_sentence(_resolution_row(2, 0))
    assert "no EDF gap, however large" in two and "no shared draws" in two
    assert "no difference between the arms is ruled out" in two


def _sibling_sweeps(root: Path) -> Path:
    """results/ with a 6-draw sweep ``small`` and beside it: ``big`` (the same arms, 32
    draws whose first 6 are small's), ``fewer`` (4 draws), ``longer`` (other epochs, 40
    draws), ``broken`` (not a trials table) and ``notes`` (no trials.csv)."""
    big = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                              n_per_group=32, epochs=(5,), sweep="big")
    small = big[big["sample"] < 6].assign(sweep="small")
    fewer = big[big["sample"] < 4].assign(sweep="fewer")
    longer = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                 n_per_group=40, epochs=(10,), sweep="longer")
    fixture.write_results(root, pd.concat([big, small, fewer, longer]), curves=False)
    _write(root / "broken" / "trials.csv", b"a,b\n1,2\n")
    _write(root / "notes" / "readme.txt", b"hello")
    return root / "small"


def test_a_larger_sibling_sweep_is_named(tmp_path):
    small = _sibling_sweeps(tmp_path / "results")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*")}
    done = run_cli(small)
    assert done.returncode == 0, done.stderr
    larger = pd.read_csv(small / "analysis" / "larger_sweeps.csv")
    assert list(larger["folder"]) == ["../big"] and list(larger["beside"]) == ["small"]
    assert (larger[["n_a", "n_b", "n_pairs"]] == 32).all().all()
    assert larger["ks_min_gap"].iloc[0] == pytest.approx(resolution.ks_min_gap(32, 32))
    sentence = ("ViT_P vs ViT_C (tiny · AdamW · 5 ep · lr_wd on synthetic): a larger sweep of "
                "the same arms is in ../big (relative to small/) with n = 32 per arm and 32 "
                "shared draws; its n resolves EDF gaps of at least 0.34")
    assert sentence in done.stdout
    assert sentence in (small / "analysis" / "report.html").read_text(encoding="utf-8")
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*")
             if "small" not in p.parts}
    assert after == {p: t for p, t in before.items() if "small" not in p.parts}  # read only


def test_no_sibling_pointer_without_a_larger_sibling(tmp_path):
    small = _sibling_sweeps(tmp_path / "results")
    table = resolution.resolution_table(*_loaded(small))
    assert len(resolution.larger_sweeps(table, [small / "trials.csv"])) == 1
    everything = load.load_results([tmp_path / "results" / d for d in ("small", "big")])
    both = resolution.resolution_table(everything.frame, everything.keys)
    assert resolution.larger_sweeps(both, everything.files).empty  # big analysed too
    alone = tmp_path / "alone" / "small"
    alone.mkdir(parents=True)
    (alone / "trials.csv").write_bytes((small / "trials.csv").read_bytes())
    assert resolution.larger_sweeps(table, [alone / "trials.csv"]).empty


def _loaded(folder: Path) -> tuple[pd.DataFrame, list[str]]:
    results = load.load_results([folder])
    return results.frame, results.keys


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.parent.parent


def _only_running(tmp: Path) -> Path:
    trials = fixture.make_trials("lr_wd", sizes=("tiny",), n_per_group=2, n_unfinished=3)
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
                      "missing columns: sweep, study, data, trial_id"),
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
