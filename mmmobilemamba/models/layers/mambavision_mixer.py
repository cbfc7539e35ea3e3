"""MambaVision-style mixer (after Hatamizadeh & Kautz, arXiv 2407.08083) as an alternative global mixer.

A 2-D, non-causal adaptation of the MambaVision mixer: it works on (B, C, H, W) maps with 2-D
depthwise convolutions and scans the row-major flattened map. Two symmetric halves after a shared input projection::

    X1 = Scan(SiLU(DWConv(x1)))     regular (non-causal) 3x3 depthwise conv, forward scan
    X2 = SiLU(DWConv(x2))           no SSM: recovers content the sequential scan may lose
    out = Proj(Concat(X1, X2))

Selected with ``MobileMamba(global_mixer='mambavision')``; it replaces the release's
bidirectional SS2D inside WTE-Mamba (so release checkpoints do not apply to it).
"""
import math

import torch
from torch import nn

from .conv_bn import ConvBN
from .ss2d import flattened_selective_scan, init_scan_parameters

__all__ = ['MambaVisionMixer']


class MambaVisionMixer(nn.Module):
    """MambaVision-style mixer, (B, C, H, W) -> (B, C, H, W): ``ssm_ratio * C`` inner channels, half
    scanned, half not. ``scan_backend`` picks the selective-scan backend (set by
    ``MobileMamba(scan_backend=...)``)."""

    def __init__(self, channels: int, d_state: int = 1, ssm_ratio: float = 2.0, d_conv: int = 3,
                 scan_backend: str = 'auto'):
        super().__init__()
        self.scan_backend = scan_backend
        half = int(ssm_ratio * channels) // 2
        self.in_proj = ConvBN(channels, 2 * half)
        self.act = nn.SiLU()
        self.conv_ssm = nn.Conv2d(half, half, d_conv, padding=d_conv // 2, groups=half, bias=True)
        self.conv_skip = nn.Conv2d(half, half, d_conv, padding=d_conv // 2, groups=half, bias=True)
        init_scan_parameters(self, half, math.ceil(channels / 16), d_state, directions=1)
        self.out_proj = ConvBN(2 * half, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_ssm, x_skip = self.in_proj(x).chunk(2, dim=1)
        x_ssm = self.act(self.conv_ssm(x_ssm))
        y = flattened_selective_scan(x_ssm, self.x_proj_weight, self.dt_projs_weight, self.dt_projs_bias,
                                     self.A_logs, self.Ds, self.scan_backend).to(x_ssm.dtype)
        return self.out_proj(torch.cat([y, self.act(self.conv_skip(x_skip))], dim=1))
