"""The RegNetY CNN baseline: pycls's counts and stage widths, exact param counts, init,
the no-decay names, forward/backward on the CPU, and the tiny twin's flops match."""

from __future__ import annotations

import math

import pytest
import torch

from sweep.complexity import complexity_rows
from sweep.engine.config import choices, load_model, model_spec
from sweep.engine.recipe import decayed_names
from sweep.errors import UserError
from sweep.models import RegNet, RegNetSpec, ViT, model_class
from sweep.models.regnet import generate_regnet

# Reference counts (flops as multiply-adds, params, acts) from pycls itself: its
# ``RegNet.complexity`` run on CPU over configs/dds_baselines/regnety/RegNetY-*_dds_8gpu.yaml
# (facebookresearch/pycls @ 5719de6), at 224 px and 32 px with 1000 classes; the built
# pycls module's sum(p.numel()) equals these params. MODEL_ZOO.md rounds the same models
# to 0.8/6.3/5.2, 1.6/11.2/8.0, 4.0/20.6/12.3 and 15.9/83.6/23.0 (GF/M/M).
PYCLS = {
    "regnety_800mf": {224: (797_183_328, 6_263_168, 5_249_888),
                      32: (17_829_216, 6_263_168, 113_504)},
    "regnety_1.6gf": {224: (1_612_087_326, 11_202_430, 8_044_814),
                      32: (35_257_374, 11_202_430, 175_118)},
    "regnety_4gf": {224: (3_973_301_344, 20_646_656, 12_287_200),
                    32: (84_591_712, 20_646_656, 263_392)},
    "regnety_16gf": {224: (15_911_534_044, 83_590_140, 23_041_228),
                     32: (337_612_252, 83_590_140, 493_516)},
}
# pycls ``generate_regnet_full()`` per config: stage widths, depths, group widths.
PYCLS_STAGES = {
    "regnety_800mf": ([64, 128, 320, 768], [1, 3, 8, 2], [16] * 4),
    "regnety_1.6gf": ([48, 120, 336, 888], [2, 6, 17, 2], [24] * 4),
    "regnety_4gf": ([128, 192, 512, 1088], [2, 6, 12, 2], [64] * 4),
    "regnety_16gf": ([224, 448, 1232, 3024], [2, 4, 11, 1], [112] * 4),
}
# The pycls config each yaml copies: (DEPTH, W0, WA, WM, GROUP_W), SE_ON with SE_R 0.25.
PYCLS_CFG = {
    "regnety_800mf": (14, 56, 38.84, 2.4, 16), "regnety_1.6gf": (27, 48, 20.71, 2.65, 24),
    "regnety_4gf": (22, 96, 31.41, 2.24, 64), "regnety_16gf": (18, 200, 106.23, 2.48, 112),
}
REGNETS = sorted(n for n in choices("model") if n.startswith("regnet"))


def spec_of(name: str) -> RegNetSpec:
    spec = model_spec(load_model(name))
    assert isinstance(spec, RegNetSpec)
    return spec


@pytest.mark.parametrize("name", sorted(PYCLS))
def test_configs_are_pyclss_regnety(name):
    model = load_model(name)
    assert (model.depth, model.w0, model.wa, model.wm, model.group_width) == PYCLS_CFG[name]
    assert (model.se_ratio, model.stem_width, model.bottleneck) == (0.25, 32, 1.0)
    assert model.stem_type == "simple_stem_in" and model.arch == "regnet"
    assert (model.image_size, model.num_classes) == (224, 1000)
    # the paper's Table 4, RegNetY row (batch-2048 units); no tuned values in the paper.
    assert dict(model.interval.adamw) == {"lr": [1.25e-3, 4.0e-2], "wd": [0.0075, 0.24]}
    assert dict(model.interval.sgd) == {"lr": [0.25, 8.0], "wd": [3.0e-6, 8.0e-5]}
    assert not model.tuned


@pytest.mark.parametrize("name", sorted(PYCLS))
@pytest.mark.parametrize("image_size", [224, 32])
def test_complexity_equals_pycls(name, image_size):
    cx = RegNet.complexity(spec_of(name), image_size=image_size, num_classes=1000)
    assert (cx.flops, cx.params, cx.acts) == PYCLS[name][image_size]


