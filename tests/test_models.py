"""The model family: Table 1 from code, exact param counts, stems, init, bad specs."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from sweep.engine.config import architecture, choices, load_model
from sweep.errors import UserError
from sweep.models import ViT, ViTSpec

# the paper's Table 1: GF, params (M), acts (M).
TABLE1 = {
    "vitp_1gf": (1.1, 4.8, 5.5), "vitp_4gf": (3.9, 18.5, 11.1),
    "vitp_18gf": (17.5, 86.6, 24.0), "vitp_36gf": (35.9, 178.4, 37.3),
    "vitc_1gf": (1.1, 4.6, 5.7), "vitc_4gf": (4.0, 17.8, 11.3),
    "vitc_18gf": (17.7, 81.6, 24.1), "vitc_36gf": (35.0, 167.8, 36.7),
}


def test_complexity_cli_reproduces_table1(cli):
    rows = {r["model"]: r for r in json.loads(cli("sweep.complexity", "--json").stdout)}
    assert set(rows) == set(choices("model"))
    for name, (gf, params, acts) in TABLE1.items():
        r = rows[name]
        assert set(r) >= {"model", "flops", "params", "acts"}
        assert r["flops"] / 1e9 == pytest.approx(gf, rel=0.03), name
        # Table 1 rounds to 0.1 M: allow that rounding on top of the 1% tolerance.
        assert abs(r["params"] / 1e6 - params) <= 0.01 * params + 0.05, name
        assert r["acts"] / 1e6 == pytest.approx(acts, rel=0.03), name
    table = cli("sweep.complexity").stdout
    assert "vitc_4gf" in table and "GF" in table and "params M" in table


@pytest.mark.parametrize("size", ["tiny", "mini"])
def test_cpu_pairs_match_flops_by_the_paper_rule(size):
    p, c = (architecture(load_model(f"vit{s}_{size}")) for s in "pc")
    image = load_model(f"vitp_{size}").image_size
    assert c.depth == p.depth - 1 and c.stem == "conv" and p.stem == "patchify"
    fp = ViT.complexity(p, image_size=image, num_classes=10).flops
    fc = ViT.complexity(c, image_size=image, num_classes=10).flops
    assert abs(fc / fp - 1) < 0.05


def test_mini_pair_has_the_papers_stems():
    """16x16 stride-16 patchify against four stride-2 3x3 convs + 1x1: the paper's contrast."""
    p, c = (architecture(load_model(f"vit{s}_mini")) for s in "pc")
    assert p.patch_size == 16 and c.stem_strides == (2, 2, 2, 2, 1)
    assert load_model("vitp_mini").image_size // p.patch_size == 4  # 4x4 tokens


@pytest.mark.parametrize("name", [n for n in choices("model") if n.startswith("vit")])
@pytest.mark.parametrize("image_size", [224, 32])
def test_counted_params_equal_built_module(name, image_size):
    spec = architecture(load_model(name))
    if image_size % spec.patch_size:
        pytest.skip("image size not divisible by patch size")
    with torch.device("meta"):  # exact shapes without allocating 350M-parameter models
        model = ViT(spec, image_size=image_size, num_classes=1000)
    counted = ViT.complexity(spec, image_size=image_size, num_classes=1000).params
    assert counted == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("size", ["1gf", "18gf", "tiny", "mini"])
