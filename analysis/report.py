"""One self-contained ``report.html``: tables and figures (base64 PNGs) in a single file.

A person should be able to mail the report or attach it to an issue, so nothing in it
points to other files.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 0.9em; } .warn { color: #a15c00; }
.scroll { max-height: 32em; overflow: auto; }
"""
# Columns printed with 3 significant digits (tiny or log-scale values); others get 3 decimals.
SIGNIFICANT = ("lr", "wd", "pvalue")


@dataclass
class Section:
    """A heading with an optional explanation, table and figure (a PNG file to embed)."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figure: Path | None = None


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers as short strings for people: p-values and lr/wd to 3 significant digits,
    other floats to 3 decimals, integers as they are."""
    out = table.copy()
    for col in out.columns:
        values = out[col]
        if not pd.api.types.is_float_dtype(values):
            continue
        if any(part in col for part in SIGNIFICANT):
            out[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
        else:
            out[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return out


def _image(path: Path) -> str:
    """An <img> carrying the PNG's bytes, so the report needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def render(title: str, meta: list[str], messages: list[str], sections: list[Section]) -> str:
    """The report as one HTML string."""
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<p class="note">{html.escape(line)}</p>' for line in meta]
    parts += [f'<p class="warn">{html.escape(line)}</p>' for line in messages]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f'<p class="note">{html.escape(section.text)}</p>')
        if section.table is not None and not section.table.empty:
            table = format_table(section.table).to_html(index=False, border=0)
            parts.append(f'<div class="scroll">{table}</div>')
        if section.figure is not None:
            parts.append(_image(section.figure))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, title: str, meta: list[str], messages: list[str],
                 sections: list[Section]) -> Path:
    """Write ``render(...)`` to ``path`` as UTF-8."""
    path.write_text(render(title, meta, messages, sections), encoding="utf-8")
    return path