@pytest.mark.parametrize("name", sorted(PYCLS_STAGES))
def test_width_rule_reproduces_pycls_stages(name):
    ws, ds, gs = (list(x) for x in zip(*spec_of(name).stages(), strict=True))
    assert (ws, ds, gs) == PYCLS_STAGES[name]
    assert sum(ds) == load_model(name).depth


def test_width_rule_before_the_group_fixup():
    # RegNetY-1.6GF: pycls generate_regnet gives widths 48, 128, 336, 896; group width 24
    # then moves 128 -> 120 and 896 -> 888 (pycls adjust_block_compatibility).
    assert generate_regnet(20.71, 48, 2.65, 27) == ([48, 128, 336, 896], [2, 6, 17, 2])
    # A group width above a stage's width is clipped to it.
    spec = RegNetSpec(depth=4, w0=16, wa=8, wm=2.0, group_width=64)
    assert all(g <= w and w % g == 0 for w, _, g in spec.stages())


@pytest.mark.parametrize("name", REGNETS)
@pytest.mark.parametrize("image_size", [224, 32])
def test_counted_params_equal_built_module(name, image_size):
    spec = spec_of(name)
    with torch.device("meta"):
        model = RegNet(spec, image_size=image_size, num_classes=1000)
    counted = RegNet.complexity(spec, image_size=image_size, num_classes=1000).params
    assert counted == sum(p.numel() for p in model.parameters())


def test_counted_shapes_follow_the_forward():
    # The spatial path the counts assume is the one the module takes.
    spec = spec_of("regnety_800mf")
    with torch.device("meta"):
        model = RegNet(spec, image_size=224, num_classes=1000)
        x = model.stem(torch.empty(1, 3, 224, 224))
        assert x.shape[-1] == 112
        for i in range(4):
            x = getattr(model, f"s{i + 1}")(x)
    assert tuple(x.shape) == (1, 768, 7, 7)


@pytest.mark.parametrize("stem_type", ["res_stem_cifar", "simple_stem_in"])
def test_tiny_forward_backward_on_cpu(stem_type):
    cfg = load_model("regnety_tiny")
    cfg.stem_type = stem_type
    torch.manual_seed(0)
    model = RegNet(model_spec(cfg), image_size=32, num_classes=10)
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 10)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_tiny_twin_matches_the_tiny_vits():
    spec = spec_of("regnety_tiny")
    assert spec.stem_type == "res_stem_cifar"
    cx = RegNet.complexity(spec, image_size=32, num_classes=10)
    for vit in ("vitp_tiny", "vitc_tiny"):
        fv = ViT.complexity(model_spec(load_model(vit)), image_size=32, num_classes=10).flops
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
    model = RegNet(spec_of("regnety_800mf"), image_size=224, num_classes=1000)
    block = model.s3.b1
    for conv in (block.f.a, block.f.c, block.proj):
        fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
        assert conv.bias is None
    b = block.f.b  # group conv: fan_out still counts all output channels, as pycls
    assert b.groups == 320 // 16
    assert b.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 320)), rel=0.05)
    # SE convs keep PyTorch's default bias (pycls's init_weights leaves it), SE width =
    # 0.25 of the block's input width.
    se = block.f.se.f_ex[0]
    assert se.out_channels == round(0.25 * 128) and se.bias.abs().max() > 0
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
    assert model_class(model_spec(load_model("vitp_tiny"))) is ViT
    rows = {r["model"]: r for r in complexity_rows(REGNETS)}
    for name, counts in PYCLS.items():
        assert (rows[name]["flops"], rows[name]["params"], rows[name]["acts"]) == counts[224]
        assert rows[name]["stem"] == "cnn" and rows[name]["width"] is None
    assert {r["size"] for r in rows.values()} == {"tiny", "1gf", "1.6gf", "4gf", "18gf"}


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(wm=1.0), "wm must be > 1"),
    (dict(w0=20), "multiple of 8"),
    (dict(stem_type="res_stem_in"), "unknown model.stem_type"),
    (dict(bottleneck=1.5), "bottleneck"),
    (dict(depth=0), "depth must be a positive"),
])
def test_bad_specs_are_one_clear_error(kwargs, message):
    base = dict(depth=7, w0=48, wa=16.0, wm=2.0, group_width=16)
    with pytest.raises(UserError, match=message) as err:
        RegNetSpec(**{**base, **kwargs})
    assert "\n" not in str(err.value)
