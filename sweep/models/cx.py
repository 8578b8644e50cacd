"""Analytic complexity counting, pycls conventions.

One fused multiply-add is one flop; activations count the elements of every conv,
linear and attention output; norms add params only. Each layer helper returns a new
``Cx`` so modules can chain them in the order their forward runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Cx:
    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0

    def add(self, flops: int = 0, params: int = 0, acts: int = 0) -> Cx:
        return replace(
            self, flops=self.flops + flops, params=self.params + params, acts=self.acts + acts
        )


def conv2d_cx(cx: Cx, w_in: int, w_out: int, k: int, *, stride: int = 1, bias: bool = False,
              padding: int | None = None, groups: int = 1) -> Cx:
    pad = (k - 1) // 2 if padding is None else padding
    h = (cx.h + 2 * pad - k) // stride + 1
    w = (cx.w + 2 * pad - k) // stride + 1
    out = w_out * h * w
    cx = replace(cx, h=h, w=w)
    return cx.add(
        flops=k * k * (w_in // groups) * out + (out if bias else 0),
        params=k * k * (w_in // groups) * w_out + (w_out if bias else 0),
        acts=out,
    )


def norm_cx(cx: Cx, w_in: int) -> Cx:
    return cx.add(params=2 * w_in)


def linear_cx(cx: Cx, w_in: int, w_out: int, *, bias: bool = True, locations: int = 1) -> Cx:
    return cx.add(
        flops=(w_in * w_out + (w_out if bias else 0)) * locations,
        params=w_in * w_out + (w_out if bias else 0),
        acts=w_out * locations,
    )
