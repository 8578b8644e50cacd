"""Benchmark: ``python -m analysis`` on a 100,000-row results folder (target: 10 s).

Run ``.venv/bin/python bench/bench_analysis.py [--rows N] [--repeat R]``. It writes a fake
lr/wd study (2 sizes x 2 stems x 2 optimizers, paired samples, some diverged, 0.1% of
rows unfinished) into a temporary folder, times the command end to end (interpreter start, imports,
statistics, figures and report included) R times, and prints the best wall time, its
ratio to the target and the CPU time (other jobs on the machine inflate wall time, not
CPU time). Exits 1 when the best run misses the target.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 10.0
GROUPS = 8  # 2 sizes x 2 stems x 2 optimizers in the fixture


def child_cpu_s() -> float:
    """User + system CPU seconds of all finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    """Generate the results, time the command, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="trial rows (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best counts (3)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from analysis import fixture

    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        per_group = (args.rows - args.rows // 1000) // GROUPS
        trials = fixture.make_trials("lr_wd", n_per_group=per_group, sweep="bench",
                                     n_unfinished=args.rows - GROUPS * per_group)
        fixture.write_results(tmp, trials, curves=False)
        for _ in range(args.repeat):
            cpu, start = child_cpu_s(), time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "analysis", tmp], cwd=root,
                                  capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            cpus.append(child_cpu_s() - cpu)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return done.returncode
    best = min(walls)
    runs = ", ".join(f"{w:.2f}" for w in walls)
    print(f"python -m analysis on {len(trials):,} trial rows: {best:.2f} s best of "
          f"{args.repeat} ({runs}); {best / TARGET_S:.2f} x the {TARGET_S:g} s target; "
          f"CPU {min(cpus):.2f} s")
    return 0 if best < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
