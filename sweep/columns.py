"""The results tables' vocabulary, in one place: the columns of ``trials.csv`` and
``curves.csv``, the trial statuses and the study names. The results writer, the analysis
loader and the test fixtures all import it, so a column is added here once."""

from __future__ import annotations

# Studies a sweep can run (``sweep.study``); ``study`` in every trials.csv row.
STUDIES = ("lr_wd", "optimizer", "schedule", "tune")

# Where a trial is in its life; "stopped" is an early stop (ASHA in the tune study).
STATUSES = ("pending", "running", "done", "stopped", "failed")

# One row per trial. ``study`` and ``data`` say which experiment a row belongs to (the
# analysis never pools two of either); ``sample`` is the paired draw's index k in a
# sampled study (empty in grid studies); ``size`` is the model family's size from its
# config (e.g. ``4gf``, ``tiny``), which puts ViT_P and ViT_C of a pair in one panel;
# ``chance_error`` is the dataset's guessing error (%), the ceiling a Δ is measured
# against (absent from tables written before it was added).
TRIAL_COLUMNS = ["sweep", "study", "data", "trial_id", "sample", "model", "size", "stem",
                 "gflops", "params", "optimizer", "lr", "wd", "epochs", "batch_size", "seed",
                 "status", "diverged", "error", "ema_error", "best_error", "chance_error",
                 "wall_s"]

# One row per trial-epoch; ``lr`` is that epoch's actual (batch-scaled, scheduled) lr.
CURVE_COLUMNS = ["sweep", "trial_id", "epoch", "train_loss", "error", "ema_error", "lr",
                 "images_per_s", "elapsed_s"]
