"""The documentation stays true to the code: the site builds with ``--strict`` (no broken
link, anchor or missing page), every command in a fenced block of the README, the docs
and the study pages names a make target, module, option and config keys that exist (each
sweep is composed and planned as its dry run would, without running), the configuration
reference lists every key of the schemas, and the architecture page names every module."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "results").glob("*/README.md"))]
# A fenced block of commands: no language, or a shell's (```text is a picture).
FENCE = re.compile(r"^```(?:|sh|bash|console|shell)\n(.*?)^```", re.S | re.M)
PYTHON = ("python", ".venv/bin/python", "python3")


def commands(text: str) -> list[list[str]]:
    """The make and python command lines of a page's fenced blocks, as argv lists
    (continuation lines joined, prompts and comments dropped)."""
    found = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.split(" ", 1)[0] in ("make", *PYTHON):
                found.append(shlex.split(line, comments=True))
    return found


def all_commands() -> list[tuple[str, list[str]]]:
    return [(page.relative_to(ROOT).as_posix(), argv)
            for page in PAGES for argv in commands(page.read_text())]


@cache
def make_lines(argv: tuple[str, ...]) -> list[list[str]]:
    """What ``make`` would run for these arguments (``make -n``, the venv taken as
    installed), as argv lists; a target that does not exist fails here."""
    done = subprocess.run(["make", "-n", "-o", ".venv/.installed", *argv[1:]], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"`{shlex.join(argv)}`: {done.stderr.strip()}"
    return [shlex.split(line) for line in done.stdout.splitlines()
            if line.strip() and not line.startswith("make")]


@cache
def python_commands() -> list[tuple[str, list[str]]]:
    """Every python command of the pages, the make targets' own included, each once."""
    found, seen = [], set()
    for page, argv in all_commands():
        for line in (make_lines(tuple(argv)) if argv[0] == "make" else [argv]):
            key = tuple(line[1:])  # python and .venv/bin/python alike
            if Path(line[0]).name.startswith("python") and key not in seen:
                seen.add(key)
                found.append((page, line))
    return found


@cache
def help_text(module: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"python -m {module} --help: {done.stderr.strip()}"
    return done.stdout


def test_the_site_builds_with_strict(tmp_path):
    """mkdocs.yml's nav, every link and anchor of docs/ and the study pages (about 10 s)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "configuration" / "index.html").exists()
    assert (tmp_path / "site" / "results" / "fmnist-lr_wd" / "analysis" / "edf_delta.png").exists()


def test_the_readme_links_files_that_exist():
    """The README is read on GitHub, outside the site: its relative links must resolve."""
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)", text)
    assert targets
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing, missing


def test_every_committed_study_has_its_page():
    studies = {p.name for p in (ROOT / "results").iterdir() if (p / "trials.csv").exists()}
    assert studies
    assert {s for s in studies if not (ROOT / "results" / s / "README.md").exists()} == set()


def test_make_commands_name_existing_targets():
    made = [argv for _, argv in all_commands() if argv[0] == "make"]
    assert len(made) >= 20
    for argv in made:
        make_lines(tuple(argv))  # `make -n` fails on an unknown target


def test_python_commands_name_modules_and_options_that_exist():
    found = python_commands()
    assert len(found) >= 30
    for page, argv in found:
        where = f"{page}: `{shlex.join(argv)}`"
        if "-m" not in argv:  # a script: bench/bench_cpu.py
            assert all((ROOT / a).exists() for a in argv[1:] if a.endswith(".py")), where
            continue
        module = argv[argv.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, where
        if module.startswith(("sweep", "analysis")):
            for option in (a.split("=")[0] for a in argv if a.startswith("--")):
                assert option in help_text(module), f"{where}: no option {option}"


def test_sweep_and_trial_commands_compose_and_plan():
    """Each sweep's overrides composed and its trials planned, as its dry run does (data
    that is not here still composes); each trial's overrides composed."""
    from sweep.driver.studies import plan_study
    from sweep.engine.config import compose
    from sweep.run import compose_sweep

    checked = 0
    for page, argv in python_commands():
        if "-m" not in argv:
            continue
        module, args = argv[argv.index("-m") + 1], argv[argv.index("-m") + 2:]
        overrides = [a for a in args if not a.startswith("--")]
        where = f"{page}: `{shlex.join(argv)}`"
        try:
            if module == "sweep.run":
                assert plan_study(compose_sweep(overrides)), where
            elif module == "sweep.train":
                compose("train", overrides)
            else:
                continue
        except Exception as e:  # noqa: BLE001  (the failing page and command, then why)
            pytest.fail(f"{where}: {e}")
        checked += 1
    assert checked >= 15


def test_the_configuration_reference_lists_every_key():
    """Every key of every schema a yaml in conf/ names, and of both top levels."""
    import config_reference as ref

    from sweep.engine import config, schema

    text = ref.render()
    groups = [p.name for p in config.CONF_DIR.iterdir() if p.is_dir()]
    expected = set()
    for group in groups:
        for name in config.choices(group):
            kind = ref.option_schema(group, name)
            if kind is not None:
                expected |= {f"{group}.{k.path}" for k in ref.keys(kind)}
    expected |= {k.path for k in ref.keys(schema.RunConfig, skip=tuple(groups))}
    missing = sorted(k for k in expected if f"`{k}`" not in text)
    assert not missing, missing
    assert all(f"### `{name}`" in text for name in config.choices("experiment"))


def test_architecture_names_every_module_and_only_modules_that_exist():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[:text.index("## Where to add things")]
    named = {name for folder, name in re.findall(r"`([\w/]*/)?(\w+)\.py`", section)
             if not folder.startswith(("tests/", "bench/"))}
    modules = {p.stem for d in ("sweep", "analysis", "tools") for p in (ROOT / d).rglob("*.py")
               if p.stem not in ("__init__", "__main__")}
    assert modules <= named, sorted(modules - named)
    assert named <= modules, sorted(named - modules)
    groups = {p.name for p in (ROOT / "conf").iterdir() if p.is_dir()}
    assert all(f"`{g}/`" in section for g in groups), groups
