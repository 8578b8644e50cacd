"""Train one trial from the command line, with Hydra overrides.

    python -m sweep.train model=vitc_tiny optimizer=sgd optimizer.lr=0.5 schedule.epochs=3 out=DIR
    python -m sweep.train model=vitc_mini data=fashion_mnist tuned=results/fmnist-lr_wd
    python -m sweep.train --cfg [overrides]     # print the composed config and exit

Writes DIR/result.json (the result, the resolved config and the per-epoch history) and
DIR/checkpoint.pt; running the same command again resumes from the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from sweep.checks import check_writable
from sweep.engine import tuned
from sweep.engine.checkpoint import atomic_write_bytes
from sweep.engine.config import compose
from sweep.engine.trainer import config_dict, run_trial
from sweep.errors import UserError


def write_json(path: Path, obj: dict) -> None:
    atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. optimizer=sgd")
    parser.add_argument("--cfg", action="store_true", help="print the composed config and exit")
    args = parser.parse_args(argv)
    try:
        cfg = compose("train", args.overrides)
        if args.cfg:
            print(OmegaConf.to_yaml(cfg, resolve=True))
            return 0
        out = Path(cfg.out)
        check_writable(out, "out")
        result = run_trial(tuned.resolve(cfg), workdir=out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs are in the checkpoint; run the same command "
              "to resume", file=sys.stderr)
        return 130
    history = result.pop("history")
    write_json(out / "result.json", {**result, "config": config_dict(cfg), "history": history})
    state = "diverged" if result["diverged"] else "done"
    print(f"{state}: error {result['error']:.2f}%  ema error {result['ema_error']:.2f}%  "
          f"best {result['best_error']:.2f}%  ({result['wall_s']:.0f} s) -> {out}/result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
