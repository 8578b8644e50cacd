"""The configuration reference page, generated from the typed schemas and ``conf/``.

Every key comes from a schema dataclass (``sweep/engine/schema.py``, as Hydra's
ConfigStore registers it), its limits from the field's metadata, its values from the
group yamls and its help from their comments (or the field's comment in the schema), so
the page cannot drift from the code. ``mkdocs build`` renders it through
``tools/docs_hooks.py``; ``python tools/config_reference.py`` prints it.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout without the package installed

from sweep.engine import config, schema  # noqa: E402  (registers the schemas with Hydra)

CONF = config.CONF_DIR
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w]*)\s*:(?P<rest>.*)$")
LIMIT_WORDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


# --- reading ----------------------------------------------------------------------------


def _split_comment(text: str) -> tuple[str, str | None]:
    """A yaml line's value and its ``# comment`` (a '#' outside quotes after a space)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i], text[i + 1:].strip()
    return text, None


def yaml_comments(path: Path) -> tuple[list[str], dict[str, str]]:
    """A yaml file's header comment (its lines) and each dotted key's help: the comment
    block right above the key and its inline comment with the lines that continue it."""
    header: list[str] = []
    helps: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []
    block: list[str] = []
    last: tuple[str, int] | None = None  # (key, column of its inline '#')
    seen_key = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            text = stripped[1:].strip()
            if last and line.index("#") == last[1]:
                helps[last[0]].append(text)
            elif not seen_key and not stripped.startswith("# @package"):
                header.append(text)
            elif seen_key:
                block.append(text)
            continue
        if not stripped:
            block, last = [], None
            continue
        m = KEY_LINE.match(line)
        if not m or stripped.startswith("-"):
            last = None
            continue
        seen_key = True
        indent = len(m["indent"])
        stack = [(i, k) for i, k in stack if i < indent] + [(indent, m["key"])]
        key = ".".join(k for _, k in stack)
        value, comment = _split_comment(m["rest"])
        helps[key] = [*block, *([comment] if comment else [])]
        block = []
        last = (key, len(line) - len(m["rest"]) + len(value)) if comment else None
    return header, {k: " ".join(v) for k, v in helps.items() if v}


