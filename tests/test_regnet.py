"""The RegNetY CNN baseline: the authors' four models (pycls branch ``vitconfigs``) with
pycls's counts, stages and state-dict layout, both ways of giving the stages, exact param
counts, init, the no-decay names, forward/backward on the CPU, and the tiny twin."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from sweep.complexity import complexity_rows
from sweep.engine.config import architecture, choices, compose, load_model
from sweep.engine.recipe import decayed_names
from sweep.errors import UserError
from sweep.models import RegNet, RegNetSpec, ViT, model_class
from sweep.models.regnet import generate_regnet

# The config each yaml copies: configs/vitconv_baselines/regnety/<file>.yaml on pycls's
# branch vitconfigs (commit 206d0db), with its TRAIN.IM_SIZE and TEST.IM_SIZE.
AUTHORS = {
    "regnety_1gf": ("RegNetY-1.0GF_sgd_8gpu", 232, 262),
    "regnety_4gf": ("RegNetY-4.0GF_sgd_8gpu", 240, 272),
    "regnety_16gf": ("RegNetY-16GF_sgd_16gpu", 256, 292),
    "regnety_32gf": ("RegNetY-32GF_sgd_32gpu", 268, 304),
}
# The ViT panel each one is drawn in (the paper's pairing by flops).
PANEL = {"regnety_1gf": "1gf", "regnety_4gf": "4gf", "regnety_16gf": "18gf",
         "regnety_32gf": "36gf"}
# Reference counts (flops as multiply-adds, params, acts) from pycls itself: the
# vitconfigs tree exported with `git archive vitconfigs`, each config merged into pycls's
# cfg, then pycls.core.net.complexity(builders.get_model()) with TRAIN.IM_SIZE set to the
# config's own size, 224 and 32 (1000 classes; CPU, yacs 0.1.8, iopath 0.1.10, submitit
# stubbed: pycls imports it only for its launcher). The built pycls module's
# sum(p.numel()) equals these params.
PYCLS = {
    "regnety_1gf": {232: (1_047_175_162, 9_600_538, 6_210_106),
                    224: (894_246_042, 9_600_538, 5_555_330),
                    32: (20_607_642, 9_600_538, 122_114)},
    "regnety_4gf": {240: (4_095_782_704, 22_408_976, 14_465_008),
                    224: (3_529_570_096, 22_408_976, 12_553_392),
                    32: (76_347_184, 22_408_976, 271_536)},
    "regnety_16gf": {256: (15_459_535_460, 72_282_900, 30_702_212),
                     224: (11_839_191_140, 72_282_900, 23_513_252),
                     32: (254_089_316, 72_282_900, 508_580)},
    "regnety_32gf": {268: (31_073_411_646, 128_552_446, 46_221_350),
                     224: (20_950_360_830, 128_552_446, 31_509_422),
                     32: (449_009_406, 128_552_446, 682_670)},
}
# pycls's get_params() per config: stage widths, depths, group widths, strides (for
# RegNetY-4.0GF, MODEL.TYPE regnet, after generate_regnet_full's fix-up).
PYCLS_STAGES = {
    "regnety_1gf": ([40, 120, 328, 904], [1, 4, 10, 3], [4] * 4, [2] * 4),
    "regnety_4gf": ([96, 192, 512, 1216], [2, 6, 16, 2], [32] * 4, [2] * 4),
    "regnety_16gf": ([168, 336, 896, 2128], [2, 7, 18, 2], [56] * 4, [2] * 4),
    "regnety_32gf": ([216, 432, 1152, 2808], [2, 7, 20, 2], [72] * 4, [2] * 4),
}
# pycls's module (built on the meta device as above): its state_dict's key count and the
# first 16 hex digits of sha256 over its "key:shape" lines, in state_dict order.
PYCLS_STATE = {
    "regnety_1gf": (428, "f3efb3e14f7a3cc8"), "regnety_4gf": (604, "a681dd072852478a"),
    "regnety_16gf": (670, "42ccc623e8064af4"), "regnety_32gf": (714, "08bafa700b973c1b"),
}
REGNETS = sorted(n for n in choices("model") if n.startswith("regnet"))


def spec_of(name: str) -> RegNetSpec:
    spec = architecture(load_model(name))
    assert isinstance(spec, RegNetSpec)
    return spec


def meta_model(name: str, image_size: int | None = None) -> RegNet:
    with torch.device("meta"):
        return RegNet(spec_of(name), image_size=image_size or load_model(name).image_size,
                      num_classes=1000)


@pytest.mark.parametrize("name", sorted(AUTHORS))
def test_configs_are_the_authors_regnety(name):
    model = load_model(name)
    _, train, test = AUTHORS[name]
    assert (model.image_size, model.test_image_size, model.num_classes) == (train, test, 1000)
    # and a trial of it crops, resizes and evaluates at those sizes
    data = compose("train", [f"model={name}", "data=imagenet", "data.root=/imagenet"]).data
    assert (data.image_size, data.test_image_size) == (train, test)
    assert (model.size, model.preset, model.arch) == (PANEL[name], "paper", "regnet")
    assert (model.se_ratio, model.stem_width, model.bottleneck) == (0.25, 32, 1.0)
    assert model.stem_type == "simple_stem_in"
    if name == "regnety_4gf":  # MODEL.TYPE regnet: the width rule
        assert (model.depth, model.w0, model.wa, model.wm, model.group_width) == \
            (26, 88, 30.3, 2.404, 32)
        assert not model.depths
    else:  # MODEL.TYPE anynet: the stages as listed (strides and all)
        ws, ds, gs, ss = PYCLS_STAGES[name]
        assert (list(model.widths), list(model.depths)) == (ws, ds)
        assert (list(model.group_widths), list(model.strides)) == (gs, ss)
        assert (model.w0, model.wa, model.wm, model.group_width) == (0, 0, 0, 0)
    # the paper's Table 4, RegNetY row (batch-2048 units); no tuned values in the paper.
    assert dict(model.interval.adamw) == {"lr": [1.25e-3, 4.0e-2], "wd": [0.0075, 0.24]}
    assert dict(model.interval.sgd) == {"lr": [0.25, 8.0], "wd": [3.0e-6, 8.0e-5]}
    assert not model.tuned


def test_each_paper_panel_has_the_authors_cnn_only():
    sizes = {name: load_model(name).size for name in REGNETS}
    assert {n: s for n, s in sizes.items() if n != "regnety_tiny"} == PANEL
    vit_sizes = {load_model(n).size for n in choices("model") if n.startswith("vit")}
    assert set(sizes.values()) <= vit_sizes  # every CNN lands beside its ViTs


@pytest.mark.parametrize("name", sorted(PYCLS))
@pytest.mark.parametrize("which", ["train", 224, 32])
def test_complexity_equals_pycls(name, which):
    image_size = AUTHORS[name][1] if which == "train" else which
    cx = RegNet.complexity(spec_of(name), image_size=image_size, num_classes=1000)
    assert (cx.flops, cx.params, cx.acts) == PYCLS[name][image_size]


@pytest.mark.parametrize("name", sorted(PYCLS_STAGES))
def test_stages_equal_pyclss(name):
    stages = [list(x) for x in zip(*spec_of(name).stages(), strict=True)]
    assert tuple(stages) == PYCLS_STAGES[name]
    assert spec_of(name).depth == sum(PYCLS_STAGES[name][1])


@pytest.mark.parametrize("name", sorted(PYCLS_STATE))
def test_state_dict_layout_equals_pyclss(name):
    # Same keys, order and shapes as pycls's module: its checkpoints load with strict=True.
    state = meta_model(name).state_dict()
    lines = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in state.items())
    digest = hashlib.sha256(lines.encode()).hexdigest()[:16]
    assert (len(state), digest) == PYCLS_STATE[name]


def test_width_rule_and_the_group_fixup():
    # RegNetY-4.0GF (vitconfigs): pycls generate_regnet gives widths 88, 208, 512, 1224;
    # group width 32 then moves them to 96, 192, 512, 1216 (adjust_block_compatibility,
    # round half to even: 208 / 32 = 6.5 -> 6).
    assert generate_regnet(30.3, 88, 2.404, 26) == ([88, 208, 512, 1224], [2, 6, 16, 2])
    assert [s[0] for s in spec_of("regnety_4gf").stages()] == [96, 192, 512, 1216]
    # A group width above a stage's width is clipped to it.
    spec = RegNetSpec(depth=4, w0=16, wa=8, wm=2.0, group_width=64)
    assert all(g <= w and w % g == 0 for w, _, g, _ in spec.stages())


def test_rule_and_explicit_forms_build_the_same_net():
    rule = spec_of("regnety_4gf")
    ws, ds, gs, ss = (tuple(x) for x in zip(*rule.stages(), strict=True))
    explicit = RegNetSpec(depths=ds, widths=ws, group_widths=gs, strides=ss)
    assert explicit.depth == rule.depth == 26 and explicit.stages() == rule.stages()
    for size in (240, 32):
        assert RegNet.complexity(explicit, image_size=size, num_classes=1000) == \
            RegNet.complexity(rule, image_size=size, num_classes=1000)


def test_explicit_strides_are_honoured():
    spec = RegNetSpec(depths=(1, 2), widths=(16, 32), group_widths=(8, 16), strides=(1, 2),
                      stem_type="res_stem_cifar")
    with torch.device("meta"):
        model = RegNet(spec, image_size=16, num_classes=10)
        assert tuple(model.s1(model.stem(torch.empty(1, 3, 16, 16))).shape) == (1, 16, 16, 16)
    assert model.s1.b1.proj is not None  # width changes 32 -> 16: projected, stride 1
    assert model.s2.b1.f.b.stride == (2, 2) and model.s2.b2.f.b.stride == (1, 1)
    cx = RegNet.complexity(spec, image_size=16, num_classes=10)
    assert cx.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", REGNETS)
@pytest.mark.parametrize("image_size", ["own", 224, 32])
def test_counted_params_equal_built_module(name, image_size):
    size = load_model(name).image_size if image_size == "own" else image_size
    model = meta_model(name, size)
    counted = RegNet.complexity(spec_of(name), image_size=size, num_classes=1000).params
    assert counted == sum(p.numel() for p in model.parameters())


def test_counted_shapes_follow_the_forward():
    # The spatial path the counts assume is the one the module takes: 232 px, stride 2 in
    # the stem and each stage, odd sizes rounding up as pycls's (h - 1) // 2 + 1.
    model = meta_model("regnety_1gf")
    with torch.device("meta"):
        x = model.stem(torch.empty(1, 3, 232, 232))
        sides = [x.shape[-1]]
        for i in range(4):
            x = getattr(model, f"s{i + 1}")(x)
            sides.append(x.shape[-1])
    assert sides == [116, 58, 29, 15, 8] and x.shape[1] == 904


@pytest.mark.parametrize("stem_type", ["res_stem_cifar", "simple_stem_in"])
def test_tiny_forward_backward_on_cpu(stem_type):
    cfg = load_model("regnety_tiny")
    cfg.stem_type = stem_type
    torch.manual_seed(0)
    model = RegNet(architecture(cfg), image_size=32, num_classes=10)
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 10)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_tiny_twin_matches_the_tiny_vits():
    spec = spec_of("regnety_tiny")
    assert spec.stem_type == "res_stem_cifar"
    assert (load_model("regnety_tiny").image_size, load_model("regnety_tiny").test_image_size) == \
        (32, 32)
    cx = RegNet.complexity(spec, image_size=32, num_classes=10)
    for vit in ("vitp_tiny", "vitc_tiny"):
        fv = ViT.complexity(architecture(load_model(vit)), image_size=32, num_classes=10).flops
        assert abs(cx.flops / fv - 1) < 0.05, vit
    # Stride-1 stem, then stride 2 per stage: 32 -> 16 -> 8 -> 4 before the pool. The
    # counts equal pycls's RegNet.complexity for the same cfg.REGNET (STEM_TYPE
    # res_stem_cifar, 10 classes): 19_838_250 flops, 289_834 params, 276_266 acts.
    assert (cx.flops, cx.params, cx.acts) == (19_838_250, 289_834, 276_266)
    assert [s[0] for s in spec.stages()] == [48, 96, 192]
    with torch.device("meta"):
        model = RegNet(spec, image_size=32, num_classes=10)
        feats = torch.nn.Sequential(*list(model.children())[:-1])(torch.empty(1, 3, 32, 32))
    assert tuple(feats.shape) == (1, 192, 4, 4)
    # A stride-2 stem at 64 px costs exactly what the stride-1 stem does at 32 px.
    simple = RegNetSpec(**{**spec.__dict__, "stem_type": "simple_stem_in"})
    assert RegNet.complexity(simple, image_size=64, num_classes=10) == cx


def test_init_follows_pycls():
    torch.manual_seed(0)
    model = RegNet(spec_of("regnety_1gf"), image_size=232, num_classes=1000)
    block = model.s3.b1  # 120 -> 328, group width 4
    for conv in (block.f.a, block.f.c, block.proj):
        fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
        assert conv.bias is None
    b = block.f.b  # group conv: fan_out still counts all output channels, as pycls
    assert b.groups == 328 // 4
    assert b.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 328)), rel=0.05)
    # SE convs keep PyTorch's default bias (pycls's init_weights leaves it), SE width =
    # 0.25 of the block's input width.
    se = block.f.se.f_ex[0]
    assert se.out_channels == round(0.25 * 120) and se.bias.abs().max() > 0
    # pycls's default BN.ZERO_INIT_FINAL_GAMMA is False: every BN starts at 1/0.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert (m.weight == 1).all() and not m.bias.any()
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert not model.head.fc.bias.any()
    zero = RegNet(RegNetSpec(**{**spec_of("regnety_tiny").__dict__,
                                "zero_init_final_gamma": True}), image_size=32, num_classes=10)
    assert not zero.s1.b1.f.c_bn.weight.any() and (zero.s1.b1.f.b_bn.weight == 1).all()


def test_weight_decay_follows_the_recipe_rule():
    """The reference grouping: conv and linear biases take none; BatchNorm parameters
    (gain and bias, their own kind) and conv/linear weights take the trial's wd."""
    model = RegNet(spec_of("regnety_tiny"), image_size=32, num_classes=10)
    decayed = decayed_names(model)
    assert {"stem.conv.weight", "s1.b1.f.b.weight", "s1.b1.f.se.f_ex.0.weight",
            "head.fc.weight", "stem.bn.weight", "stem.bn.bias", "s1.b1.f.a_bn.weight"} <= decayed
    assert not {"s1.b1.f.se.f_ex.0.bias", "head.fc.bias"} & decayed


