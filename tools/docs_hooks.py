"""MkDocs hooks (``mkdocs.yml``): the site is ``docs/`` plus what lives elsewhere.

- Each committed study's page, ``results/<study>/README.md``, with its figures and
  report, joins the site at ``results/<study>/`` (the pages stay beside their data, where
  GitHub shows them too).
- The configuration reference is generated from the schemas at every build
  (``tools/config_reference.py``), so it cannot drift from the code.
- Links are written between repository paths (``docs/sweeps.md`` links
  ``../results/fmnist-lr_wd/README.md``), so they work on GitHub; here each is rewritten
  to the page's place in the site. A link to a file the site does not hold is left as it
  is, and ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
STUDY_FILES = ("README.md", "analysis/*.png", "analysis/*.csv", "analysis/report.html")
REFERENCE = "configuration.md"
LINK = re.compile(r"(\]\(|<img src=\"|href=\")(?P<target>[^)\"\s#]*)(?P<rest>[^)\"\s]*)")


def on_files(files: Files, config) -> Files:
    sys.path.insert(0, str(Path(__file__).parent))
    import config_reference

    files.append(File.generated(config, REFERENCE, content=config_reference.render()))
    for study in sorted((ROOT / "results").glob("*/README.md")):
        for pattern in STUDY_FILES:
            for path in sorted(study.parent.glob(pattern)):
                uri = path.relative_to(ROOT).as_posix()
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def repo_path(src_uri: str) -> str:
    """Where a page of the site lives in the repository."""
    return src_uri if src_uri.startswith("results/") else f"docs/{src_uri}"


def site_path(path: str) -> str | None:
    """Where a repository file lives in the site, if it is there."""
    if path.startswith("docs/"):
        return path.removeprefix("docs/")
    return path if path.startswith("results/") else None


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    here = posixpath.dirname(repo_path(page.file.src_uri))
    site_here = posixpath.dirname(page.file.src_uri)

    def rewrite(m: re.Match) -> str:
        target = m["target"]
        if not target or "://" in target or target.startswith(("/", "mailto:")):
            return m[0]
        found = site_path(posixpath.normpath(posixpath.join(here, target)))
        if found is None:
            return m[0]  # not in the site: --strict names it
        return m[1] + posixpath.relpath(found, site_here or ".") + m["rest"]

    return LINK.sub(rewrite, markdown)
