"""The analysis views added for researchers (training curves, pycls's value views,
sweeps side by side, sub-populations) and the estimators' robustness: every table the
same whatever the row order, exact Wilcoxon, Δ on the errors' grid, hand-edited files,
figures whose text stays inside the canvas, and the words that must not mislead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from analysis import cli, curves, edf, fixture, load, paired, words

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "results" / "example"


def run(*args: str | Path, module: str = "analysis") -> subprocess.CompletedProcess:
    """The command as a user runs it, from the repository root."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def tied_sweep(root: Path, n: int = 16) -> Path:
    """One small lr/wd sweep (tiny, AdamW, ViT_P and ViT_C) with errors on a 0.5-point
    grid, so trials tie at the best, at the good-range cut and in the paired differences."""
    trials = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                 n_per_group=n, sweep="tied")
    for col in ("best_error", "ema_error", "error"):
        trials[col] = (trials[col] * 2).round() / 2
    fixture.write_results(root, trials)
    return root / "tied"


def test_every_table_is_the_same_when_the_rows_are_shuffled(tmp_path):
    sweep = tied_sweep(tmp_path / "a")
    trials = pd.read_csv(sweep / "trials.csv")
    assert trials.duplicated(["model", "best_error"]).any()  # ties, as the 83.1s
    shuffled = tmp_path / "b" / "tied"
    shuffled.mkdir(parents=True)
    trials.sample(frac=1, random_state=7).to_csv(shuffled / "trials.csv", index=False)
    curve_rows = pd.read_csv(sweep / "curves.csv")
    curve_rows.sample(frac=1, random_state=3).to_csv(shuffled / "curves.csv", index=False)
    for folder in (sweep, shuffled):
        done = run(folder, "--out", folder / "out")
        assert done.returncode == 0, done.stderr
    tables = sorted(p.name for p in (sweep / "out").glob("*.csv"))
    assert {"good_range.csv", "ks.csv", "paired.csv", "summary.csv", "stalls.csv"} <= set(
        tables)
    for name in tables:
        assert (sweep / "out" / name).read_bytes() == (shuffled / "out" / name).read_bytes(), \
            name


def test_wilcoxon_is_exact_and_counts_ties_once():
    """32 of 32 draws one way: 2 / 2^32, with tied magnitudes and float noise."""
    diff = -np.r_[np.arange(1, 31) / 10, 3.2, 3.2000000000000028]
    on_grid = edf.on_grid(diff, np.r_[83.1, 70.5])
    assert len(np.unique(np.abs(on_grid))) == 31  # one tie, not two ranks
    _, p = paired.wilcoxon_p(on_grid)
    assert p == pytest.approx(2 / 2**32) and f"{p:.2g}" == "4.7e-10"


def test_delta_on_the_grid_counts_exactly_best_plus_k_as_not_within():
    errors = np.array([60.1, 64.1, 64.2, 66.0, 68.1])  # 64.1 - 60.1 is 3.99999... in floats
    assert (errors[1] - errors[0]) < 4 and edf.decimals(errors) == 1
    frame = pd.DataFrame({"g": 0, "err": errors})
    delta = edf.with_delta(frame, ["g"])["delta"].to_numpy()
    assert delta[1] == 4.0 and edf.within(delta, 4) == pytest.approx(1 / 5)
    assert edf.within(delta, 8) == pytest.approx(4 / 5)  # 68.1 = best + 8: not within 8


def test_hand_edited_trials_are_analysed_in_bounded_time(tmp_path):
    """A sample index repeated within an arm (a merged file) and repeated trial ids: the
    paired join must not multiply the copies, and a warning counts what was set aside."""
    trials = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                 n_per_group=40, sweep="merged")
    copies = pd.concat([trials.assign(trial_id=trials["trial_id"] + f"c{i}")
                        for i in range(25)])  # every sample 26 times per arm
    repeated = trials.head(5)
    fixture.write_results(tmp_path, pd.concat([trials, copies, repeated]), curves=False)
    done = run(tmp_path / "merged", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "5 trial row(s) repeat an earlier (sweep, trial_id)" in done.stderr
    assert "2080 trial(s) share a sample index with another trial of their arm" in done.stderr
    table = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert (table["n"] == 40 * 26).all()
    assert not (tmp_path / "out" / "paired.csv").exists()  # nothing left to pair


def test_training_curves_tell_stalls_from_divergence(tmp_path):
    trials = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                 n_per_group=12)
    trials["chance_error"] = 90.0  # 10 classes: ln 10
    rows = fixture.make_curves(trials)
    stalled = trials.loc[trials["model"] == "vitp_tiny", "trial_id"].head(5)
    rows.loc[rows["trial_id"].isin(stalled), "train_loss"] = np.log(10) + 0.01
    frame = load.load_results(fixture.write_results(tmp_path, trials, curves=False)).frame
    keys = load.STUDY_KEYS
    table = curves.stall_table(frame, keys, rows).set_index("model")
    assert table.loc["vitp_tiny", "stalled"] == 5 - int(
        frame[frame["trial_id"].isin(stalled)]["diverged"].sum())
    assert table.loc["vitc_tiny", "stalled"] == 0
    assert table.loc["vitp_tiny", "chance_loss"] == pytest.approx(np.log(10))
    long = curves.curve_table(frame, keys, rows)
    assert set(long["role"]) == {"best", "median", "worst"}
    best = long[(long["model"] == "vitc_tiny") & (long["role"] == "best")]
    arm = frame[frame["model"] == "vitc_tiny"]
    assert best["err"].iloc[0] == arm["err"].min() and len(best) == 50  # every epoch


