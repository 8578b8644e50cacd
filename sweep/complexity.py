"""Print every model config's complexity: the paper's Table 1, computed from code.

    python -m sweep.complexity          # table
    python -m sweep.complexity --json   # [{"model", "flops", "params", "acts", ...}]
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from sweep.engine.config import choices, load_model, model_spec
from sweep.errors import UserError
from sweep.models import ViT


def complexity_rows(names: list[str] | None = None) -> list[dict]:
    """One row per model config, counted at the model's own resolution and class count."""
    rows = []
    for name in names or sorted(choices("model"), key=_table_order):
        model = load_model(name)
        spec = model_spec(model)
        cx = ViT.complexity(spec, image_size=model.image_size, num_classes=model.num_classes)
        rows.append({
            "model": name, "stem": spec.stem, "width": spec.width, "depth": spec.depth,
            "heads": spec.heads, "image_size": model.image_size,
            "flops": cx.flops, "params": cx.params, "acts": cx.acts,
        })
    return rows


def _table_order(name: str) -> tuple:
    """Paper order: by size (tiny first), ViT_P before ViT_C."""
    family, _, size = name.partition("_")
    gf = re.match(r"(\d+)gf$", size)
    return (int(gf[1]) if gf else 0, size, family != "vitp", family)


def format_table(rows: list[dict]) -> str:
    head = f"{'model':<11} {'stem':<8} {'width':>5} {'depth':>5} {'heads':>5} {'px':>4} " \
           f"{'GF':>7} {'params M':>9} {'acts M':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:<11} {r['stem']:<8} {r['width']:>5} {r['depth']:>5} {r['heads']:>5} "
            f"{r['image_size']:>4} {r['flops'] / 1e9:>7.3f} {r['params'] / 1e6:>9.2f} "
            f"{r['acts'] / 1e6:>7.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.complexity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="model config names (default: all)")
    parser.add_argument("--json", action="store_true", help="print raw counts as JSON")
    args = parser.parse_args(argv)
    try:
        rows = complexity_rows(args.models)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