def field_comments(kind: type) -> dict[str, str]:
    """Each field's comment in the schema's source: the comment lines right above it and
    the one at its end."""
    found: dict[str, str] = {}
    for cls in reversed(kind.__mro__):
        if not dataclasses.is_dataclass(cls) or cls is kind.__mro__[-1]:
            continue
        block: list[str] = []
        for line in inspect.getsource(cls).splitlines()[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                block.append(stripped[1:].strip())
                continue
            m = re.match(r"^\s{4}(\w+)\s*:", line)
            if m and m[1] in cls.__dataclass_fields__:
                _, comment = _split_comment(line)
                text = " ".join([*block, *([comment] if comment else [])])
                if text:
                    found[m[1]] = text
            block = []
    return found


def option_schema(group: str, name: str) -> type | None:
    """The schema a group option's yaml names in its defaults list (``- <x>schema``)."""
    raw = OmegaConf.load(CONF / group / f"{name}.yaml")
    for entry in raw.get("defaults", []):
        if isinstance(entry, str) and entry.endswith("schema"):
            node = ConfigStore.instance().load(f"{group}/{entry}.yaml").node
            return OmegaConf.get_type(node)
    return None


# --- one key ----------------------------------------------------------------------------


@dataclasses.dataclass
class Key:
    path: str
    field: dataclasses.Field
    owner: type


def keys(kind: type, prefix: str = "", skip: tuple[str, ...] = ()) -> list[Key]:
    """A schema's keys in declaration order, nested schemas flattened to dotted paths."""
    found = []
    for f in dataclasses.fields(kind):
        if f.name in skip:
            continue
        nested = _dataclass(f, kind)
        if nested is not None:
            found += keys(nested, f"{prefix}{f.name}.")
        else:
            found.append(Key(f"{prefix}{f.name}", f, kind))
    return found


def _dataclass(f: dataclasses.Field, owner: type) -> type | None:
    kind = getattr(sys.modules[owner.__module__], str(f.type), None)
    return kind if dataclasses.is_dataclass(kind) else None


def limits_text(meta: Any) -> str:
    """A field's metadata as words: bounds, choices, list length."""
    parts = [f"{LIMIT_WORDS[k]} {meta[k]:,}" if isinstance(meta[k], int) else
             f"{LIMIT_WORDS[k]} {meta[k]:g}" for k in LIMIT_WORDS if k in meta]
    if "choices" in meta:
        parts.append("one of " + ", ".join(f"`{c}`" for c in meta["choices"]))
    text = " and ".join(parts)
    if meta.get("each") and text:
        text = "each " + text
    if "length" in meta:
        text = f"{meta['length']} items" + (f", {text}" if text else "")
    return text


def flow(value: Any) -> str:
    """A value as yaml's flow style writes it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    return str(value)


def value_text(value: Any) -> str:
    return "required" if value == "???" else f"`{flow(value)}`"


def schema_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "???"


def _get(tree: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return dataclasses.MISSING
        tree = tree[part]
    return tree


def values_cell(key: Key, options: dict[str, dict]) -> str:
    """The key's value in each option's yaml (its schema default where a yaml omits it),
    once when they agree."""
    values = {name: _get(tree, key.path) for name, tree in options.items()}
    values = {name: schema_default(key.field) if v is dataclasses.MISSING else v
              for name, v in values.items()}
    texts = {name: value_text(v) for name, v in values.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "<br>".join(f"{name}: {text}" for name, text in texts.items())


def table(rows: list[Key], options: dict[str, dict], helps: dict[str, str], *,
          prefix: str = "", head: str = "value") -> list[str]:
    """One markdown table, a row per key; the help is the yamls' comment, else the
    schema's."""
    lines = [f"| key | type | limits | {head} | help |", "|---|---|---|---|---|"]
    comments: dict[type, dict[str, str]] = {}
    for key in rows:
        if key.owner not in comments:
            comments[key.owner] = field_comments(key.owner)
        help_text = helps.get(key.path) or comments[key.owner].get(key.field.name, "")
        kind = str(key.field.type).replace("|", "\\|")
        cells = [f"`{prefix}{key.path}`", f"`{kind}`", limits_text(key.field.metadata),
                 values_cell(key, options), help_text.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# --- the page ---------------------------------------------------------------------------


def load(path: Path) -> dict:
    """A yaml's values as written (interpolations kept), without its defaults list."""
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    raw.pop("defaults", None)
    return raw


def options_of(group: str, first: str) -> list[str]:
    return [first, *(n for n in config.choices(group) if n != first)]


def describe_options(group: str, names: list[str], first: str) -> list[str]:
    """The bullet list of a group's options, each with its yaml's header comment."""
    out = [f"Options (`{group}=NAME`; default `{first}`):", ""]
    for name in names:
        header = " ".join(yaml_comments(CONF / group / f"{name}.yaml")[0])
        out.append(f"- `{name}`: {header.removeprefix(f'{name}: ') or '(no comment)'}")
    return out


def helps_of(paths: list[Path]) -> dict[str, str]:
    """Each key's help from the first of these yamls that comments it."""
    helps: dict[str, str] = {}
    for path in paths:
        for key, text in yaml_comments(path)[1].items():
            helps.setdefault(key, text)
    return helps


def group_section(group: str, first: str, what: str, *, yaml_help: bool = True) -> list[str]:
    """One config group: its options, then one table per schema they use. A schema with
    many options (the models) shows its defaults; the model page tabulates the models.
    ``yaml_help=False`` where the yamls' comments describe one option, not the key."""
    names = options_of(group, first)
    by_schema: dict[type, list[str]] = {}
    for name in names:
        by_schema.setdefault(option_schema(group, name), []).append(name)
    out = [f"## `{group}`: {what}", "", *describe_options(group, names, first)]
    for kind, members in by_schema.items():
        paths = [CONF / group / f"{n}.yaml" for n in members]
        many = len(members) > 8
        options = {"": {}} if many else {n: load(p) for n, p in zip(members, paths, strict=True)}
        head = "schema default" if many else \
            "value" if len(members) == 1 else f"value ({', '.join(members)})"
        out += ["", f"### `{kind.__name__}`: {', '.join(f'`{n}`' for n in members)}", ""]
        doc = inspect.getdoc(kind)
        if doc and not doc.startswith(kind.__name__ + "("):  # not the dataclass's own
            out += [" ".join(doc.split()), ""]
        out += table(keys(kind), options, helps_of(paths) if yaml_help else {},
                     prefix=f"{group}.", head=head)
    return out


def cluster_section() -> list[str]:
    """``cluster`` sets the top level's ``ray`` and ``resources`` (package _global_)."""
    names = options_of("cluster", "local")
    paths = [CONF / "cluster" / f"{n}.yaml" for n in names]
    rows = [k for k in keys(schema.RunConfig) if k.path.split(".")[0] in CLUSTER_KEYS]
    options = {n: load(p) for n, p in zip(names, paths, strict=True)}
    return ["## `cluster`: where the trials run", "",
            *describe_options("cluster", names, "local"), "",
            *table(rows, options, helps_of(paths), head=f"value ({', '.join(names)})")]


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            flat |= _flatten(v, f"{prefix}{k}.")
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def global_section(group: str, what: str, *, first_line: bool = False) -> list[str]:
    """A group of whole-config overrides (preset, experiment): what each option sets."""
    out = [f"## `{group}`: {what}", ""]
    for name in config.choices(group):
        path = CONF / group / f"{name}.yaml"
        header = yaml_comments(path)[0]
        base, sets = "", []
        for entry in OmegaConf.load(path).get("defaults", []):
            if isinstance(entry, str) and entry != "_self_":
                base = f"what `{group}={entry}` sets, then "
            elif not isinstance(entry, str):
                (choice, option), = entry.items()
                sets.append(f"`{choice.removeprefix('override').strip(' /')}={option}`")
        sets += [f"`{k}={flow(v)}`" for k, v in _flatten(load(path)).items()]
        text = " ".join(header[:1] if first_line else header)
        out += [f"### `{name}`", "", text or "(no comment)", "",
                f"Sets: {base}{', '.join(sets) or 'nothing'}.", ""]
    return out


def top_section(name: str, kind: type, skip: set[str], what: str) -> list[str]:
    path = CONF / f"{name}.yaml"
    header, helps = yaml_comments(path)
    return [f"## Top level of `conf/{name}.yaml`: {what}", "", " ".join(header), "",
            *table(keys(kind, skip=tuple(skip)), {name: load(path)}, helps), ""]


CLUSTER_KEYS = ("ray", "resources")
INTRO = """\
# Configuration reference

<!-- Generated from sweep/engine/schema.py and conf/ by tools/config_reference.py at every
docs build: edit those, not this page. -->

Every key a trial (`python -m sweep.train`) or a sweep (`python -m sweep.run`, `make sweep
ARGS="..."`) accepts, as a Hydra override `key=value`. Types and limits are the schemas'
(`sweep/engine/schema.py`), checked when the config is composed, so the dry run and the
real run refuse a bad value with the same line before anything is written; each schema's
`rules` also check keys against each other (for example `data.micro_batch` must divide
`data.batch_size`) and name the key that breaks them. Values are the yamls' in `conf/`;
help comes from their comments, else from the schema's. The page is generated at every
docs build (`tools/config_reference.py`), so it lists what the code accepts.
"""


def render() -> str:
    groups = {p.name for p in CONF.iterdir() if p.is_dir()}
    trial = {f.name for f in dataclasses.fields(schema.TrialConfig)}
    run_sets = set(load(CONF / "run.yaml"))  # trial keys run.yaml changes are listed again
    sections = [
        INTRO,
        *top_section("train", schema.TrialConfig, groups, "one trial"),
        *top_section("run", schema.RunConfig, groups | set(CLUSTER_KEYS) | (trial - run_sets),
                     "a sweep (adds to `train.yaml`)"),
        *group_section("model", "vitc_tiny", "the network (`sweep.models=[...]` in a sweep)",
                       yaml_help=False),
        "", *group_section("data", "synthetic", "the dataset and its augmentation"),
        "", *group_section("optimizer", "adamw",
                           "AdamW or SGD (`sweep.optimizers=[...]` in a sweep)"),
        "", *group_section("schedule", "default", "the lr schedule"),
        "", *group_section("sweep", "lr_wd", "the study a sweep runs"),
        "", *cluster_section(),
        "", *global_section("preset", "a protocol: sizes, schedule, samples"),
        *global_section("experiment", "a committed study (`+experiment=NAME`; its page "
                        "under Studies has the rest)", first_line=True),
    ]
    return "\n".join(sections).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
