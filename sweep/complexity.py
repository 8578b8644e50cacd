"""Print every model config's complexity: the paper's Table 1, computed from code.

    python -m sweep.complexity          # table
    python -m sweep.complexity --json   # [{"model", "flops", "params", "acts", ...}]
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from sweep.engine.config import architecture, choices, load_model
from sweep.errors import UserError
from sweep.models import RegNetSpec, model_class


def complexity_rows(names: list[str] | None = None) -> list[dict]:
    """One row per model config, counted at the model's own resolution and class count."""
    rows = []
    for name in names or choices("model"):
        model = load_model(name)
        spec = architecture(model)
        cx = model_class(spec).complexity(spec, image_size=model.image_size,
                                          num_classes=model.num_classes)
        # The family size: a CNN's config names the ViT size it is compared at.
        size = model.get("size") or name.partition("_")[2]
        row = {"model": name, "size": size, "stem": spec.stem, "width": None,
               "depth": spec.depth,
               "heads": None, "image_size": model.image_size,
               "flops": cx.flops, "params": cx.params, "acts": cx.acts}
        if isinstance(spec, RegNetSpec):  # CNN: blocks in all; per stage (width, depth, group)
            row["stages"] = [list(s) for s in spec.stages()]
        else:
            row.update(width=spec.width, heads=spec.heads)
        rows.append(row)
    return rows if names else sorted(rows, key=_table_order)


def _table_order(row: dict) -> tuple:
    """Paper order: by family size (tiny first), ViT_P, then ViT_C, then the CNN."""
    m = re.match(r"([\d.]+)gf$", row["size"])
    family = row["model"].partition("_")[0]
    return (float(m[1]) if m else 0.0, row["size"], {"vitp": 0, "vitc": 1}.get(family, 2),
            row["flops"])


def format_table(rows: list[dict]) -> str:
    head = f"{'model':<13} {'stem':<8} {'width':>5} {'depth':>5} {'heads':>5} {'px':>4} " \
           f"{'GF':>7} {'params M':>9} {'acts M':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:<13} {r['stem']:<8} {r['width'] or '-':>5} {r['depth']:>5} "
            f"{r['heads'] or '-':>5} "
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