def test_compare_draws_sweeps_side_by_side(tmp_path):
    small = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                n_per_group=12, sweep="short", epochs=(50,))
    longer = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                 n_per_group=20, sweep="long", epochs=(100,), seed=4)
    fixture.write_results(tmp_path / "r", pd.concat([small, longer]), curves=False)
    done = run(tmp_path / "r" / "short", tmp_path / "r" / "long", "--compare", "--out",
               tmp_path / "out", module="analysis.edf")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "out" / "compare.csv")
    assert list(table["source"]) == ["short", "long", "short", "long"]  # per arm, in order
    assert list(table["n"]) == [12, 20, 12, 20]  # never pooled
    assert table["ks_pvalue_vs_first"].isna().tolist() == [True, False, True, False]
    assert (tmp_path / "out" / "compare.png").stat().st_size > 10_000
    assert "compare.html" in {p.name for p in (tmp_path / "out").iterdir()}
    one = run(tmp_path / "r" / "short", "--compare")
    assert one.returncode == 2 and "needs two or more" in one.stderr


def test_where_and_split_make_sub_populations(tmp_path):
    trials = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                 n_per_group=24, sweep="s")
    fixture.write_results(tmp_path / "r", trials, curves=False)
    done = run(tmp_path / "r", "--where", "lr>=1e-3", "--split", "wd=0.1",
               "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    kept = trials[trials["lr"] >= 1e-3]
    assert f"filter lr>=1e-3 keeps {len(kept)} of {len(trials)} trials" in done.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert set(summary["subset"]) == {"wd<0.1", "wd≥0.1"}
    n = summary.set_index(["model", "subset"])["n"]
    vitp = kept[kept["model"] == "vitp_tiny"]
    assert n["vitp_tiny", "wd<0.1"] == int((vitp["wd"] < 0.1).sum())
    ks = pd.read_csv(tmp_path / "out" / "ks.csv")
    assert len(ks) == 2 and set(ks["subset"]) == {"wd<0.1", "wd≥0.1"}  # within a subset
    bad = run(tmp_path / "r", "--where", "nope>1")
    assert bad.returncode == 2 and "unknown column 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_python_m_analysis_and_analysis_edf_load_edf_once():
    """``python -m analysis.edf`` runs edf.py as ``__main__``; the command line's own
    imports must reuse it rather than load analysis/edf.py a second time."""
    code = ("import runpy, sys\n"
            "sys.argv = ['analysis.edf', 'no-such-folder']\n"
            "try:\n    runpy.run_module('analysis.edf', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n    assert exc.code == 2\n"
            "import analysis.stats\n"
            "assert sys.modules['analysis.edf'].__name__ == '__main__'  # one copy\n"
            "assert analysis.stats.E is sys.modules['analysis.edf']\n")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for module in ("analysis", "analysis.edf"):
        helped = run("--help", module=module)
        assert helped.returncode == 0 and "--compare" in helped.stdout


def _drawn_texts(fig) -> list:
    """The texts a draw of ``fig`` puts on the canvas: tick labels only of the ticks
    inside the view (matplotlib keeps others as hidden spares), every other visible
    text with something in it."""
    from matplotlib.text import Text

    fig.draw_without_rendering()
    ticks, drawn = set(), set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((id(tick.label1), id(tick.label2)))
            for tick in axis._update_ticks():
                drawn.update(id(t) for t in (tick.label1, tick.label2) if t.get_visible())
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
            and (id(t) not in ticks or id(t) in drawn)]


def _texts_outside(fig) -> list[str]:
    """Every visible, non-empty text of ``fig`` whose drawn extent leaves the canvas."""
    texts = _drawn_texts(fig)
    renderer = fig._get_renderer()
    box = fig.bbox
    out = []
    for text in texts:
        ext = text.get_window_extent(renderer)
        if (ext.x0 < box.x0 - 1 or ext.y0 < box.y0 - 1 or ext.x1 > box.x1 + 1
                or ext.y1 > box.y1 + 1):
            out.append(text.get_text()[:60])
    return out


