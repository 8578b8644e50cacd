"""Every config group's schema, in one place: types (Hydra's structured configs), ranges
and choices (a field's ``metadata``) and cross-field rules (a schema's ``rules``).

``sweep.engine.config.compose`` checks a composed config against these before anything
is written, so the dry run and the real run fail on the same line; code below it reads
plain, valid values and checks nothing again. ``typed`` does the same for a single group
given as a plain dict (the tests, and callers that build a dataset or an augmentation
outside a composed config).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweep.errors import UserError

# A study plans at most this many samples per (model, optimizer): more is a typo, and
# planning it would take the dry run's memory with it.
MAX_SAMPLES = 4096
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")  # a sweep name: one folder, no path


def spec(default: Any = MISSING, *, factory: Any = None, **limits: Any) -> Any:
    """A dataclass field with its limits as metadata: ``ge``/``gt``/``le``/``lt`` bounds,
    ``choices``, ``length`` (of a list) and ``each`` (the bounds apply to every item)."""
    if factory is not None:
        return field(default_factory=factory, metadata=limits)
    return field(default=default, metadata=limits)


def _limit_text(limits: dict) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    parts = [f"{words[k]} {limits[k]:g}" for k in words if k in limits]
    if "choices" in limits:
        parts.append("one of " + ", ".join(map(str, limits["choices"])))
    return " and ".join(parts)


def _bad_number(value: Any, limits: dict) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return True
    return (("ge" in limits and value < limits["ge"]) or ("gt" in limits and value <= limits["gt"])
            or ("le" in limits and value > limits["le"])
            or ("lt" in limits and value >= limits["lt"]))


def check_value(path: str, value: Any, limits: dict) -> None:
    """One field against its limits; None (an optional field left empty) passes."""
    if value is None or not limits:
        return
    if isinstance(value, ListConfig | list | tuple):
        items = list(value)
        if "length" in limits and len(items) != limits["length"]:
            raise UserError(f"{path} must be a list of {limits['length']} numbers, got {items}")
        if limits.get("each"):
            for item in items:
                check_value(path, item, {k: v for k, v in limits.items()
                                         if k not in ("length", "each")})
        return
    if "choices" in limits:
        if value not in limits["choices"]:
            raise UserError(f"{path} must be {_limit_text(limits)}, got {value!r}")
        return
    if any(k in limits for k in ("ge", "gt", "le", "lt")) and _bad_number(value, limits):
        raise UserError(f"{path} must be {_limit_text(limits)}, got {value!r}")


def _read(node: DictConfig, key: Any, path: str) -> Any:
    try:
        return node[key]
    except OmegaConfBaseException as e:
        if OmegaConf.is_missing(node, key):
            raise UserError(f"{path} is not set; pass {path}=...") from None
        raise UserError(f"{path} cannot be resolved ({str(e).splitlines()[0]})") from None


def validate(node: Any, path: str = "") -> None:
    """Check a composed node and everything below it against its schemas' limits and
    rules; raises one UserError naming the key."""
    if not isinstance(node, DictConfig):
        return
    kind = OmegaConf.get_type(node)
    limits = {f.name: f.metadata for f in dataclasses.fields(kind)} \
        if dataclasses.is_dataclass(kind) else {}
    extra = sorted(str(k) for k in node if limits and str(k) not in limits)
    if extra:  # a `+key=` override, which Hydra adds past the schema
        where = f"{path}.{extra[0]}" if path else extra[0]
        raise UserError(f"unknown key {where}; known: {', '.join(limits)}")
    for key in node:
        where = f"{path}.{key}" if path else str(key)
        value = _read(node, key, where)
        check_value(where, value, dict(limits.get(str(key), {})))
        validate(value, where)
    rules = getattr(kind, "rules", None)
    if rules is not None:
        rules(node, path)


def typed(schema: type, values: Any, where: str) -> DictConfig:
    """A plain dict (or a node, resolved where it sits) as a validated config of
    ``schema``."""
    try:
        if isinstance(values, DictConfig):
            values = OmegaConf.to_container(values, resolve=True)
        node = OmegaConf.merge(OmegaConf.structured(schema), values)
    except OmegaConfBaseException as e:
        raise UserError(describe(e, where)) from None
    validate(node, where)
    return node


def describe(e: OmegaConfBaseException, where: str = "") -> str:
    """An omegaconf error as one line naming the key (``where`` is the node's path)."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    path = ".".join(p for p in (where, str(getattr(e, "full_key", "") or "")) if p)
    if re.match(r"Key '.+' not in '\w+'", first):
        return f"unknown key {path}; check its spelling"
    return f"{path}: {first}" if path else first


def pair(path: str, value: Any, *, strict: bool, upper: float | None = None) -> None:
    """[low, high] with 0 < low < high (``strict``) or 0 < low <= high, high <= upper."""
    items = list(value) if isinstance(value, ListConfig | list | tuple) else None
    if items is None or len(items) != 2 or any(_bad_number(v, {}) for v in items):
        raise UserError(f"{path} must be two numbers [low, high], got {value!r}")
    lo, hi = items
    if not (0 < lo < hi if strict else 0 < lo <= hi) or (upper is not None and hi > upper):
        bound = f", high <= {upper:g}" if upper is not None else ""
        raise UserError(f"{path} [{lo:g}, {hi:g}] is empty, inverted or not positive; give "
                        f"[low, high] with 0 < low {'<' if strict else '<='} high{bound}")


def unique(path: str, items: Any) -> None:
    seen = [str(x) for x in items]
    dupes = sorted({x for x in seen if seen.count(x) > 1})
    if dupes:
        raise UserError(f"{path} names {', '.join(dupes)} more than once; list each once")
    if not seen:
        raise UserError(f"{path} must name at least one entry")


# --- lr/wd -------------------------------------------------------------------------------


@dataclass
class LrWd:
    """One good (lr, wd) at batch 2048."""

    lr: float = spec(gt=0)
    wd: float = spec(ge=0)


@dataclass
class Interval:
    """A log-uniform search interval: [low, high] for lr and for wd (batch-2048 units)."""

    lr: list[float] = MISSING
    wd: list[float] = MISSING

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        interval_rules(node, path)


def interval_rules(node: Any, path: str) -> None:
    """An lr/wd interval, typed or given on the command line as a plain mapping."""
    if not isinstance(node, DictConfig | dict):
        raise UserError(f"{path} must be {{lr: [low, high], wd: [low, high]}}, got {node!r}")
    extra = sorted(set(map(str, node)) - {"lr", "wd"})
    if extra:
        raise UserError(f"unknown key {path}.{extra[0]}; an interval has lr and wd")
    for key in ("lr", "wd"):
        pair(f"{path}.{key}", node.get(key), strict=True)


# --- models ------------------------------------------------------------------------------

PRESETS = ("none", "demo", "paper")


@dataclass
class ModelConfig:
    """A ViT (``conf/model/vit*.yaml``)."""

    name: str = MISSING
    size: str = MISSING  # family size (tiny, 1gf, 4gf, ...): the panel a model is drawn in
    preset: str = spec("none", choices=PRESETS)  # the protocol a sweep of it defaults to
    stem: str = spec("patchify", choices=("patchify", "conv"))
    patch_size: int = spec(16, ge=1)
    width: int = spec(ge=1)
    depth: int = spec(ge=1)
    heads: int = spec(ge=1)
    mlp_dim: int = spec(ge=1)
    stem_widths: list[int] = spec(factory=list, each=True, ge=1)
    stem_strides: list[int] = spec(factory=list, each=True, ge=1)
    classifier: str = spec("token", choices=("token", "pooled"))
    ln_eps: float = spec(1e-6, gt=0)  # pycls LN.EPS in the authors' configs
    # The resolution the model is designed for (its complexity table; ImageNet trains
    # at it, pycls TRAIN.IM_SIZE) and pycls TEST.IM_SIZE: evaluation resizes the short
    # side to it, then centre-crops image_size (null: image_size / 0.875).
    image_size: int = spec(224, ge=8)
    test_image_size: int | None = spec(None, ge=8)
    num_classes: int = spec(1000, ge=2)
    # Good lr/wd per optimizer at batch 2048 (the paper's), for sweeps to centre on.
    tuned: dict[str, LrWd] = field(default_factory=dict)
    # lr/wd sweep intervals per optimizer (the paper's Table 4 ranges).
    interval: dict[str, Interval] = field(default_factory=dict)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        from sweep.engine.config import architecture

        architecture(node)  # the architecture's own consistency (its UserError names it)
        model_rules(node, path)


@dataclass
class RegNetConfig:
    """A RegNet model config (``arch: regnet``); fields as pycls ``cfg.REGNET``/``ANYNET``."""

    name: str = MISSING
    arch: str = spec("regnet", choices=("regnet",))
    size: str = MISSING
    preset: str = spec("none", choices=PRESETS)
    # Either the width rule (cfg.REGNET: depth, w0, wa, wm, group_width) ...
    depth: int = spec(0, ge=0)
    w0: int = spec(0, ge=0)
    wa: float = spec(0.0, ge=0)
    wm: float = spec(0.0, ge=0)
    group_width: int = spec(0, ge=0)
    # ... or the stages one by one (cfg.ANYNET: DEPTHS, WIDTHS, GROUP_WS, STRIDES).
    depths: list[int] = spec(factory=list, each=True, ge=1)
    widths: list[int] = spec(factory=list, each=True, ge=1)
    group_widths: list[int] = spec(factory=list, each=True, ge=1)
    strides: list[int] = spec(factory=list, each=True, ge=1)
    se_ratio: float = spec(0.25, ge=0, le=1)
    stem_type: str = spec("simple_stem_in", choices=("simple_stem_in", "res_stem_cifar"))
    stem_width: int = spec(32, ge=1)
    bottleneck: float = spec(1.0, gt=0)
    zero_init_final_gamma: bool = False
    image_size: int = spec(224, ge=8)
    test_image_size: int | None = spec(None, ge=8)  # pycls TEST.IM_SIZE (see ModelConfig)
    num_classes: int = spec(1000, ge=2)
    tuned: dict[str, LrWd] = field(default_factory=dict)
    interval: dict[str, Interval] = field(default_factory=dict)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        from sweep.engine.config import architecture

        architecture(node)
        model_rules(node, path)


def model_rules(node: DictConfig, path: str) -> None:
    """Shared by both model schemas: tuned values and intervals name known optimizers."""
    for key in ("tuned", "interval"):
        for name in node[key]:
            check_value(f"{path}.{key}", str(name), {"choices": OPTIMIZERS})
    test = node.test_image_size
    if test is not None and test < node.image_size:
        raise UserError(f"{path}.test_image_size {test} is below image_size "
                        f"{node.image_size}: evaluation resizes to it, then crops image_size")


# --- optimizer and schedule --------------------------------------------------------------

OPTIMIZERS = ("adamw", "sgd")


@dataclass
class OptimizerConfig:
    """AdamW or SGD; lr/wd at batch ``ref_batch``. null lr/wd: the tuned values (trials);
    a sweep's study sets them per trial."""

    name: str = spec(choices=OPTIMIZERS)
    lr: float | None = spec(None, gt=0)
    wd: float | None = spec(None, ge=0)
    ref_batch: int = spec(2048, ge=1)
    betas: list[float] = spec(factory=lambda: [0.9, 0.999], length=2, each=True, ge=0, lt=1)
    eps: float = spec(1e-8, gt=0)
    momentum: float = spec(0.9, ge=0, lt=1)
    nesterov: bool = True
    bn_wd: float | None = spec(0.0, ge=0)
    ln_wd: float | None = spec(0.0, ge=0)
    bias_wd: float | None = spec(0.0, ge=0)
    decay_embeddings: bool = True


@dataclass
class ScheduleConfig:
    epochs: int = spec(ge=1)
    warmup_epochs: float = spec(5, ge=0)
    warmup_max_fraction: float = spec(0.1, ge=0, le=1)
    warmup_factor: float = spec(0.1, ge=0, le=1)
    min_lr: float = spec(0.005, ge=0, le=1)


# --- data --------------------------------------------------------------------------------

POLICIES = ("v0", "imagenet", "cifar10", "svhn")


@dataclass
class AugmentConfig:
    """Batch augmentation on the training device (``sweep.data.augment``)."""

    crop_padding: int = spec(ge=0)
    flip: bool = MISSING
    autoaugment: bool = MISSING
    autoaugment_policy: str = spec(choices=POLICIES)
    lighting: float = spec(ge=0)
    mixup: float = spec(ge=0)
    cutmix: float = spec(ge=0)
    mixup_switch_prob: float = spec(ge=0, le=1)
    mix_prob: float = spec(ge=0, le=1)
    label_smoothing: float = spec(ge=0, lt=1)


@dataclass
class DataConfig:
    """What every dataset has (``conf/data/*.yaml``)."""

    name: str = MISSING
    root: str | None = None
    seed: int = spec(0, ge=0)
    image_size: int = spec(ge=8)
    num_classes: int = spec(ge=2)
    batch_size: int = spec(ge=1)
    micro_batch: int | None = spec(None, ge=1)
    eval_batch_size: int = spec(ge=1)
    workers: int = spec(0, ge=0)
    mean: list[float] = spec(factory=list, length=3)
    std: list[float] = spec(factory=list, length=3, each=True, gt=0)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        micro, batch = node.micro_batch, node.batch_size
        if micro is not None and batch % micro:
            raise UserError(f"{path}.micro_batch {micro} does not divide {path}.batch_size "
                            f"{batch}; pick a micro-batch that splits the batch into equal parts")
        pad = node.augment.crop_padding
        if pad >= node.image_size:
            raise UserError(f"{path}.augment.crop_padding {pad} must be below "
                            f"{path}.image_size {node.image_size}")


@dataclass
class SyntheticData(DataConfig):
    train_size: int = spec(ge=1)
    test_size: int = spec(ge=1)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        DataConfig.rules(node, path)
        if node.image_size < 16:
            raise UserError(f"synthetic images need {path}.image_size >= 16, got "
                            f"{node.image_size}")
        if node.num_classes > 10:
            raise UserError(f"synthetic has 10 classes; set {path}.num_classes <= 10, got "
                            f"{node.num_classes}")


@dataclass
class IdxData(DataConfig):
    """Fashion-MNIST, MNIST: 28x28 IDX files; sizes null take the whole split."""

    train_size: int | None = spec(None, ge=1)
    test_size: int | None = spec(None, ge=1)


@dataclass
class Cifar10Data(DataConfig):
    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        DataConfig.rules(node, path)
        if node.num_classes != 10 or node.image_size != 32:
            raise UserError(f"cifar10 has 10 classes of 32x32 images; keep {path}.num_classes"
                            f"=10 and {path}.image_size=32 (got {node.num_classes} and "
                            f"{node.image_size})")


@dataclass
class ImageNetData(DataConfig):
    crop: str = spec("pycls", choices=("pycls", "torchvision"))
    crop_scale: list[float] = MISSING
    crop_ratio: list[float] = MISSING
    test_image_size: int | None = spec(None, ge=8)
    interpolation: str = spec("bilinear", choices=("bilinear", "bicubic"))
    decoder: str = spec("auto", choices=("auto", "pil", "simplejpeg", "dali"))

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        DataConfig.rules(node, path)
        pair(f"{path}.crop_scale", node.crop_scale, strict=False, upper=1.0)
        pair(f"{path}.crop_ratio", node.crop_ratio, strict=False)
        test = node.test_image_size
        if test is not None and test < node.image_size:
            raise UserError(f"{path}.test_image_size {test} is below {path}.image_size "
                            f"{node.image_size}: evaluation resizes to it, then crops")


DATA_SCHEMAS: dict[str, type] = {"synthetic": SyntheticData, "fashion_mnist": IdxData,
                                 "mnist": IdxData, "cifar10": Cifar10Data,
                                 "imagenet": ImageNetData}


def data_config(values: Any) -> DictConfig:
    """One dataset's settings, validated against its schema (by ``name``)."""
    name = values.get("name") if hasattr(values, "get") else None
    if name not in DATA_SCHEMAS:
        raise UserError(f"unknown data.name {name!r}; use one of {', '.join(DATA_SCHEMAS)}")
    return typed(DATA_SCHEMAS[name], values, "data")


# --- one trial (conf/train.yaml) ---------------------------------------------------------


@dataclass
class TrialConfig:
    """The top level of ``conf/train.yaml``: one trial's recipe beyond its groups. The
    values live in the yaml (nothing is defaulted here)."""

    model: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = MISSING
    seed: int = spec(ge=0)
    out: str = MISSING
    device: str = spec(choices=("auto", "cpu", "cuda"))
    threads: int = spec(ge=1)
    compile: bool = MISSING
    amp: str = spec(choices=("auto", "bf16", "off"))
    ema_horizon: float = spec(ge=0)
    ema_update_period: int = spec(ge=1)
    ema_warmup_copy: bool = MISSING
    precise_bn_images: int = spec(ge=0)
    allow_resolution: bool = MISSING
    keep_weights: bool = MISSING
    diverge_factor: float = spec(gt=0)
    diverge_patience: int = spec(ge=1)
    tuned: str | None = None  # a study folder (or its tuned.yaml) to take lr/wd from

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        trial_rules(node)


def trial_rules(node: DictConfig) -> None:
    """Across groups: the data serves a size the model can take."""
    model, data = node.model, node.data
    if model.get("patch_size") and data.image_size % model.patch_size:
        raise UserError(f"{model.name}'s patch size {model.patch_size} does not divide the "
                        f"{data.name} image size {data.image_size}")


# --- a sweep (conf/run.yaml, conf/sweep, conf/cluster) ------------------------------------

STUDIES = ("lr_wd", "optimizer", "schedule", "tune")
# Sweep settings that change no trial: they may differ when a sweep is resumed.
NOT_TRIAL_SETTINGS = ("max_retries", "save_tuned", "name")


@dataclass
class StudyConfig:
    """What every study has (``conf/sweep/*.yaml``)."""

    study: str = spec(choices=STUDIES)
    name: str | None = None  # results/<name>; null: <study>-<models>-<data>
    models: list[str] = MISSING
    optimizers: list[str] = spec(factory=lambda: list(OPTIMIZERS), each=True,
                                 choices=OPTIMIZERS)
    max_retries: int = spec(2, ge=0)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        from sweep.engine.config import choices

        if node.name is not None and (not NAME.match(node.name) or node.name in (".", "..")):
            raise UserError(f"{path}.name={node.name!r} is not a name: use letters, digits "
                            "and ._+=- (it becomes one folder under results=)")
        unique(f"{path}.models", node.models)
        unique(f"{path}.optimizers", node.optimizers)
        known = choices("model")
        for name in node.models:
            check_value(f"{path}.models", name, {"choices": known})


@dataclass
class SampledStudy(StudyConfig):
    """The lr/wd and tune studies: n (lr, wd) draws per (model, optimizer)."""

    n: int = spec(ge=1)  # at most MAX_SAMPLES (see rules)
    epochs: int = spec(ge=1)
    seed: int = spec(0, ge=0)
    sampler_seed: int = spec(0, ge=0)
    # One interval for every group, e.g. {lr: [1e-4, 1e-2], wd: [0.01, 1.0]} (typed in
    # ``rules``: Hydra cannot override an empty optional structured field from the
    # command line).
    interval: Any = None
    # One interval per optimizer, e.g. {adamw: {lr: [...], wd: [...]}, sgd: {...}}: in the
    # lr/wd study it replaces the models' own (the tune study's search space).
    # (Mappings typed in ``rules``, like ``interval``, and null when empty: the command
    # line can then set them.)
    search: Any = None

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        StudyConfig.rules(node, path)
        if node.n > MAX_SAMPLES:
            trials = node.n * len(node.models) * len(node.optimizers)
            raise UserError(f"{path}.n={node.n} would plan {trials:,} trials "
                            f"({len(node.models)} models x {len(node.optimizers)} optimizers); "
                            f"the most is {MAX_SAMPLES} samples per model and optimizer")
        if node.interval is not None:
            interval_rules(node.interval, f"{path}.interval")
        for name, interval in (node.search or {}).items():
            check_value(f"{path}.search", str(name), {"choices": OPTIMIZERS})
            interval_rules(interval, f"{path}.search.{name}")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class LrWdStudy(SampledStudy):
    sampler: str = spec("random", choices=("random", "sobol"))
    scale: list[float] = spec(factory=lambda: [0.125, 4.0])
    save_tuned: bool = False  # true: each group's best (lr, wd) to results/<sweep>/tuned.yaml
    # {draws: D, seeds: [s, ...]}: once every draw has ended, each group's D best draws
    # are trained again at these seeds (same lr, wd and sample index): the seed noise of
    # the best. null: none. (Typed in ``rules``, like ``interval``.)
    repeat_best: Any = None

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        SampledStudy.rules(node, path)
        pair(f"{path}.scale", node.scale, strict=True)
        repeat = node.repeat_best
        if repeat is None:
            return
        where = f"{path}.repeat_best"
        if not isinstance(repeat, DictConfig) or set(repeat) != {"draws", "seeds"}:
            raise UserError(f"{where} must be {{draws: N, seeds: [s, ...]}}, got {repeat}")
        if not _whole(repeat.draws) or not 1 <= repeat.draws <= node.n:
            raise UserError(f"{where}.draws must be a whole number in 1..{node.n} (sweep.n), "
                            f"got {repeat.draws!r}")
        seeds = repeat.seeds
        if not isinstance(seeds, ListConfig) or not seeds or \
                not all(_whole(s) and s >= 0 for s in seeds):
            raise UserError(f"{where}.seeds must be a non-empty list of seeds (whole numbers "
                            f">= 0), got {seeds}")
        unique(f"{where}.seeds", seeds)
        if node.seed in repeat.seeds:
            raise UserError(f"{where}.seeds holds the draws' own seed {node.seed}: those "
                            "trials exist already; give other seeds")


@dataclass
class TuneStudy(SampledStudy):
    grace: int = spec(2, ge=1)  # ASHA: epochs every trial gets before it can be stopped


@dataclass
class GridStudy(StudyConfig):
    """The optimizer and schedule studies: the tuned lr/wd at each length and seed."""

    epochs: list[int] = spec(factory=list, each=True, ge=1)
    seeds: list[int] = spec(factory=lambda: [0], each=True, ge=0)
    # Other seeds at some lengths, e.g. {5: [0, 1, 2], 40: [0, 1, 2]}: seed spreads at the
    # ends of a schedule study without paying for them in between.
    seeds_at: Any = None  # typed in rules (see SampledStudy.search)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        StudyConfig.rules(node, path)
        unique(f"{path}.epochs", node.epochs)
        unique(f"{path}.seeds", node.seeds)
        for length, seeds in (node.seeds_at or {}).items():
            check_value(f"{path}.seeds_at", int(length), {"choices": list(node.epochs)})
            if not isinstance(seeds, ListConfig):
                raise UserError(f"{path}.seeds_at.{length} must be a list of seeds")
            unique(f"{path}.seeds_at.{length}", seeds)
            check_value(f"{path}.seeds_at.{length}", seeds, {"each": True, "ge": 0})


@dataclass
class RayConfig:
    """Set by conf/cluster/*.yaml (no defaults here: ``cluster=ray`` leaves ``address``
    to the command line)."""

    address: str | None = MISSING  # null: start Ray here; HOST:PORT or auto: join one
    num_cpus: int | None = spec(MISSING, ge=1)
    num_gpus: int | None = spec(MISSING, ge=0)
    object_store_memory: int | None = spec(MISSING, ge=78_643_200)  # Ray's minimum, 75 MiB
    storage: str | None = MISSING  # Ray's experiment folder (null: results/<sweep>/ray)


@dataclass
class ResourcesConfig:
    cpus_per_trial: int = spec(1, ge=1)  # per worker; also its torch thread count
    gpus_per_trial: float = spec(0.0, ge=0)
    workers_per_trial: int | None = spec(None, ge=1)
    max_concurrent: int | None = spec(None, ge=1)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        gpus, workers = node.gpus_per_trial, node.workers_per_trial
        if gpus > 1 and gpus != int(gpus):
            raise UserError(f"{path}.gpus_per_trial={gpus:g}: above 1 it must be a whole "
                            "number (one data-parallel worker per GPU)")
        if workers is not None and gpus > 1 and gpus != workers:
            raise UserError(f"{path}.workers_per_trial={workers} and gpus_per_trial={gpus:g} "
                            "disagree; a data-parallel trial runs one worker per GPU")


def trial_workers(resources: Any) -> int:
    """Workers per trial: ``workers_per_trial``, else a whole number of GPUs above 1."""
    if not resources:
        return 1
    workers = resources.get("workers_per_trial")
    if workers is not None:
        return int(workers)
    gpus = float(resources.get("gpus_per_trial") or 0)
    return int(gpus) if gpus > 1 else 1


@dataclass
class GpuConfig:
    """The dry run's GPU-hours: peak bf16 dense TFLOPS, assumed utilization, GPU count."""

    name: str = "h100"
    utilization: float = spec(0.35, gt=0, le=1)
    count: int | None = spec(None, ge=1)
    peak_tflops: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        if str(node.name).lower() not in {str(k).lower() for k in node.peak_tflops}:
            raise UserError(f"{path}.name={node.name!r} has no peak in {path}.peak_tflops "
                            f"({', '.join(node.peak_tflops)}); add one: "
                            f"{path}.peak_tflops.{node.name}=TFLOPS")


@dataclass
class MlflowConfig:
    tracking_uri: str | None = None


@dataclass
class WandbConfig:
    project: str | None = None
    mode: str | None = spec(None, choices=("online", "offline", "disabled"))


@dataclass
class RunConfig(TrialConfig):
    """The top level of ``conf/run.yaml``: a sweep of trials."""

    sweep: Any = MISSING
    results: str = MISSING
    dry_run: bool = MISSING
    samples: int = spec(ge=1)
    analyze: bool = MISSING
    logger: Any = MISSING  # a tracker name or a list of them (sweep.driver.trackers)
    mlflow: MlflowConfig = MISSING
    wandb: WandbConfig = MISSING
    gpu: GpuConfig = MISSING
    ray: RayConfig = MISSING
    resources: ResourcesConfig = MISSING

    @staticmethod
    def rules(node: DictConfig, path: str) -> None:
        trial_rules(node)
        workers = trial_workers(node.resources)
        data = node.data
        micro = data.micro_batch or data.batch_size // workers
        if (data.batch_size // micro) % workers:
            raise UserError(f"data.batch_size {data.batch_size} in micro-batches of {micro} "
                            f"does not split over the trial's {workers} workers; make the "
                            "number of micro-batches a multiple of the workers")
