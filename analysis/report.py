"""One self-contained ``report.html``: the answer first (the Δ-EDF figure and one verdict
per comparison), then figures with their findings, with the full tables and the
definitions folded away (``<details>``). Figures are embedded as base64 PNGs.

A person should be able to mail the report or attach it to an issue, so nothing in it
points to other files. The sections' words are in ``report_text``.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import words

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
details { margin: 0.4em 0; } summary { cursor: pointer; color: #345; }
.verdicts li { margin: 0.3em 0; }
"""
# Columns printed with 3 significant digits (tiny or log-scale values), as is any float
# column whose non-zero values are all below SMALL; others get 3 decimals.
SIGNIFICANT = ("lr", "wd", "pvalue", "p_")
SMALL = 0.1


@dataclass
class Section:
    """A heading with an optional explanation (folded), findings, figure (a PNG file to
    embed) and table (folded); ``significant`` names columns printed to 3 significant
    digits."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figure: Path | None = None
    findings: list[str] = field(default_factory=list)
    significant: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.figure is None and (self.table is None or self.table.empty)


def format_table(table: pd.DataFrame, significant: tuple[str, ...] = ()) -> pd.DataFrame:
    """Numbers as short strings for people: p-values, lr/wd, small values and the columns
    named in ``significant`` to 3 significant digits, other floats to 3 decimals, integers
    as they are (a missing one as an empty cell)."""
    out = table.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.is_integer_dtype(values) and values.hasnans:
            out[col] = values.map(lambda v: "" if pd.isna(v) else str(v))
        if not pd.api.types.is_float_dtype(values):
            continue
        small = values[values.notna() & (values != 0)].abs()
        if (col in significant or any(part in col for part in SIGNIFICANT)
                or (len(small) and small.max() < SMALL)):
            out[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
        else:
            out[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return out


def _image(path: Path) -> str:
    """An <img> carrying the PNG's bytes, so the report needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _folded(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def _section(section: Section) -> list[str]:
    """One section: heading, findings, figure, then the folded definitions and table."""
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    if section.findings:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in section.findings)
        parts.append(f'<ul class="findings">{items}</ul>')
    if section.figure is not None:
        parts.append(_image(section.figure))
    if section.text:
        parts.append(_folded("What the numbers mean",
                             f'<p class="note">{html.escape(section.text)}</p>'))
    if section.table is not None and not section.table.empty:
        table = format_table(section.table, section.significant).to_html(index=False,
                                                                         border=0)
        parts.append(_folded(f"Table ({len(section.table)} rows)",
                             f'<div class="scroll">{table}</div>'))
    return parts


def render(title: str, meta: list[str], messages: list[str], sections: list[Section],
           answer: list[str] | None = None, answer_figure: Path | None = None) -> str:
    """The report as one HTML string: the answer (figure and verdicts), then sections."""
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<p class="warn">{html.escape(line)}</p>' for line in messages]
    if answer_figure is not None or answer:
        parts.append("<h2>Answer: stability per comparison</h2>")
        if answer_figure is not None:
            parts.append(_image(answer_figure))
        if answer:
            items = "".join(f"<li>{html.escape(line)}</li>" for line in answer)
            parts.append(f'<ul class="verdicts">{items}</ul>')
    for section in sections:
        parts += _section(section)
    parts.append(_folded("Where these numbers come from", "".join(
        f'<p class="note">{html.escape(line)}</p>' for line in meta)))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, title: str, meta: list[str], messages: list[str],
                 sections: list[Section], answer: list[str] | None = None,
                 answer_figure: Path | None = None) -> Path:
    """Write ``render(...)`` to ``path`` as UTF-8."""
    path.write_text(render(title, meta, messages, sections, answer, answer_figure),
                    encoding="utf-8")
    return path


def title(frame: pd.DataFrame) -> str:
    """The report's title, naming the stems the results hold (no CNN without one)."""
    from analysis import stats

    stems = [s for s in stats.STEM_ORDER if s in set(frame["stem"])]
    stems += sorted(set(frame["stem"]) - set(stems))
    names = [stats.stem_name(s) for s in stems]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{joined} stability report"


def _tables(tables: dict, *names: str) -> list[pd.DataFrame]:
    return [tables.get(name, pd.DataFrame()) for name in names]


def _match(table: pd.DataFrame, row: pd.Series, cols: list[str]) -> pd.Series | None:
    """The row of ``table`` agreeing with ``row`` on ``cols``, or None."""
    if table.empty:
        return None
    hit = table[(table[cols] == row[cols]).all(axis=1)]
    return hit.iloc[0] if len(hit) else None


def verdicts(tables: dict) -> list[str]:
    """One short verdict per comparison of the resolution table (every compared pair)."""
    res, ks, paired = _tables(tables, "resolution", "ks", "paired")
    if res.empty:
        return []
    cols = [c for c in res.columns[: list(res.columns).index("n_a")]]
    return [words.verdict(r, _match(ks, r, cols), _match(paired, r, cols))
            for _, r in res.iterrows()]


def resolution_findings(tables: dict) -> list[str]:
    """What each comparison's n can resolve, then the larger sibling sweeps, in words."""
    resolution, larger = _tables(tables, "resolution", "larger_sweeps")
    lines = [words.resolution_sentence(r) for _, r in resolution.iterrows()]
    return lines + [words.larger_sentence(r) for _, r in larger.iterrows()]


def findings(tables: dict) -> list[str]:
    """The comparisons in words: the validity gate, what the n can resolve, unpaired KS,
    then paired on shared draws."""
    from analysis import headroom

    ks, paired, room = _tables(tables, "ks", "paired", "headroom")
    lines = [headroom.gate_sentence(r) for _, r in room.iterrows()]
    lines += resolution_findings(tables) + [words.ks_sentence(r) for _, r in ks.iterrows()]
    return lines + [words.paired_sentence(r) for _, r in paired.iterrows()]


def sections(tables: dict, pngs: dict, keys: list[str]) -> list[Section]:
    """The report's sections in reading order (after the answer); studies absent from the
    results drop out."""
    from analysis import report_text

    return [s for s in report_text.sections(tables, pngs, keys) if not s.empty]