def _figures(folder: Path) -> dict:
    """Every figure the command draws for ``folder``, built in this process."""
    from analysis import plots

    results = load.load_results([folder])
    frame, keys = results.frame, results.keys
    first = cli.first_tables(frame, keys, curves.read_curves(results.files))
    plots.theme()
    return {name: job() for name, job in cli.figure_jobs(frame, keys, first).items()}


@pytest.mark.parametrize("where", ["fixture", "example"])
def test_no_figure_text_leaves_its_canvas(where, tmp_path):
    if where == "fixture":
        fixture.write_example(tmp_path, n_per_group=8)
        folder = tmp_path
    else:
        if not (EXAMPLE / "trials.csv").exists():
            pytest.skip("no results/example")
        folder = EXAMPLE
    figures = {k: f for k, f in _figures(folder).items() if f is not None}
    assert "edf_delta" in figures and "good_range" in figures
    assert where == "example" or len(figures) == len(cli.FIGURES)
    for name, fig in figures.items():
        assert _texts_outside(fig) == [], name


def test_words_that_must_not_mislead():
    zero = words.within_ci(0.0, 0.0, 0.0, "paired 95% CI")
    assert "[+0.00, +0.00]" not in zero and "zero-width interval" in zero
    assert "touch at 70.5" in words.overlap_words(70.5, 74.2, 66.4, 70.5)
    assert "do not overlap" in words.overlap_words(70.6, 74.2, 66.4, 70.5)
    assert "overlap: not resolved" in words.overlap_words(70.0, 74.2, 66.4, 70.5)
    from analysis import report

    table = report.format_table(pd.DataFrame({"lo": [0.000123, 0.5]}), ("lo",))
    assert table["lo"].tolist() == ["0.000123", "0.5"]
    vits = pd.DataFrame({"stem": ["patchify", "conv"]})
    assert report.title(vits) == "ViT_P and ViT_C stability report"


def test_room_to_chance_and_the_validity_gate(tmp_path):
    """Δ as a share of chance − best, and the gate, recomputed by hand; the lr interval
    comes from the sweep's config.yaml, and --max-best adds the best-error check."""
    trials = fixture.make_trials("lr_wd", sizes=("tiny",), optimizers=("adamw",),
                                 n_per_group=16, sweep="room")
    folder = fixture.write_results(tmp_path, trials)[0].parent
    top = trials.loc[trials.groupby("model")["best_error"].idxmin()].set_index("model")
    lo, hi = float(top["lr"].min()) / 1.01, float(trials["lr"].max()) * 4  # one best at an edge
    (folder / "config.yaml").write_text(
        f"sweep:\n  name: room\n  search:\n    adamw: {{lr: [{lo}, {hi}], wd: [0.01, 0.1]}}\n")
    max_best = float(top["best_error"].mean())  # between the two arms' bests
    done = run(folder, "--out", tmp_path / "out", "--max-best", max_best)
    assert done.returncode == 0, done.stderr
    room = pd.read_csv(tmp_path / "out" / "headroom.csv").set_index("model")
    ks = pd.read_csv(tmp_path / "out" / "ks.csv").iloc[0]
    norm = {}
    for model, g in trials.groupby("model"):
        best = g["best_error"].min()
        chance = fixture.CHANCE_ERROR
        share = (g["best_error"] - best).round(6) / (chance - best)
        norm[model] = share.to_numpy()
        row = room.loc[model]
        assert row["room"] == pytest.approx(chance - best)
        assert row["median_delta_norm"] == pytest.approx(np.median(share))
        assert row["within_norm_0.25"] == pytest.approx(np.mean(share < 0.25))
        assert row["auc_norm"] == pytest.approx(np.mean(1 - np.minimum(share, 1)))
        assert row["near_chance_frac"] == pytest.approx(np.mean(g["best_error"] >= chance - 5))
        position = np.log(top.loc[model, "lr"] / lo) / np.log(hi / lo)
        assert row["best_lr_position"] == pytest.approx(position)
        assert row["lr_source"] == "config"
        assert bool(row["lr_ok"]) == (0.1 <= position <= 0.9)
        assert bool(row["best_ok"]) == (best <= max_best)
        assert bool(row["gate"]) == (row["lr_ok"] and row["near_ok"] and row["best_ok"])
    assert not room["gate"].all()
    from scipy import stats

    assert ks["ks_pvalue_norm"] == pytest.approx(
        stats.ks_2samp(norm[ks["model_a"]], norm[ks["model_b"]]).pvalue)
    assert "Validity gate FAILS for" in done.stdout
    assert (tmp_path / "out" / "edf_delta_norm.png").exists()
    (folder / "config.yaml").unlink()  # an older record: the trials' own lr range
    assert run(folder, "--out", tmp_path / "old").returncode == 0
    assert set(pd.read_csv(tmp_path / "old" / "headroom.csv")["lr_source"]) == {"observed"}
    bad = run(folder, "--max-best", "140")
    assert bad.returncode == 2 and "--max-best 140" in bad.stderr
    assert "Traceback" not in bad.stderr
