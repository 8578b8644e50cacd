"""RegNetY, the CNN baseline of Xiao et al. 2021, as pycls defines it.

Follows ``pycls/models/regnet.py`` and ``pycls/models/anynet.py`` (Radosavovic et al.,
*Designing Network Design Spaces*, 2020): a stem (``simple_stem_in``: 3×3 stride-2 conv,
BN, ReLU; or ``res_stem_cifar``: the same at stride 1, for small images), stages of
residual bottleneck blocks with group convs and squeeze-excitation (the "Y"), then global
average pool and a linear head. The stages come either from the quantized linear rule
(w0, wa, wm, depth; pycls ``MODEL.TYPE: regnet``) or are listed one by one (per-stage
depths, widths, group widths, strides; pycls ``MODEL.TYPE: anynet``), as the authors'
configs give them. Module names match pycls's, so a pycls state dict loads as is.

Every module has a ``complexity`` static method beside its ``forward``, counting as pycls
does (:mod:`sweep.models.cx`): one multiply-add is one flop, acts are conv/linear output
elements, BN adds params only, pooling adds nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from sweep.errors import UserError
from sweep.models.cx import Cx, conv2d_cx, linear_cx, norm_cx

STEM_TYPES = ("simple_stem_in", "res_stem_cifar")
# The per-stage fields of the explicit (pycls AnyNet) form.
EXPLICIT = ("depths", "widths", "group_widths", "strides")
STAGE_STRIDE = 2  # pycls cfg.REGNET.STRIDE: every stage of the rule form strides 2


def generate_regnet(wa: float, w0: int, wm: float, depth: int, q: int = 8
                    ) -> tuple[list[int], list[int]]:
    """Per-stage widths and depths from the linear rule, quantized as pycls does: block j
    gets width w0 + wa·j, snapped to w0·wm^k (k rounded) and to a multiple of q; runs of
    equal widths form the stages."""
    ws_cont = np.arange(depth) * wa + w0
    ks = np.round(np.log(ws_cont / w0) / np.log(wm))
    ws_all = np.round(np.divide(w0 * np.power(wm, ks), q)).astype(int) * q
    ws, ds = np.unique(ws_all, return_counts=True)
    return [int(w) for w in ws], [int(d) for d in ds]


def adjust_block_compatibility(ws: list[int], bs: list[float], gs: list[int]
                               ) -> tuple[list[int], list[float], list[int]]:
    """pycls's fix-up: clip each group width to the bottleneck width, then round the
    bottleneck width to a multiple of the group width (and of the bottleneck ratio)."""
    vs = [int(max(1, w * b)) for w, b in zip(ws, bs, strict=True)]
    gs = [int(min(g, v)) for g, v in zip(gs, vs, strict=True)]
    ms = [math.lcm(g, int(b)) if b > 1 else g for g, b in zip(gs, bs, strict=True)]
    vs = [max(m, int(round(v / m) * m)) for v, m in zip(vs, ms, strict=True)]
    ws = [int(v / b) for v, b in zip(vs, bs, strict=True)]
    return ws, bs, gs


@dataclass(frozen=True)
class RegNetSpec:
    """Architecture of one RegNet, in either of pycls's two forms:

    - the RegNet rule (``cfg.REGNET``): ``depth`` blocks in all, widths from the linear
      rule (``w0``, ``wa``, ``wm``), one ``group_width``, every stage striding 2;
    - AnyNet's explicit stages (``cfg.ANYNET``): per stage ``depths``, ``widths``,
      ``group_widths`` and ``strides`` (``depth`` is then their block total).

    Both share the bottleneck ratio, the SE ratio (of the block's input width; 0 turns SE
    off, a RegNetX), the stem type and width. The first block of a stage strides."""

    depth: int = 0
    w0: int = 0
    wa: float = 0.0
    wm: float = 0.0
    group_width: int = 0
    depths: tuple[int, ...] = ()
    widths: tuple[int, ...] = ()
    group_widths: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    se_ratio: float = 0.25
    stem_width: int = 32
    bottleneck: float = 1.0
    stem_type: str = "simple_stem_in"
    zero_init_final_gamma: bool = False

    def __post_init__(self) -> None:
        if self.explicit and not self.depth:  # the block total, as the rule form states it
            object.__setattr__(self, "depth", sum(self.depths))
        self.validate()

    @property
    def stem(self) -> str:
        """For result tables, whose ``stem`` column tells ViT_P ('patchify'), ViT_C
        ('conv') and the CNN baseline ('cnn') apart."""
        return "cnn"

    @property
    def explicit(self) -> bool:
        """Whether the stages are given one by one (AnyNet) rather than by the rule."""
        return bool(self.depths or self.widths or self.group_widths or self.strides)

    def validate(self) -> None:
        if self.stem_width < 1:
            raise UserError(f"model.stem_width must be a positive integer, got {self.stem_width}")
        if not 0 <= self.se_ratio < 1:
            raise UserError(f"model.se_ratio must be in [0, 1), got {self.se_ratio}")
        b = self.bottleneck
        if b <= 0 or (b > 1 and b % 1):
            raise UserError(f"model.bottleneck must be in (0, 1] or a whole number, got {b}")
        if self.stem_type not in STEM_TYPES:
            raise UserError(f"unknown model.stem_type '{self.stem_type}'; use one of: "
                            f"{', '.join(STEM_TYPES)}")
        if self.explicit:
            self._validate_explicit()
        else:
            self._validate_rule()

    def _validate_rule(self) -> None:
        for key in ("depth", "w0", "group_width"):
            if getattr(self, key) < 1:
                raise UserError(f"model.{key} must be a positive integer, got "
                                f"{getattr(self, key)} (or give the stages one by one: "
                                f"model.{', model.'.join(EXPLICIT)})")
        if self.wa < 0:
            raise UserError(f"model.wa must be >= 0, got {self.wa}")
        if self.wm <= 1:
            raise UserError(f"model.wm must be > 1, got {self.wm}")
        if self.w0 % 8:
            raise UserError(f"model.w0={self.w0} must be a multiple of 8 (the width quantum)")

    def _validate_explicit(self) -> None:
        if self.w0 or self.wa or self.wm or self.group_width:
            raise UserError("model.w0/wa/wm/group_width (the width rule) and model."
                            f"{'/'.join(EXPLICIT)} (explicit stages) both given; keep one")
        lists = {key: getattr(self, key) for key in EXPLICIT}
        if len({len(v) for v in lists.values()}) != 1:
            sizes = ", ".join(f"{k} {len(v)}" for k, v in lists.items())
            raise UserError(f"model.{'/'.join(EXPLICIT)} need one entry per stage each; "
                            f"got {sizes}")
        for key, values in lists.items():
            if min(values) < 1:
                raise UserError(f"model.{key} must be positive integers, got {list(values)}")
        if self.depth != sum(self.depths):
            raise UserError(f"model.depth={self.depth} must be sum(model.depths)="
                            f"{sum(self.depths)}, or left out")
        for w, g in zip(self.widths, self.group_widths, strict=True):
            w_b = int(round(w * self.bottleneck))
            if w_b % g:
                raise UserError(f"model.group_widths: {g} does not divide the bottleneck width "
                                f"{w_b} of the width-{w} stage; pick a divisor")

    def stages(self) -> list[tuple[int, int, int, int]]:
        """(width, depth, group width, stride) per stage: as given, or from the rule after
        pycls's compatibility fix-up, every stage striding ``STAGE_STRIDE``."""
        if self.explicit:
            return list(zip(self.widths, self.depths, self.group_widths, self.strides,
                            strict=True))
        ws, ds = generate_regnet(self.wa, self.w0, self.wm, self.depth)
        ws, _, gs = adjust_block_compatibility(ws, [self.bottleneck] * len(ws),
                                               [self.group_width] * len(ws))
        return [(w, d, g, STAGE_STRIDE) for w, d, g in zip(ws, ds, gs, strict=True)]


