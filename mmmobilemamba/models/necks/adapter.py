"""``MobileMambaAdapter``: turn MobileMamba's three stage maps into any power-of-two pyramid.

MobileMamba emits three maps at strides 16, 32 and 64. Stock OpenMMLab configs are written for
a ResNet-50 pyramid: four maps at strides 4, 8, 16, 32 with 256, 512, 1024, 2048 channels. The
adapter produces such a pyramid (by default exactly that one), so a stock config takes
MobileMamba by changing only ``backbone`` and ``neck``::

    neck=[dict(type='MobileMambaAdapter', in_channels=[192, 384, 448]),   # S6
          dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5)]

(mmengine builds a list of module configs as ``Sequential``), or, for a head that reads the
backbone maps directly (PSPNet, DeepLabv3), ``neck=dict(type='MobileMambaAdapter', ...)`` alone.

How each output level is made (everything cheap, all heavy work at the lower resolution):

* its *source* is the input whose stride is nearest (ties: the finer input);
* finer than the source: 1x1 Conv-BN projection at the source resolution, then a learned
  depthwise transposed conv (kernel 2f, stride f) + BN, initialised as bilinear upsampling;
* coarser than the source: depthwise 3x3 stride-2 Conv-BN steps, then the 1x1 Conv-BN projection;
* same stride: the 1x1 Conv-BN projection only;
* an input that is the source of no output (e.g. the stride-64 map for the default strides
  4..32) is resampled the same way and *added* to the output level of nearest stride, so every
  backbone stage feeds the pyramid;
* the sum goes through the activation (ReLU by default, like ResNet's stage outputs).

Output ``i`` has stride ``out_strides[i]`` and ``out_channels[i]`` channels; its size is the
source's size times (or divided by, rounding up) the stride ratio, so for an HxW image a level
of stride ``s`` is ``ceil(H/16)*16/s`` (finer) or ``ceil(H/s)`` (coarser) -- the same sizes
ResNet gives when H, W are multiples of 64.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmmobilemamba.registry import MODELS

__all__ = ['MobileMambaAdapter']


def _is_pow2(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0 and (x & (x - 1)) == 0


def _bilinear_kernel(factor: int) -> torch.Tensor:
    """(2f, 2f) kernel that makes a stride-f transposed conv (padding f/2) a bilinear upsample."""
    size = 2 * factor
    center = factor - 0.5
    coords = torch.arange(size, dtype=torch.float32)
    one_d = 1 - (coords - center).abs() / factor
    return one_d[:, None] * one_d[None, :]


class _Branch(nn.Module):
    """One input -> one output level: project (1x1 Conv-BN) and resample by ``2**log_ratio``.

    ``log_ratio`` > 0 upsamples (projection first), < 0 downsamples (resampling first).
    """

    def __init__(self, in_channels: int, out_channels: int, log_ratio: int, norm_cfg: dict):
        super().__init__()
        from mmcv.cnn import build_norm_layer  # mmcv is needed by the necks only
        self.log_ratio = log_ratio
        self.factor = 2 ** abs(log_ratio)
        self.down = nn.Sequential()
        for _ in range(max(-log_ratio, 0)):
            self.down.append(nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1,
                                       groups=in_channels, bias=False))
            self.down.append(build_norm_layer(norm_cfg, in_channels)[1])
        self.proj = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                  build_norm_layer(norm_cfg, out_channels)[1])
        self.up = nn.Sequential()
        if log_ratio > 0:
            f = self.factor
            self.up.append(nn.ConvTranspose2d(out_channels, out_channels, 2 * f, stride=f,
                                              padding=f // 2, groups=out_channels, bias=False))
            self.up.append(build_norm_layer(norm_cfg, out_channels)[1])
        self.reset_upsampler()

    def reset_upsampler(self):
        if self.log_ratio > 0:
            with torch.no_grad():
                self.up[0].weight.copy_(_bilinear_kernel(self.factor).expand_as(self.up[0].weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.proj(self.down(x)))


def _fit(x: torch.Tensor, size) -> torch.Tensor:
    """Crop ``x`` to ``size`` (or resize it when it is smaller, which strides from a real
    backbone never give)."""
    h, w = size
    if x.shape[2] >= h and x.shape[3] >= w:
        return x[:, :, :h, :w]
    return F.interpolate(x, size=(h, w), mode='nearest')


@MODELS.register_module()
class MobileMambaAdapter(BaseModule):
    """Make a pyramid of any power-of-two strides and any channels from MobileMamba's maps.

    Args:
        in_channels (list[int]): channels of the backbone maps, e.g. ``[192, 384, 448]`` (S6).
        in_strides (list[int]): their strides. Default ``(16, 32, 64)``.
        out_strides (list[int]): output strides, powers of two. Default ``(4, 8, 16, 32)``.
        out_channels (int | list[int]): channels per output (one int: all levels).
            Default ``(256, 512, 1024, 2048)`` (ResNet-50).
        norm_cfg (dict): norm layer after every conv. Default BN.
        act_cfg (dict | None): activation on every output. Default ReLU.
        init_cfg: mmengine init config (1x1 convs keep PyTorch's default init unless given;
            the transposed convs are always reset to bilinear upsampling).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 in_strides: Sequence[int] = (16, 32, 64),
                 out_strides: Sequence[int] = (4, 8, 16, 32),
                 out_channels: Union[int, Sequence[int]] = (256, 512, 1024, 2048),
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        self.in_channels = list(in_channels)
        self.in_strides = list(in_strides)
        self.out_strides = list(out_strides)
        if isinstance(out_channels, int):
            out_channels = [out_channels] * len(self.out_strides)
        self.out_channels = list(out_channels)
        if len(self.in_channels) != len(self.in_strides):
            raise ValueError(f'{name}: in_channels {self.in_channels} and in_strides '
                             f'{self.in_strides} must have the same length')
        if not self.out_strides:
            raise ValueError(f'{name}: out_strides must not be empty')
        if len(self.out_channels) != len(self.out_strides):
            raise ValueError(f'{name}: out_channels {self.out_channels} must have one entry per '
                             f'out_strides {self.out_strides}')
        for kind, strides in (('in_strides', self.in_strides), ('out_strides', self.out_strides)):
            bad = [s for s in strides if not _is_pow2(s)]
            if bad:
                raise ValueError(f'{name}: unsupported {kind} {bad}: strides must be powers of two '
                                 f'(1, 2, 4, ...); got {kind}={strides}')

        logs_in = [int(math.log2(s)) for s in self.in_strides]
        logs_out = [int(math.log2(s)) for s in self.out_strides]
        # source of each output: nearest input stride, ties -> finer input
        self.sources = [min(range(len(logs_in)), key=lambda i: (abs(logs_in[i] - lo), logs_in[i]))
                        for lo in logs_out]
        # inputs that are nobody's source are added to the output of nearest stride
        self.extra_targets = {}
        for i, li in enumerate(logs_in):
            if i not in self.sources:
                self.extra_targets[i] = min(range(len(logs_out)),
                                            key=lambda j: (abs(logs_out[j] - li), logs_out[j]))
        # branches[j] = list of (input index, _Branch); the first one is the source
        self.branch_inputs: List[List[int]] = []
        self.branches = nn.ModuleList()
        for j, (lo, cout) in enumerate(zip(logs_out, self.out_channels)):
            inputs = [self.sources[j]] + [i for i, t in self.extra_targets.items() if t == j]
            self.branch_inputs.append(inputs)
            self.branches.append(nn.ModuleList(
                _Branch(self.in_channels[i], cout, logs_in[i] - lo, norm_cfg) for i in inputs))
        from mmcv.cnn import build_activation_layer
        self.act = build_activation_layer(act_cfg) if act_cfg else nn.Identity()

    def init_weights(self):
        super().init_weights()
        for level in self.branches:
            for branch in level:
                branch.reset_upsampler()

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(self.in_channels):
            got = len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError(f'{name} expects {len(self.in_channels)} input maps (strides '
                             f'{self.in_strides}, channels {self.in_channels}), got {got}; '
                             f'check the backbone out_indices')
        got_channels = [x.shape[1] for x in inputs]
        if got_channels != self.in_channels:
            raise ValueError(f'{name}: input channels {got_channels} do not match in_channels '
                             f'{self.in_channels} (set in_channels to the backbone arch\'s channels)')
        outs = []
        for level, inputs_of_level in zip(self.branches, self.branch_inputs):
            y = level[0](inputs[inputs_of_level[0]])
            for branch, i in zip(level[1:], inputs_of_level[1:]):
                y = y + _fit(branch(inputs[i]), y.shape[2:])
            outs.append(self.act(y))
        return tuple(outs)
