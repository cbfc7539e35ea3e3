"""Bilinear resizing as two small matrix products, equal to ``F.interpolate(mode='bilinear')``.

Bilinear interpolation is separable: ``y = A_h @ x @ A_w^T`` with ``A_h`` (H_out, H_in) and
``A_w`` (W_out, W_in) holding each output row's (column's) two interpolation weights. Built with
PyTorch's own source-index rule (``align_corners`` both ways, any sizes), the product equals
``F.interpolate`` up to float rounding, and its backward is ``A_h^T @ dy @ A_w``: two dense GEMMs
where ``F.interpolate``'s CUDA backward scatters with atomics. That scatter is slow when a small
map is blown up a lot (a segmentation head's 8x8 logits to 512x512: every input pixel receives
4096 atomic adds per channel).
"""
import functools
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ['bilinear_matrix', 'bilinear_resize_gemm']


@functools.lru_cache(maxsize=64)
def bilinear_matrix(in_size: int, out_size: int, align_corners: bool,
                    device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(out_size, in_size) matrix of 1-D linear interpolation weights, as ``F.interpolate`` uses.

    Source coordinate of output index ``i``: ``i * (in - 1) / (out - 1)`` with ``align_corners``,
    else ``(i + 0.5) * in / out - 0.5`` clamped at 0; weights ``1 - frac`` and ``frac`` go to the
    two neighbouring inputs (the right one clamped to the last input). Computed in float32 as
    PyTorch's kernels do for float inputs (float64 for float64). Cached: do not modify the result.
    """
    work = torch.float64 if dtype == torch.float64 else torch.float32
    dst = torch.arange(out_size, dtype=work)
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = dst * torch.tensor(scale, dtype=work)
    else:
        scale = torch.tensor(in_size, dtype=work) / out_size
        src = (scale * (dst + 0.5) - 0.5).clamp_min(0.0)
    left = src.long().clamp_max(in_size - 1)
    right = (left + 1).clamp_max(in_size - 1)
    frac = src - left.to(work)
    matrix = torch.zeros(out_size, in_size, dtype=work)
    rows = torch.arange(out_size)
    matrix.index_put_((rows, left), 1.0 - frac, accumulate=True)
    matrix.index_put_((rows, right), frac, accumulate=True)
    return matrix.to(device=device, dtype=dtype)


class _SeparableResize(torch.autograd.Function):
    """y = A_h @ x @ A_w^T over the last two dims, computed in float32 (float64 for float64 input)
    outside autocast, returned in x's dtype; the backward is the transposed product."""

    @staticmethod
    def forward(ctx, x, a_h, a_w):
        ctx.save_for_backward(a_h, a_w)
        ctx.in_dtype = x.dtype
        with torch.autocast(x.device.type, enabled=False):
            return _apply(x.to(a_h.dtype), a_h, a_w).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        a_h, a_w = ctx.saved_tensors
        return _apply(grad.to(a_h.dtype), a_h.t(), a_w.t()).to(ctx.in_dtype), None, None


def _apply(x: torch.Tensor, a_h: torch.Tensor, a_w: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., H', W') for a_h (H', H), a_w (W', W); the cheaper order first."""
    *lead, height, width = x.shape
    out_h, out_w = a_h.shape[0], a_w.shape[0]
    if out_h * width <= height * out_w:  # rows first: the intermediate (..., H', W) is smaller
        y = torch.matmul(a_h, x)                                   # (..., H', W)
        return (y.reshape(-1, width) @ a_w.t()).reshape(*lead, out_h, out_w)
    y = (x.reshape(-1, width) @ a_w.t()).reshape(*lead, height, out_w)
    return torch.matmul(a_h, y)


def bilinear_resize_gemm(x: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """``F.interpolate(x, size, mode='bilinear', align_corners=align_corners)`` as two GEMMs.

    Args:
        x: (B, C, H, W) float tensor.
        size: (H_out, W_out).
        align_corners: as in ``F.interpolate`` (mmseg's heads use False).

    Returns:
        (B, C, H_out, W_out) tensor in x's dtype. The products run in float32 (float64 for float64
        input) whatever the autocast state, so half-precision inputs are rounded once, like
        ``F.interpolate``'s. Where no gradient is wanted (inference, export) or the size is
        unchanged, it is ``F.interpolate`` itself: the same values, a forward as fast, and an
        ONNX ``Resize`` when exported; the matrix form is for the backward.

    Example:
        >>> x = torch.randn(2, 150, 8, 8, requires_grad=True)
        >>> bilinear_resize_gemm(x, (512, 512)).shape
        torch.Size([2, 150, 512, 512])
    """
    out_h, out_w = int(size[0]), int(size[1])
    height, width = x.shape[-2:]
    if (out_h, out_w) == (height, width) or not (torch.is_grad_enabled() and x.requires_grad):
        return F.interpolate(x, (out_h, out_w), mode='bilinear', align_corners=align_corners)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    a_h = bilinear_matrix(height, out_h, bool(align_corners), x.device, work)
    a_w = bilinear_matrix(width, out_w, bool(align_corners), x.device, work)
    return _SeparableResize.apply(x, a_h, a_w)
