"""``nn.Linear`` whose CPU matmuls run on oneDNN, where that is the faster fp32 path.

PyTorch's ``F.linear`` on the CPU is ``addmm``: it first copies the broadcast bias into
the output, then runs MKL's GEMM on top of it. oneDNN adds the bias in the GEMM's own
epilogue (no copy), and on CPUs where MKL does not dispatch its AVX-512 kernels (it
checks for a GenuineIntel vendor string; an AMD EPYC with AVX-512 gets MKL's generic
AVX2 path) oneDNN's fp32 GEMM is about 2.2× MKL's. Both are fp32 GEMMs: results differ
at rounding level only.

The forward always takes oneDNN on the CPU. The two backward GEMMs (grad of input and
of weight) take oneDNN only where MKL is on its slow path (``backward_kernel``); on an
Intel CPU MKL's AVX-512 GEMM is as fast and needs no transposed copies. Anywhere else
(CUDA, a torch build without oneDNN, inside ``torch.compile``, which picks its own
kernels) the layer is ``F.linear``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# Set to "aten" or "onednn" to force the backward GEMMs' kernel (tests, benchmarks);
# unset: ``backward_kernel()`` decides from the CPU.
BACKWARD_ENV = "VITSTAB_LINEAR_BACKWARD"


@functools.cache
def onednn_available() -> bool:
    """Whether this torch build has oneDNN's pointwise linear (``torch.ops.mkldnn``)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._linear_pointwise(torch.zeros(1, 1), torch.zeros(1, 1), None,
                                           "none", [], "")
    except (AttributeError, RuntimeError):
        return False
    return True


@functools.cache
def cpu_vendor() -> str:
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``, ...), or ``""``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def backward_kernel() -> str:
    """``aten`` (MKL) or ``onednn`` for the backward GEMMs: oneDNN where MKL would take
    its generic path (any vendor but Intel), unless ``VITSTAB_LINEAR_BACKWARD`` says."""
    forced = os.environ.get(BACKWARD_ENV, "")
    if forced in ("aten", "onednn"):
        return forced
    return "aten" if cpu_vendor() == "GenuineIntel" else "onednn"


def _onednn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """y = x wᵀ + b on 2-D ``x``, forward on oneDNN; backward on ``kernel``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                kernel: str) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.kernel, ctx.has_bias = kernel, b is not None
        return _onednn(x, w, b)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w = ctx.saved_tensors
        gx = gw = gb = None
        onednn = ctx.kernel == "onednn"
        if ctx.needs_input_grad[0]:
            gx = _onednn(g, w.t().contiguous(), None) if onednn else g.mm(w)
        if ctx.needs_input_grad[1]:
            gw = _onednn(g.t(), x.t(), None) if onednn else g.t().mm(x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum(0)
        return gx, gw, gb, None


class Linear(nn.Linear):
    """A drop-in ``nn.Linear`` (same parameters, state-dict keys and init)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.compiler.is_compiling() or x.device.type != "cpu"
                or x.dtype != torch.float32 or not onednn_available()):
            return F.linear(x, self.weight, self.bias)
        shape = x.shape
        y = _OneDNNLinear.apply(x.reshape(-1, shape[-1]).contiguous(), self.weight, self.bias,
                                backward_kernel())
        return y.view(*shape[:-1], self.out_features)