def _bn(w: int, *, final: bool = False) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(w, eps=1e-5, momentum=0.1)
    bn.final_bn = final  # the block's last BN: zero-initialized when asked
    return bn


class SimpleStem(nn.Module):
    """3×3 conv (stride 2 for ImageNet, ``simple_stem_in``; stride 1 for small images,
    pycls's ``res_stem_cifar``), BN, ReLU."""

    def __init__(self, *, in_chans: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, width, 3, stride=stride, padding=1, bias=False)
        self.bn = _bn(width)
        self.af = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.af(self.bn(self.conv(x)))

    @staticmethod
    def complexity(cx: Cx, *, in_chans: int, width: int, stride: int) -> Cx:
        return norm_cx(conv2d_cx(cx, in_chans, width, 3, stride=stride), width)


class SE(nn.Module):
    """Squeeze-excitation: global average pool, 1×1 conv, ReLU, 1×1 conv, sigmoid, scale."""

    def __init__(self, *, width: int, w_se: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.f_ex = nn.Sequential(
            nn.Conv2d(width, w_se, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(w_se, width, 1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.f_ex(self.avg_pool(x))

    @staticmethod
    def complexity(cx: Cx, *, width: int, w_se: int) -> Cx:
        pooled = replace(cx, h=1, w=1)
        pooled = conv2d_cx(pooled, width, w_se, 1, bias=True)
        pooled = conv2d_cx(pooled, w_se, width, 1, bias=True)
        return replace(pooled, h=cx.h, w=cx.w)


class BottleneckTransform(nn.Module):
    """1×1 conv-BN-ReLU, 3×3 group conv (stride s)-BN-ReLU, [SE], 1×1 conv-BN."""

    def __init__(self, *, w_in: int, w_out: int, stride: int, bottleneck: float,
                 group_width: int, se_ratio: float) -> None:
        super().__init__()
        w_b = int(round(w_out * bottleneck))
        w_se = int(round(w_in * se_ratio))  # of the block's input width, as pycls
        self.a = nn.Conv2d(w_in, w_b, 1, bias=False)
        self.a_bn = _bn(w_b)
        self.a_af = nn.ReLU(inplace=True)
        self.b = nn.Conv2d(w_b, w_b, 3, stride=stride, padding=1, groups=w_b // group_width,
                           bias=False)
        self.b_bn = _bn(w_b)
        self.b_af = nn.ReLU(inplace=True)
        self.se = SE(width=w_b, w_se=w_se) if w_se else None
        self.c = nn.Conv2d(w_b, w_out, 1, bias=False)
        self.c_bn = _bn(w_out, final=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.b_af(self.b_bn(self.b(self.a_af(self.a_bn(self.a(x))))))
        if self.se is not None:
            x = self.se(x)
        return self.c_bn(self.c(x))

    @staticmethod
    def complexity(cx: Cx, *, w_in: int, w_out: int, stride: int, bottleneck: float,
                   group_width: int, se_ratio: float) -> Cx:
        w_b = int(round(w_out * bottleneck))
        w_se = int(round(w_in * se_ratio))
        cx = norm_cx(conv2d_cx(cx, w_in, w_b, 1), w_b)
        cx = norm_cx(conv2d_cx(cx, w_b, w_b, 3, stride=stride, groups=w_b // group_width), w_b)
        if w_se:
            cx = SE.complexity(cx, width=w_b, w_se=w_se)
        return norm_cx(conv2d_cx(cx, w_b, w_out, 1), w_out)


class ResBottleneckBlock(nn.Module):
    """ReLU(proj(x) + f(x)), proj a 1×1 conv + BN where the shape changes, else identity."""

    def __init__(self, *, w_in: int, w_out: int, stride: int, bottleneck: float,
                 group_width: int, se_ratio: float) -> None:
        super().__init__()
        self.proj: nn.Module | None = None
        self.bn: nn.Module | None = None
        if w_in != w_out or stride != 1:
            self.proj = nn.Conv2d(w_in, w_out, 1, stride=stride, bias=False)
            self.bn = _bn(w_out)
        self.f = BottleneckTransform(w_in=w_in, w_out=w_out, stride=stride,
                                     bottleneck=bottleneck, group_width=group_width,
                                     se_ratio=se_ratio)
        self.af = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_p = self.bn(self.proj(x)) if self.proj is not None else x
        return self.af(x_p + self.f(x))

    @staticmethod
    def complexity(cx: Cx, *, w_in: int, w_out: int, stride: int, bottleneck: float,
                   group_width: int, se_ratio: float) -> Cx:
        if w_in != w_out or stride != 1:
            shortcut = norm_cx(conv2d_cx(cx, w_in, w_out, 1, stride=stride), w_out)
            cx = replace(shortcut, h=cx.h, w=cx.w)
        return BottleneckTransform.complexity(cx, w_in=w_in, w_out=w_out, stride=stride,
                                              bottleneck=bottleneck, group_width=group_width,
                                              se_ratio=se_ratio)


class Stage(nn.Module):
    """``depth`` blocks of width ``w_out``; the first one strides and changes width."""

    def __init__(self, *, w_in: int, w_out: int, stride: int, depth: int, bottleneck: float,
                 group_width: int, se_ratio: float) -> None:
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", ResBottleneckBlock(
                w_in=w_in, w_out=w_out, stride=stride, bottleneck=bottleneck,
                group_width=group_width, se_ratio=se_ratio))
            stride, w_in = 1, w_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x

    @staticmethod
    def complexity(cx: Cx, *, w_in: int, w_out: int, stride: int, depth: int,
                   bottleneck: float, group_width: int, se_ratio: float) -> Cx:
        for _ in range(depth):
            cx = ResBottleneckBlock.complexity(cx, w_in=w_in, w_out=w_out, stride=stride,
                                               bottleneck=bottleneck, group_width=group_width,
                                               se_ratio=se_ratio)
            stride, w_in = 1, w_out
        return cx


class Head(nn.Module):
    """Global average pool, linear (pycls ``AnyHead`` with ``HEAD_W = 0``)."""

    def __init__(self, *, w_in: int, num_classes: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(w_in, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avg_pool(x).flatten(1))

    @staticmethod
    def complexity(cx: Cx, *, w_in: int, num_classes: int) -> Cx:
        return linear_cx(replace(cx, h=1, w=1), w_in, num_classes)



class RegNet(nn.Module):
    """Stem → stages s1…sN → head, as pycls ``AnyNet`` built from ``RegNet.get_params``."""

    def __init__(self, spec: RegNetSpec, *, image_size: int, num_classes: int,
                 in_chans: int = 3) -> None:
        super().__init__()
        if image_size < 1:
            raise UserError(f"image size must be positive, got {image_size}")
        self.spec = spec
        self.stem = SimpleStem(in_chans=in_chans, width=spec.stem_width,
                               stride=_stem_stride(spec))
        w_in = spec.stem_width
        for i, (w, d, g, s) in enumerate(spec.stages()):
            self.add_module(f"s{i + 1}", Stage(
                w_in=w_in, w_out=w, stride=s, depth=d, bottleneck=spec.bottleneck,
                group_width=g, se_ratio=spec.se_ratio))
            w_in = w
        self.head = Head(w_in=w_in, num_classes=num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """pycls ``init_weights``: conv weights N(0, sqrt(2 / (k·k·out))) (conv biases,
        only SE's, keep PyTorch's default), BN γ=1 (0 for each block's last BN if
        ``zero_init_final_gamma``; pycls's default is off) and β=0, linear N(0, 0.01)
        with zero bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                zero = getattr(m, "final_bn", False) and self.spec.zero_init_final_gamma
                nn.init.constant_(m.weight, 0.0 if zero else 1.0)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x

    @staticmethod
    def complexity(spec: RegNetSpec, *, image_size: int, num_classes: int,
                   in_chans: int = 3) -> Cx:
        cx = Cx(h=image_size, w=image_size)
        cx = SimpleStem.complexity(cx, in_chans=in_chans, width=spec.stem_width,
                                   stride=_stem_stride(spec))
        w_in = spec.stem_width
        for w, d, g, s in spec.stages():
            cx = Stage.complexity(cx, w_in=w_in, w_out=w, stride=s, depth=d,
                                  bottleneck=spec.bottleneck, group_width=g,
                                  se_ratio=spec.se_ratio)
            w_in = w
        return Head.complexity(cx, w_in=w_in, num_classes=num_classes)


def _stem_stride(spec: RegNetSpec) -> int:
    return 2 if spec.stem_type == "simple_stem_in" else 1
