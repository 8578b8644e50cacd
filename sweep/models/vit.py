"""ViT with a patchify stem (ViT_P) or a convolutional stem (ViT_C), Xiao et al. 2021.

Every module has a ``complexity`` static method beside its ``forward`` so that the
paper's Table 1 (flops, params, activations) is computed from the same definitions
that are trained. Initialization follows the reference code as described in docs/PROTOCOL.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from sweep.errors import UserError
from sweep.models.cx import Cx, conv2d_cx, linear_cx, norm_cx
from sweep.models.linear import Linear


@dataclass(frozen=True)
class ViTSpec:
    """Architecture of one ViT. ``stem_widths``/``stem_strides`` describe the conv stem
    layer by layer: every entry but the last is a 3×3 conv + BN + ReLU, the last is the
    1×1 conv (stride 1, with bias) that maps to ``width``."""

    width: int
    depth: int
    heads: int
    mlp_dim: int
    patch_size: int
    stem: str = "patchify"
    stem_widths: tuple[int, ...] = field(default_factory=tuple)
    stem_strides: tuple[int, ...] = field(default_factory=tuple)
    classifier: str = "token"
    ln_eps: float = 1e-6  # pycls vitconfigs LN.EPS (PyTorch's default is 1e-5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stem_widths", tuple(int(w) for w in self.stem_widths))
        object.__setattr__(self, "stem_strides", tuple(int(s) for s in self.stem_strides))
        self.validate()

    def validate(self) -> None:
        for key in ("width", "depth", "heads", "mlp_dim", "patch_size"):
            if getattr(self, key) < 1:
                raise UserError(f"model.{key} must be a positive integer, got {getattr(self, key)}")
        if self.width % self.heads:
            raise UserError(
                f"model.width={self.width} is not divisible by model.heads={self.heads}; "
                "pick heads that divide the width"
            )
        if not 0 < self.ln_eps < 1:
            raise UserError(f"model.ln_eps must lie in (0, 1), got {self.ln_eps}")
        if self.classifier not in ("token", "pooled"):
            raise UserError(
                f"unknown model.classifier '{self.classifier}'; use 'token' or 'pooled'"
            )
        if self.stem == "patchify":
            return
        if self.stem != "conv":
            raise UserError(f"unknown model.stem '{self.stem}'; use 'patchify' or 'conv'")
        ws, ss = self.stem_widths, self.stem_strides
        if len(ws) < 2 or len(ws) != len(ss):
            raise UserError(
                "conv stem needs stem_widths and stem_strides of equal length >= 2 "
                f"(3x3 layers then the 1x1), got {len(ws)} widths and {len(ss)} strides"
            )
        if ss[-1] != 1:
            raise UserError(f"conv stem: the last (1x1) layer must have stride 1, got {ss[-1]}")
        if math.prod(ss) != self.patch_size:
            raise UserError(
                f"conv stem strides {list(ss)} multiply to {math.prod(ss)}, not the patch "
                f"size {self.patch_size}; make their product equal model.patch_size"
            )
        if ws[-1] != self.width:
            raise UserError(
                f"conv stem ends at width {ws[-1]}, not the model width {self.width}; "
                "set the last stem_widths entry to model.width"
            )

    def tokens(self, image_size: int) -> int:
        """Sequence length (patches plus the class token, if any)."""
        if image_size % self.patch_size:
            raise UserError(
                f"image size {image_size} is not divisible by the patch size "
                f"{self.patch_size}; use an image size that is a multiple of it"
            )
        grid = (image_size // self.patch_size) ** 2
        return grid + (1 if self.classifier == "token" else 0)


class PatchifyStem(nn.Module):
    """One p×p stride-p conv: the ViT_P stem."""

    def __init__(self, *, in_chans: int, width: int, patch_size: int) -> None:
        super().__init__()
        self.patchify = nn.Conv2d(in_chans, width, patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patchify(x)

    @staticmethod
    def complexity(cx: Cx, *, in_chans: int, width: int, patch_size: int) -> Cx:
        return conv2d_cx(cx, in_chans, width, patch_size, stride=patch_size, bias=True, padding=0)

    def reset_parameters(self) -> None:
        # pycls's init_weights_vit: trunc_normal_(std=sqrt(1/fan_in)) with PyTorch's
        # absolute bounds ±2, which at these stds truncate (almost) nothing.
        w = self.patchify.weight
        nn.init.trunc_normal_(w, std=math.sqrt(1.0 / (w.shape[1] * w.shape[2] * w.shape[3])))
        nn.init.zeros_(self.patchify.bias)


class ConvStem(nn.Module):
    """3×3 convs with BN+ReLU, then a 1×1 conv with bias: the ViT_C stem."""

    def __init__(self, *, in_chans: int, widths: tuple[int, ...], strides: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        w_in = in_chans
        for w_out, s in zip(widths[:-1], strides[:-1], strict=True):
            layers += [
                nn.Conv2d(w_in, w_out, 3, stride=s, padding=1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.ReLU(inplace=True),
            ]
            w_in = w_out
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(w_in, widths[-1], 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.convs(x))

    @staticmethod
    def complexity(cx: Cx, *, in_chans: int, widths: tuple[int, ...],
                   strides: tuple[int, ...]) -> Cx:
        w_in = in_chans
        for w_out, s in zip(widths[:-1], strides[:-1], strict=True):
            cx = norm_cx(conv2d_cx(cx, w_in, w_out, 3, stride=s), w_out)
            w_in = w_out
        return conv2d_cx(cx, w_in, widths[-1], 1, bias=True)

    def reset_parameters(self) -> None:
        for m in self.convs:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / m.out_channels))
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
        nn.init.normal_(self.proj.weight, std=math.sqrt(1.0 / self.proj.out_channels))
        nn.init.zeros_(self.proj.bias)


class SelfAttention(nn.Module):
    """Multi-head self-attention on ``F.scaled_dot_product_attention``."""

    def __init__(self, *, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = Linear(width, 3 * width)
        self.proj = Linear(width, width)

    def forward(self, x: torch.Tensor, *, first_only: bool = False) -> torch.Tensor:
        """``first_only``: attend from the first (class) token alone, over all tokens."""
        b, n, c = x.shape
        # q, k, v stay strided views of the projection's (b, n, 3, heads, head_dim) output:
        # their gradients are then stacked straight into that layout, with no zero-filled
        # (3, b, heads, n, head_dim) buffer per index and no permute copy (1.15× per
        # attention block at 65 tokens, bit-identical results).
        q, k, v = (t.transpose(1, 2) for t in
                   self.qkv(x).view(b, n, 3, self.heads, c // self.heads).unbind(2))
        if first_only:
            q, n = q[:, :, :1], 1
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))

    @staticmethod
    def complexity(cx: Cx, *, width: int, heads: int, tokens: int) -> Cx:
        head_dim = width // heads
        cx = linear_cx(cx, width, 3 * width, locations=tokens)
        # q·kᵀ (the attention map) then map·v, per head.
        cx = cx.add(flops=heads * tokens * tokens * head_dim, acts=heads * tokens * tokens)
        cx = cx.add(flops=heads * tokens * tokens * head_dim, acts=heads * tokens * head_dim)
        return linear_cx(cx, width, width, locations=tokens)

    def reset_parameters(self) -> None:
        # PyTorch's nn.MultiheadAttention defaults: Xavier-uniform input projection,
        # default Linear output projection, zero biases.
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.zeros_(self.qkv.bias)
        self.proj.reset_parameters()
        nn.init.zeros_(self.proj.bias)


class MLP(nn.Module):
    """Linear → GELU → linear."""

    def __init__(self, *, width: int, mlp_dim: int) -> None:
        super().__init__()
        self.fc1 = Linear(width, mlp_dim)
        self.fc2 = Linear(mlp_dim, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))

    @staticmethod
    def complexity(cx: Cx, *, width: int, mlp_dim: int, tokens: int) -> Cx:
        cx = linear_cx(cx, width, mlp_dim, locations=tokens)
        return linear_cx(cx, mlp_dim, width, locations=tokens)

    def reset_parameters(self) -> None:
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.normal_(fc.bias, std=1e-6)


class Block(nn.Module):
    """Pre-LN encoder block: x + MHA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, *, width: int, heads: int, mlp_dim: int, ln_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=ln_eps)
        self.attn = SelfAttention(width=width, heads=heads)
        self.norm2 = nn.LayerNorm(width, eps=ln_eps)
        self.mlp = MLP(width=width, mlp_dim=mlp_dim)

    def forward(self, x: torch.Tensor, *, first_only: bool = False) -> torch.Tensor:
        """``first_only``: the first token's output alone (the last block of a class-token
        ViT, whose other outputs the head never reads)."""
        y = self.attn(self.norm1(x), first_only=first_only)
        x = (x[:, :1] if first_only else x) + y
        return x + self.mlp(self.norm2(x))

    @staticmethod
    def complexity(cx: Cx, *, width: int, heads: int, mlp_dim: int, tokens: int) -> Cx:
        cx = norm_cx(cx, width)
        cx = SelfAttention.complexity(cx, width=width, heads=heads, tokens=tokens)
        cx = norm_cx(cx, width)
        return MLP.complexity(cx, width=width, mlp_dim=mlp_dim, tokens=tokens)


