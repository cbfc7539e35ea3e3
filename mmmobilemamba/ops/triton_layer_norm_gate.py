"""SS2D's output LayerNorm and SiLU gate in one Triton kernel (inference only).

::

    out[b, :, t] = (layer_norm(y[b, :, t]) * weight + bias) * silu(gate[b, :, t])

The generic path permutes the map to channels-last for ``F.layer_norm``, permutes back, casts and
multiplies by a separately computed ``silu(gate)``: several passes over memory. Here one program
holds all channels of a block of tokens, normalises them in float32 registers and writes the
gated result once, in the dtype the next convolution runs in.

Shapes::

    y            (batch, C, L)   any strides, any float dtype (the scan's float32 output)
    gate         (batch, C, L)   any strides (a channel slice of ``in_proj``'s output is fine)
    weight, bias (C,)
    returns      (batch, C, L) in ``out_dtype``, channels-last (stride 1 over C) when gate is
"""
import torch
import triton
import triton.language as tl

from ._common import empty_in_layout

__all__ = ['layer_norm_gate_triton']


@triton.jit
def _layer_norm_gate_kernel(y_ptr, gate_ptr, w_ptr, b_ptr, out_ptr, C, L, eps,
                            s_yb, s_yc, s_yl, s_gb, s_gc, s_gl, s_ob, s_oc, s_ol,
                            BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_l = tl.program_id(1)
    offs_c = tl.arange(0, BLOCK_C)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    mask_c = offs_c < C
    mask = mask_c[:, None] & (offs_l < L)[None, :]
    y = tl.load(y_ptr + pid_b * s_yb + offs_c[:, None] * s_yc + offs_l[None, :] * s_yl, mask=mask, other=0.0)
    y = y.to(tl.float32)
    mean = tl.sum(y, axis=0) / C
    centred = tl.where(mask, y - mean[None, :], 0.0)
    rstd = tl.rsqrt(tl.sum(centred * centred, axis=0) / C + eps)
    w = tl.load(w_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)
    g = tl.load(gate_ptr + pid_b * s_gb + offs_c[:, None] * s_gc + offs_l[None, :] * s_gl, mask=mask, other=0.0)
    g = g.to(tl.float32)
    out = (centred * rstd[None, :] * w[:, None] + b[:, None]) * (g * tl.sigmoid(g))
    out_ptrs = out_ptr + pid_b * s_ob + offs_c[:, None] * s_oc + offs_l[None, :] * s_ol
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=mask)


def layer_norm_gate_triton(y: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                           eps: float, out_dtype: torch.dtype) -> torch.Tensor:
    """``(layer_norm over C of y) * silu(gate)``; shapes in the module doc."""
    if y.dim() != 3 or gate.shape != y.shape or weight.shape != (y.shape[1],) or bias.shape != weight.shape:
        raise ValueError(f'layer_norm_gate_triton expects y and gate (batch, C, L) and weight, bias (C,); got '
                         f'y {tuple(y.shape)}, gate {tuple(gate.shape)}, weight {tuple(weight.shape)}, '
                         f'bias {tuple(bias.shape)}')
    batch, channels, length = y.shape
    block_c = triton.next_power_of_2(channels)
    # about 4096 elements per tile, at least 8 tokens per row (32-byte float32 segments)
    block_l = max(8, min(triton.next_power_of_2(length), 4096 // block_c))
    warps = 8 if block_c * block_l >= 8192 else 4
    out = empty_in_layout(gate, out_dtype)
    grid = (batch, triton.cdiv(length, block_l))
    _layer_norm_gate_kernel[grid](y, gate, weight.contiguous(), bias.contiguous(), out, channels, length, eps,
                                  *y.stride(), *gate.stride(), *out.stride(),
                                  BLOCK_C=block_c, BLOCK_L=block_l, num_warps=warps)
    return out
