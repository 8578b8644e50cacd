"""Sweep efficiency: wall time of a real sweep of 8 short trials against the ideal, the sum
of its trial times divided by the parallel slots.

    python bench/bench_sweep.py [--epochs 5] [--train-size 5000]   # the make-sweep trial size

The ratio is what the sweep machinery (Ray start-up, scheduling, actor start, result
and checkpoint bookkeeping) costs on top of training; the target is under 1.10.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "sweep.run", f"results={tmp}", "sweep.name=bench",
               "sweep.models=[vitp_tiny,vitc_tiny]", "sweep.optimizers=[adamw]", "sweep.n=4",
               f"schedule.epochs={args.epochs}", f"data.train_size={args.train_size}",
               "data.test_size=1000", f"ray.num_cpus={args.slots}", "analyze=false",
               "sweep.interval={lr:[1e-3,1e-1],wd:[0.01,0.5]}"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        trials = pd.read_csv(Path(tmp) / "bench" / "trials.csv")
    ideal = trials.wall_s.sum() / args.slots
    print(f"{len(trials)} trials, {args.slots} slots: sweep wall {wall:.1f} s, "
          f"sum of trial times / slots {ideal:.1f} s")
    print(f"ratio {wall / ideal:.3f} (machinery overhead {100 * (wall / ideal - 1):.1f}%; "
          "target < 10%)")


if __name__ == "__main__":
    main()