class ViT(nn.Module):
    """Stem → tokens (+ class token) + position embedding → blocks → LN → linear head."""

    def __init__(self, spec: ViTSpec, *, image_size: int, num_classes: int,
                 in_chans: int = 3) -> None:
        super().__init__()
        self.spec = spec
        tokens = spec.tokens(image_size)
        d = spec.width
        if spec.stem == "patchify":
            self.stem: nn.Module = PatchifyStem(in_chans=in_chans, width=d,
                                                patch_size=spec.patch_size)
        else:
            self.stem = ConvStem(in_chans=in_chans, widths=spec.stem_widths,
                                 strides=spec.stem_strides)
        self.class_token = (
            nn.Parameter(torch.zeros(1, 1, d)) if spec.classifier == "token" else None
        )
        self.pos_embedding = nn.Parameter(torch.zeros(1, tokens, d))
        self.blocks = nn.Sequential(
            *(Block(width=d, heads=spec.heads, mlp_dim=spec.mlp_dim, ln_eps=spec.ln_eps)
              for _ in range(spec.depth))
        )
        self.norm = nn.LayerNorm(d, eps=spec.ln_eps)
        self.head = nn.Linear(d, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.stem.reset_parameters()
        for block in self.blocks:
            block.norm1.reset_parameters()
            block.norm2.reset_parameters()
            block.attn.reset_parameters()
            block.mlp.reset_parameters()
        self.norm.reset_parameters()
        if self.class_token is not None:
            nn.init.zeros_(self.class_token)
        nn.init.normal_(self.pos_embedding, std=0.02)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)
        if self.class_token is not None:
            x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embedding
        if self.class_token is None:
            return self.head(self.norm(self.blocks(x)).mean(dim=1))
        # The head reads the class token alone, so the last block computes only its row
        # (same function and gradients; complexity() still counts pycls's full block).
        x = self.blocks[-1](self.blocks[:-1](x), first_only=True)
        return self.head(self.norm(x[:, 0]))

    @staticmethod
    def complexity(spec: ViTSpec, *, image_size: int, num_classes: int,
                   in_chans: int = 3) -> Cx:
        tokens = spec.tokens(image_size)
        d = spec.width
        cx = Cx(h=image_size, w=image_size)
        if spec.stem == "patchify":
            cx = PatchifyStem.complexity(cx, in_chans=in_chans, width=d,
                                         patch_size=spec.patch_size)
        else:
            cx = ConvStem.complexity(cx, in_chans=in_chans, widths=spec.stem_widths,
                                     strides=spec.stem_strides)
        cx = cx.add(params=tokens * d + (d if spec.classifier == "token" else 0))
        for _ in range(spec.depth):
            cx = Block.complexity(cx, width=d, heads=spec.heads, mlp_dim=spec.mlp_dim,
                                  tokens=tokens)
        cx = norm_cx(cx, d)
        return linear_cx(cx, d, num_classes)