def test_conv_stem_token_grid_equals_patchify(size):
    p, c = (architecture(load_model(f"vit{s}_{size}")) for s in "pc")
    assert p.patch_size == c.patch_size
    image = load_model(f"vitp_{size}").image_size
    with torch.device("meta"):
        mp = ViT(p, image_size=image, num_classes=10)
        mc = ViT(c, image_size=image, num_classes=10)
        x = torch.empty(2, 3, image, image)
        assert mp.stem(x).shape == mc.stem(x).shape == (2, p.width, image // p.patch_size,
                                                         image // p.patch_size)
    assert mp.pos_embedding.shape == mc.pos_embedding.shape


@pytest.mark.parametrize("name", ["vitp_tiny", "vitc_tiny"])
@pytest.mark.parametrize("classifier", ["token", "pooled"])
def test_tiny_forward_backward_on_cpu(name, classifier):
    cfg = load_model(name)
    cfg.classifier = classifier
    model = ViT(architecture(cfg), image_size=32, num_classes=10)
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 10)
    model.head.weight.data.normal_()  # a zero head passes no gradient to the body
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("tokens", [17, 65])  # the mini and tiny pairs' sequence lengths
def test_attention_equals_the_indexed_formula(tokens):
    """q, k, v as strided views of the projection (the faster backward) compute what
    indexing them out of a permuted copy into the fused kernel does, forward and backward:
    bit for bit, so a committed study's trials reproduce across the change."""
    from sweep.models.vit import SelfAttention

    torch.manual_seed(0)
    attn = SelfAttention(width=64, heads=4)
    x = torch.randn(3, tokens, 64, requires_grad=True)

    def indexed(x):
        qkv = attn.qkv(x).reshape(3, tokens, 3, 4, 16).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return attn.proj(y.transpose(1, 2).reshape(3, tokens, 64))

    outs, grads = [], []
    for f in (attn, indexed):
        out = f(x)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), [x, *attn.parameters()]))
    assert torch.equal(outs[0], outs[1])
    assert all(torch.equal(g, r) for g, r in zip(grads[0], grads[1], strict=True))


def test_class_token_last_block_computes_only_what_the_head_reads():
    """The last block runs for the class token alone: the logits and every gradient equal
    those of the full block (to float rounding)."""
    torch.manual_seed(0)
    model = ViT(architecture(load_model("vitc_mini")), image_size=64, num_classes=10)
    x = torch.randn(4, 3, 64, 64)

    def full(x):
        t = model.stem(x).flatten(2).transpose(1, 2)
        t = torch.cat([model.class_token.expand(4, -1, -1), t], dim=1) + model.pos_embedding
        return model.head(model.norm(model.blocks(t))[:, 0])

    outs, grads = [], []
    for f in (model, full):
        out = f(x)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), list(model.parameters())))
    assert torch.allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    assert all(torch.allclose(g, r, rtol=1e-4, atol=1e-6)
               for g, r in zip(grads[0], grads[1], strict=True))


def test_every_layernorm_has_the_authors_eps():
    """pycls vitconfigs LN.EPS = 1e-6 in every block and the final norm."""
    for name, size in (("vitp_1gf", 224), ("vitc_1gf", 224), ("vitp_mini", 64),
                       ("vitc_mini", 64)):
        model = ViT(architecture(load_model(name)), image_size=size, num_classes=10)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
        assert len(norms) == 2 * model.spec.depth + 1
        assert all(m.eps == 1e-6 for m in norms)


