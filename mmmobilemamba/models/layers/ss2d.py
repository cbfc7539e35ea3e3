"""Bidirectional 2-D selective scan (the global branch of WTE-Mamba).

A VMamba-style SS2D block in channel-first layout with two scan directions (the flattened map
forwards and reversed), ``d_state`` states and the release's "v2" initialisation. Parameter names
follow the official MobileMamba release (``in_proj``, ``conv2d``, ``x_proj_weight``,
``dt_projs_weight``, ``dt_projs_bias``, ``A_logs``, ``Ds``, ``out_norm``, ``out_proj``).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from mmmobilemamba.ops import selective_scan, triton_inference_kernel

from .conv_bn import ConvBN

__all__ = ['LayerNorm2d', 'BiSS2D', 'flattened_selective_scan', 'init_scan_parameters']


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def flattened_selective_scan(x: torch.Tensor, x_proj_weight: torch.Tensor,
                             dt_projs_weight: torch.Tensor, dt_projs_bias: torch.Tensor,
                             A_logs: torch.Tensor, Ds: torch.Tensor) -> torch.Tensor:
    """Selective scan over the row-major flattened map, (B, D, H, W) -> float32 (B, D, H, W).

    With K = 1 direction the map is scanned forwards; with K = 2 forwards and reversed, and the
    two outputs are summed (the release's bidirectional "v052d" scan). For K = 2 inference on CUDA
    both directions run in one fused kernel (``triton_inference_kernel('bidirectional_scan')``).

    Args:
        x_proj_weight: (K, R + 2N, D) input-dependent projections to (dt, B, C).
        dt_projs_weight: (K, D, R); dt_projs_bias: (K, D).
        A_logs: (K*D, N), ``A = -exp(A_logs)``; Ds: (K*D,) skip weights.
    """
    batch, channels, height, width = x.shape
    length = height * width
    directions, _, rank = dt_projs_weight.shape
    if directions not in (1, 2):
        raise ValueError(f'flattened_selective_scan supports 1 or 2 directions, got {directions}')
    states = A_logs.shape[1]
    seq = x.flatten(2)
    A = -torch.exp(A_logs.float())
    fused = (triton_inference_kernel('bidirectional_scan', seq, x_proj_weight, dt_projs_weight,
                                     dt_projs_bias, A_logs, Ds) if directions == 2 else None)
    if fused is not None:  # projections of the un-flipped sequence; direction 1 is read backwards
        x_dbl = torch.einsum('bdl,kcd->bkcl', seq, x_proj_weight.to(seq.dtype))
        y = fused(seq, x_dbl, dt_projs_weight, A, Ds.float(), dt_projs_bias.reshape(-1).float())
        return y.view(batch, channels, height, width)
    xs = torch.stack([seq, seq.flip(-1)][:directions], dim=1)                 # (B, K, D, L)
    x_dbl = torch.einsum('bkdl,kcd->bkcl', xs, x_proj_weight.to(xs.dtype))
    dts, Bs, Cs = torch.split(x_dbl, [rank, states, states], dim=2)
    dts = torch.einsum('bkrl,kdr->bkdl', dts, dt_projs_weight.to(dts.dtype))
    ys = selective_scan(xs.reshape(batch, directions * channels, length),
                        dts.reshape(batch, directions * channels, length),
                        A, Bs, Cs, Ds.float(),
                        dt_projs_bias.reshape(-1).float(), delta_softplus=True)
    ys = ys.view(batch, directions, channels, length)
    y = ys[:, 0] + ys[:, 1].flip(-1) if directions == 2 else ys[:, 0]
    return y.view(batch, channels, height, width)


def init_scan_parameters(module: nn.Module, channels: int, rank: int, d_state: int, directions: int):
    """Create the scan parameters on ``module`` with the release's "v2" initialisation."""
    bound = channels ** -0.5  # nn.Linear's default init range for the (dt, B, C) projections
    module.x_proj_weight = nn.Parameter(
        torch.empty(directions, rank + 2 * d_state, channels).uniform_(-bound, bound))
    module.dt_projs_weight = nn.Parameter(0.1 * torch.rand(directions, channels, rank))
    module.dt_projs_bias = nn.Parameter(0.1 * torch.rand(directions, channels))
    module.A_logs = nn.Parameter(torch.zeros(directions * channels, d_state))
    module.Ds = nn.Parameter(torch.ones(directions * channels))


class BiSS2D(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): gated bidirectional selective scan.

    ``in_proj`` (1x1 Conv-BN to 2*D, D = ssm_ratio*C) splits into the scanned path (depthwise
    3x3 conv, SiLU, bidirectional :func:`flattened_selective_scan`, LayerNorm) and a SiLU gate; their
    product goes through ``out_proj`` (1x1 Conv-BN back to C). For eager inference on CUDA the norm
    and gate run in one kernel (``triton_inference_kernel('layer_norm_gate')``).
    """

    def __init__(self, channels: int, d_state: int = 1, ssm_ratio: float = 2.0, d_conv: int = 3):
        super().__init__()
        inner = int(ssm_ratio * channels)
        rank = math.ceil(channels / 16)
        self.in_proj = ConvBN(channels, 2 * inner)
        self.act = nn.SiLU()
        self.conv2d = nn.Conv2d(inner, inner, d_conv, padding=(d_conv - 1) // 2, groups=inner, bias=True)
        init_scan_parameters(self, inner, rank, d_state, directions=2)
        self.out_norm = LayerNorm2d(inner)
        self.out_proj = ConvBN(inner, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.in_proj(x).chunk(2, dim=1)
        x = self.act(self.conv2d(x))
        y = flattened_selective_scan(x, self.x_proj_weight, self.dt_projs_weight,
                                     self.dt_projs_bias, self.A_logs, self.Ds)
        return self.out_proj(self.norm_and_gate(y, gate, x.dtype))

    def norm_and_gate(self, y: torch.Tensor, gate: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``out_norm(y) * silu(gate)`` in ``dtype``; y float32 (B, D, H, W), gate (B, D, H, W)."""
        norm = self.out_norm
        # under torch.compile, inductor fuses these ops with their neighbours: faster than our kernel
        fused = (None if torch.compiler.is_compiling()
                 else triton_inference_kernel('layer_norm_gate', y, gate, norm.weight, norm.bias))
        if fused is not None:
            return fused(y.flatten(2), gate.flatten(2), norm.weight, norm.bias, norm.eps, dtype).view(gate.shape)
        return norm(y).to(dtype) * self.act(gate)
