"""The README's layout section names every module of the tree, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Layout"):text.index("\n## ", text.index("## Layout") + 1)]


def test_layout_names_every_module_and_only_modules_that_exist():
    section = layout()
    named = {name for folder, name in re.findall(r"`([\w/]*/)?(\w+)\.py`", section)
             if not folder.startswith(("tests/", "bench/"))}
    modules = {p.stem for d in ("sweep", "analysis") for p in (ROOT / d).rglob("*.py")
               if p.stem != "__init__" and p.stem != "__main__"}
    assert modules <= named, sorted(modules - named)
    assert named <= modules, sorted(named - modules)
    groups = {p.name for p in (ROOT / "conf").iterdir() if p.is_dir()}
    assert all(f"`{g}/`" in section for g in groups), groups
