"""Sub-populations from the command line: pycls's PRE_FILTERS and SPLIT_FILTERS.

``--where 'lr>=1e-3'`` keeps the trials inside a range (every statistic is then about that
sub-range); ``--split wd=1e-4,1e-3`` or ``--split seed`` cuts the trials into named
subsets. A subset becomes one more group key, so subsets are analysed side by side and
never pooled, like studies and datasets.
"""

from __future__ import annotations

import operator
import re

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError

OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
       "<": operator.lt, ">": operator.gt}
WHERE = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|>=|==|!=|<|>)\s*(\S.*?)\s*$")
DERIVED = {"lrwd": lambda f: f["lr"] * f["wd"]}  # columns a filter may name besides the CSV's
KEY = "subset"


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A trials column (or lrwd = lr·wd) by name; AnalysisError naming the choices."""
    if name in DERIVED:
        return DERIVED[name](frame)
    if name not in frame.columns or name == "err":
        names = ", ".join(sorted([*frame.columns.drop("err", errors="ignore"), *DERIVED]))
        raise AnalysisError(f"unknown column {name!r} in a filter; use one of: {names}")
    return frame[name]


def _value(series: pd.Series, text: str) -> object:
    """``text`` as a number for a numeric column, else as it is."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        try:
            return float(text)
        except ValueError:
            raise AnalysisError(f"{text!r} is not a number; numeric columns compare with "
                                "numbers, e.g. --where 'lr>=1e-3'") from None
    if pd.api.types.is_bool_dtype(series):
        return text.strip().lower() in ("true", "1")
    return text


def where(frame: pd.DataFrame, expressions: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The trials meeting every ``COLUMN OP VALUE`` expression, and a line per filter."""
    lines = []
    for expr in expressions:
        match = WHERE.match(expr)
        if not match:
            raise AnalysisError(f"cannot read the filter {expr!r}; write COLUMN OP VALUE "
                                "with OP one of <, <=, >, >=, ==, !=, e.g. --where 'lr>=1e-3'")
        name, op, text = match.groups()
        series = column(frame, name)
        keep = OPS[op](series, _value(series, text)).fillna(False).astype(bool)
        lines.append(f"note: filter {name}{op}{text} keeps {int(keep.sum())} of "
                     f"{len(frame)} trials")
        frame = frame[keep]
    if frame.empty:
        raise AnalysisError("the filters keep no trial; widen them (--where)")
    return frame.reset_index(drop=True), lines


def _label(name: str, cuts: list[float], value: float) -> str:
    """The bin of ``value`` among ``cuts``, e.g. 'lr<0.01', '0.01≤lr<0.1', 'lr≥0.1'."""
    i = int(np.searchsorted(cuts, value, side="right"))
    if i == 0:
        return f"{name}<{cuts[0]:g}"
    if i == len(cuts):
        return f"{name}≥{cuts[-1]:g}"
    return f"{cuts[i - 1]:g}≤{name}<{cuts[i]:g}"


def split(frame: pd.DataFrame, spec: str) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with a ``subset`` column from ``COLUMN`` (one subset per value) or
    ``COLUMN=CUT,CUT,...`` (bins between the cuts), and a line naming the subsets."""
    name, _, cuts_text = spec.partition("=")
    series = column(frame, name.strip())
    if cuts_text:
        try:
            cuts = sorted(float(c) for c in cuts_text.split(",") if c.strip())
        except ValueError:
            raise AnalysisError(f"cannot read the cuts of --split {spec!r}; write "
                                "COLUMN=CUT,CUT, e.g. --split wd=1e-4,1e-3") from None
        labels = series.map(lambda v: _label(name.strip(), cuts, v))
    else:
        labels = name.strip() + "=" + series.astype(str)
    counts = labels.value_counts().sort_index()
    line = "note: split by " + spec + ": " + ", ".join(f"{k} ({v})" for k, v in counts.items())
    return frame.assign(**{KEY: labels.to_numpy()}), [line]