def test_model_class_dispatch_and_complexity_table():
    assert model_class(spec_of("regnety_tiny")) is RegNet
    assert model_class(architecture(load_model("vitp_tiny"))) is ViT
    rows = {r["model"]: r for r in complexity_rows(REGNETS)}
    for name, counts in PYCLS.items():  # each counted at its own training size
        train = AUTHORS[name][1]
        assert rows[name]["image_size"] == train
        assert (rows[name]["flops"], rows[name]["params"], rows[name]["acts"]) == counts[train]
        assert rows[name]["stem"] == "cnn" and rows[name]["width"] is None
        assert rows[name]["depth"] == sum(PYCLS_STAGES[name][1])
    assert {r["size"] for r in rows.values()} == {"tiny", "1gf", "4gf", "18gf", "36gf"}


RULE = dict(depth=7, w0=48, wa=16.0, wm=2.0, group_width=16)
STAGES = dict(depths=(1, 2), widths=(16, 32), group_widths=(8, 16), strides=(2, 2))


@pytest.mark.parametrize(("kwargs", "message"), [
    (RULE | dict(wm=1.0), "wm must be > 1"),
    (RULE | dict(w0=20), "multiple of 8"),
    (RULE | dict(stem_type="res_stem_in"), "unknown model.stem_type"),
    (RULE | dict(bottleneck=1.5), "bottleneck"),
    (RULE | dict(depth=0), "depth must be a positive"),
    ({}, "depth must be a positive .*give the stages one by one"),
    (STAGES | dict(w0=48), "both given; keep one"),
    (STAGES | dict(strides=(2,)), "one entry per stage each; got depths 2, widths 2, "
                                  "group_widths 2, strides 1"),
    (STAGES | dict(strides=(2, 0)), "model.strides must be positive"),
    (STAGES | dict(group_widths=(8, 12)), "12 does not divide the bottleneck width 32"),
    (STAGES | dict(group_widths=(32, 16)), "32 does not divide the bottleneck width 16"),
    (STAGES | dict(depth=4), r"depth=4 must be sum\(model.depths\)=3"),
])
def test_bad_specs_are_one_clear_error(kwargs, message):
    with pytest.raises(UserError, match=message) as err:
        RegNetSpec(**kwargs)
    assert "\n" not in str(err.value)


def test_a_bad_yaml_stage_list_is_one_clear_error():
    cfg = load_model("regnety_1gf")
    cfg.group_widths = [4, 4, 4]
    with pytest.raises(UserError, match="one entry per stage"):
        architecture(cfg)