def test_init_statistics():
    torch.manual_seed(0)
    vp = ViT(architecture(load_model("vitp_4gf")), image_size=224, num_classes=1000)
    vc = ViT(architecture(load_model("vitc_4gf")), image_size=224, num_classes=1000)
    # Patchify: pycls's trunc_normal_(std=sqrt(1/fan_in)) with PyTorch's absolute ±2
    # bounds, i.e. an untruncated normal at this std (tails beyond 2σ are kept); zero bias.
    w = vp.stem.patchify.weight
    target = math.sqrt(1 / (3 * 16 * 16))
    assert w.std().item() == pytest.approx(target, rel=0.02)
    assert (w.abs() > 2 * target).float().mean().item() == pytest.approx(0.0455, abs=0.01)
    assert not vp.stem.patchify.bias.any()
    # Conv stem: 3x3 normal std sqrt(2/out); final 1x1 std sqrt(1/out), zero bias.
    convs = [m for m in vc.stem.convs if isinstance(m, torch.nn.Conv2d)]
    for conv in convs[1:]:  # the first has too few weights for a tight estimate
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / conv.out_channels),
                                                         rel=0.05)
        assert conv.bias is None
    assert vc.stem.proj.weight.std().item() == pytest.approx(math.sqrt(1 / 384), rel=0.05)
    assert not vc.stem.proj.bias.any()
    for model in (vp, vc):
        block = model.blocks[0]
        # MLP: Xavier-uniform weights, bias ~ N(0, 1e-6).
        fc1 = block.mlp.fc1
        bound = math.sqrt(6 / (fc1.in_features + fc1.out_features))
        assert fc1.weight.abs().max().item() <= bound
        assert fc1.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
        assert 0 < fc1.bias.std().item() < 1e-5
        # Attention: nn.MultiheadAttention's defaults (Xavier-uniform in-proj, zero biases).
        qkv = block.attn.qkv
        assert qkv.weight.abs().max().item() <= math.sqrt(6 / (qkv.in_features + qkv.out_features))
        assert not qkv.bias.any() and not block.attn.proj.bias.any()
        # Head zeros, position embedding N(0, 0.02), class token zeros, LN at defaults.
        assert not model.head.weight.any() and not model.head.bias.any()
        assert model.pos_embedding.std().item() == pytest.approx(0.02, rel=0.05)
        assert not model.class_token.any()
        assert (block.norm1.weight == 1).all() and not block.norm1.bias.any()


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(stem_widths=(32, 64, 64), stem_strides=(2, 2, 2)), "stride 1"),
    (dict(stem_widths=(32, 64, 64), stem_strides=(2, 1, 1)), "multiply to 2, not the patch"),
    (dict(stem_widths=(32, 64, 48), stem_strides=(2, 2, 1)), "not the model width 64"),
    (dict(stem_widths=(64,), stem_strides=(1,)), "equal length >= 2"),
])
def test_inconsistent_conv_stem_is_one_clear_error(kwargs, message):
    with pytest.raises(UserError, match=message) as err:
        ViTSpec(width=64, depth=2, heads=2, mlp_dim=128, patch_size=4, stem="conv", **kwargs)
    assert "\n" not in str(err.value)


def test_bad_specs_and_sizes():
    with pytest.raises(UserError, match="unknown model.stem"):
        ViTSpec(width=64, depth=2, heads=2, mlp_dim=128, patch_size=4, stem="hybrid")
    with pytest.raises(UserError, match="not divisible by model.heads"):
        ViTSpec(width=64, depth=2, heads=3, mlp_dim=128, patch_size=4)
    spec = ViTSpec(width=64, depth=2, heads=2, mlp_dim=128, patch_size=16)
    with pytest.raises(UserError, match="not divisible by the patch size"):
        ViT(spec, image_size=40, num_classes=10)


def test_unknown_model_is_one_line(cli):
    proc = cli("sweep.complexity", "vitx_9gf", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown model 'vitx_9gf'" in proc.stderr and "vitp_4gf" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("kernel", ["aten", "onednn"])
def test_onednn_linear_equals_torch_linear(kernel, monkeypatch):
    """The ViT's linears run on oneDNN on the CPU (bias in the GEMM's epilogue; on
    non-Intel CPUs the backward GEMMs too): the same function, parameters and gradients
    as ``nn.Linear`` to fp32 rounding, on 3-D inputs and with or without a bias."""
    from sweep.models import linear

    if not linear.onednn_available():
        pytest.skip("this torch build has no oneDNN linear")
    monkeypatch.setenv(linear.BACKWARD_ENV, kernel)
    assert linear.backward_kernel() == kernel
    torch.manual_seed(0)
    for bias in (True, False):
        ours = linear.Linear(48, 80, bias=bias)
        ref = torch.nn.Linear(48, 80, bias=bias)
        ref.load_state_dict(ours.state_dict())
        assert list(ours.state_dict()) == list(ref.state_dict())
        x = torch.randn(6, 17, 48, requires_grad=True)
        outs, grads = [], []
        for m in (ours, ref):
            out = m(x)
            outs.append(out)
            grads.append(torch.autograd.grad(out.square().sum(), [x, *m.parameters()]))
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
        for g, r in zip(grads[0], grads[1], strict=True):
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
    with torch.inference_mode():  # evaluation: no graph, same numbers
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
