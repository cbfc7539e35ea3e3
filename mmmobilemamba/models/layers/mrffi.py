"""MRFFI: Multi-Receptive Field Feature Interaction (the MobileMamba token mixer).

Channels are split into a global part (WTE-Mamba), a local part (MK-DeConv: depthwise
convolution) and an identity part; the three are concatenated, passed through ReLU and fused
by a 1x1 Conv-BN. Names follow the release's ``MobileMambaModule`` (``global_op``,
``local_op``, ``proj``) so its checkpoints load.
"""
from typing import Sequence, Tuple, Union

import torch
from torch import nn

from .conv_bn import ConvBN, fuse_conv_bn, split_batchnorm
from .wte_mamba import WTEMamba

__all__ = ['split_channels', 'MKDeConv', 'MRFFI']


def _round_to_16(n: int) -> int:
    """Nearest multiple of 16 (ties go up), as the release rounds the global channel count."""
    lower = n // 16 * 16
    return lower if n - lower < lower + 16 - n else lower + 16


def split_channels(dim: int, global_ratio: float, local_ratio: float) -> Tuple[int, int, int]:
    """(global, local, identity) channel counts of an MRFFI module with ``dim`` channels."""
    global_channels = _round_to_16(int(global_ratio * dim))
    if global_channels > dim:
        raise ValueError(f'global_ratio={global_ratio} gives {global_channels} global channels '
                         f'for a {dim}-channel stage')
    local_channels = int(local_ratio * dim)
    if global_channels + local_channels > dim:
        local_channels = dim - global_channels
    return global_channels, local_channels, dim - global_channels - local_channels


class MKDeConv(nn.Module):
    """Multi-kernel depthwise convolution, (B, C, H, W) -> (B, C, H, W).

    The channels are divided into ``len(kernel_sizes)`` groups, group ``j`` filtered by a
    ``kernel_sizes[j]`` depthwise conv, then BN, ReLU, a depthwise 1x1 conv and BN. With one
    kernel (the released models: 7/5/3 for stages 1/2/3) the children are named as the release's
    ``DWConv2d_BN_ReLU`` (``dwconv3x3``, ``bn1``, ``relu``, ``dwconv1x1``, ``bn2``).
    """

    def __init__(self, channels: int, kernel_sizes: Union[int, Sequence[int]] = 3):
        super().__init__()
        kernel_sizes = (kernel_sizes,) if isinstance(kernel_sizes, int) else tuple(kernel_sizes)
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f'MK-DeConv kernel sizes must be odd, got {kernel_sizes}')
        if len(kernel_sizes) == 1:
            k = kernel_sizes[0]
            self.dwconv3x3 = nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels, bias=False)
        else:
            base, extra = divmod(channels, len(kernel_sizes))
            self.group_channels = [base + (j < extra) for j in range(len(kernel_sizes))]
            self.dwconvs = nn.ModuleList(
                nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False)
                for c, k in zip(self.group_channels, kernel_sizes))
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.dwconv1x1 = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def spatial_conv(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, 'dwconv3x3'):
            return self.dwconv3x3(x)
        parts = torch.split(x, self.group_channels, dim=1)
        return torch.cat([conv(part) for conv, part in zip(self.dwconvs, parts)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.dwconv1x1(self.relu(self.bn1(self.spatial_conv(x)))))

    def fuse(self) -> nn.Module:
        if not hasattr(self, 'dwconv3x3'):  # grouped kernels: each group's conv takes its slice of bn1
            self.dwconvs = nn.ModuleList(fuse_conv_bn(conv, bn) for conv, bn in
                                         zip(self.dwconvs, split_batchnorm(self.bn1, self.group_channels)))
            self.dwconv1x1 = fuse_conv_bn(self.dwconv1x1, self.bn2)
            self.bn1 = self.bn2 = nn.Identity()
            return self
        return nn.Sequential(fuse_conv_bn(self.dwconv3x3, self.bn1), self.relu,
                             fuse_conv_bn(self.dwconv1x1, self.bn2))


class MRFFI(nn.Module):
    """(B, dim, H, W) -> (B, dim, H, W): split channels, mix globally/locally, concat, fuse.

    Args:
        dim: channels of the stage.
        global_ratio / local_ratio: fractions of channels for WTE-Mamba and MK-DeConv
            (global rounded to a multiple of 16, see :func:`split_channels`).
        kernel_size: stage kernel of the WTE wavelet conv and of MK-DeConv.
        local_kernel_sizes: MK-DeConv kernels; default ``(kernel_size,)`` as released.
    """

    def __init__(self, dim: int, global_ratio: float = 0.25, local_ratio: float = 0.25,
                 kernel_size: int = 3, ssm_ratio: float = 2.0, d_state: int = 1,
                 local_kernel_sizes: Sequence[int] = None, global_mixer: str = 'bimamba'):
        super().__init__()
        self.dim = dim
        self.global_channels, self.local_channels, self.identity_channels = split_channels(
            dim, global_ratio, local_ratio)
        self.global_op = (WTEMamba(self.global_channels, kernel_size, ssm_ratio, d_state, global_mixer)
                          if self.global_channels else nn.Identity())
        self.local_op = (MKDeConv(self.local_channels, local_kernel_sizes or kernel_size)
                         if self.local_channels else nn.Identity())
        self.proj = nn.Sequential(nn.ReLU(), ConvBN(dim, dim, bn_weight_init=0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_global, x_local, x_identity = torch.split(
            x, [self.global_channels, self.local_channels, self.identity_channels], dim=1)
        return self.proj(torch.cat([self.global_op(x_global), self.local_op(x_local), x_identity], dim=1))
