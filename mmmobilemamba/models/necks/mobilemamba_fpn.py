"""The detection neck of the official MobileMamba release, as :class:`MobileMambaFPN`.

MobileMamba's three stages have strides 16, 32 and 64, which is one level too coarse for the
usual detection heads (RetinaNet wants 8..128, Mask R-CNN 4..64). The release solves this with
an FPN over the three maps plus ``num_extra_trans_convs`` 2x2/stride-2 *transposed* convolutions
applied to the finest top-down lateral, each giving one finer level (1/8, then 1/4). Coarser
levels come from stride-2 3x3 convs (``add_extra_convs``) or stride-2 max-pooling, as in mmdet's
FPN.

This module reproduces that structure exactly -- same sub-module names (``lateral_convs``,
``fpn_convs``, ``extra_trans_convs``, ``extra_fpn_convs``), same parameter count, same output
order (finest first) and the same initialisation (Xavier-uniform on ``Conv2d`` layers, the
transposed convs keep ConvModule's Kaiming init) -- so the paper-reproduction configs match
the released RetinaNet / Mask R-CNN models. Written from the structure, not from its code.

Release settings (B1, ``in_channels=[200, 376, 448]``, ``out_channels=256``, ``num_outs=5``):

* RetinaNet: ``num_extra_trans_convs=1, add_extra_convs='on_input'`` -> strides 8, 16, 32, 64, 128
* Mask R-CNN: ``num_extra_trans_convs=2`` (no extra convs)       -> strides 4, 8, 16, 32, 64
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmmobilemamba.registry import MODELS

__all__ = ['MobileMambaFPN']

_EXTRA_SOURCES = ('on_input', 'on_lateral', 'on_output')


@MODELS.register_module()
class MobileMambaFPN(BaseModule):
    """FPN with extra transposed-conv levels finer than the finest input (release neck).

    Args:
        in_channels (list[int]): channels of each input map (finest first).
        out_channels (int): channels of every output level.
        num_outs (int): number of output levels, transposed-conv levels included.
        start_level (int): first input used. Default 0.
        end_level (int): last input used (exclusive); -1 means all. If given, no extra
            coarse level is allowed (``num_outs == end_level - start_level + num_extra_trans_convs``).
        add_extra_convs (bool | str): how to make the levels coarser than the inputs:
            ``False``: stride-2 max-pooling of the last output; ``'on_input'`` (or ``True``),
            ``'on_lateral'``, ``'on_output'``: stride-2 3x3 convs, the first one applied to the
            last used input / lateral / output, the following ones to the previous extra level.
        relu_before_extra_convs (bool): ReLU before the 2nd and later extra convs. Default False.
        no_norm_on_lateral (bool): no norm on the lateral and transposed convs. Default False.
        num_extra_trans_convs (int): finer levels made by 2x2 stride-2 transposed convs on the
            finest lateral (after the top-down pass), each followed by a 3x3 output conv.
        conv_cfg, norm_cfg, act_cfg (dict | None): as in mmcv's ``ConvModule``.
        upsample_cfg (dict): ``F.interpolate`` arguments of the top-down pass.
        init_cfg (dict | list[dict] | None): mmengine init config.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 num_extra_trans_convs: int = 0,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        from mmcv.cnn import ConvModule  # imported here: mmcv is needed by the necks only
        if not isinstance(in_channels, (list, tuple)) or not in_channels:
            raise TypeError(f'in_channels must be a non-empty list of ints, got {in_channels!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        self.num_extra_trans_convs = num_extra_trans_convs
        self.upsample_cfg = dict(upsample_cfg)

        if end_level in (-1, self.num_ins):
            self.backbone_end_level = self.num_ins
        elif 0 < end_level < self.num_ins:
            self.backbone_end_level = end_level
        else:
            raise ValueError(f'end_level must be -1 or in (0, {self.num_ins}], got {end_level}')
        if not 0 <= start_level < self.backbone_end_level:
            raise ValueError(f'start_level must be in [0, {self.backbone_end_level}), got {start_level}')
        self.start_level = start_level
        self.end_level = end_level
        used_levels = self.backbone_end_level - start_level
        extra_levels = num_outs - used_levels - num_extra_trans_convs
        if num_extra_trans_convs < 0 or extra_levels < 0:
            raise ValueError(
                f'num_outs ({num_outs}) must be at least the used inputs ({used_levels}) plus '
                f'num_extra_trans_convs ({num_extra_trans_convs})')
        if end_level not in (-1, self.num_ins) and extra_levels:
            raise ValueError('with end_level set, num_outs must equal the used inputs plus '
                             'num_extra_trans_convs (no extra coarse levels)')
        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        if add_extra_convs is not False and add_extra_convs not in _EXTRA_SOURCES:
            raise ValueError(f'add_extra_convs must be a bool or one of {_EXTRA_SOURCES}, '
                             f'got {add_extra_convs!r}')
        self.add_extra_convs = add_extra_convs
        lateral_norm = None if no_norm_on_lateral else norm_cfg

        def conv(cin, kernel, stride=1, padding=None, norm=norm_cfg, cfg=conv_cfg):
            padding = (kernel - 1) // 2 if padding is None else padding
            return ConvModule(cin, out_channels, kernel, stride=stride, padding=padding,
                              conv_cfg=cfg, norm_cfg=norm, act_cfg=act_cfg, inplace=False)

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(conv(self.in_channels[i], 1, norm=lateral_norm))
            self.fpn_convs.append(conv(out_channels, 3))
        if add_extra_convs:
            for i in range(extra_levels):
                cin = self.in_channels[self.backbone_end_level - 1] \
                    if i == 0 and add_extra_convs == 'on_input' else out_channels
                self.fpn_convs.append(conv(cin, 3, stride=2))

        # finer levels: 2x2 stride-2 transposed conv on the finest lateral, then a 3x3 conv
        self.extra_trans_convs = nn.ModuleList()
        self.extra_fpn_convs = nn.ModuleList()
        for _ in range(num_extra_trans_convs):
            self.extra_trans_convs.append(
                conv(out_channels, 2, stride=2, padding=0, norm=lateral_norm, cfg=dict(type='deconv')))
            self.extra_fpn_convs.append(conv(out_channels, 3))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'{type(self).__name__} expects {self.num_ins} input maps '
                             f'(channels {self.in_channels}), got {len(inputs)}')
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            if x.shape[1] != c:
                raise ValueError(f'{type(self).__name__}: input {i} has {x.shape[1]} channels, '
                                 f'expected {c} (in_channels={self.in_channels})')
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down
            if 'scale_factor' in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up

        # transposed convs chain from the finest lateral; ordered finest first
        finer = []
        x = laterals[0]
        for trans_conv in self.extra_trans_convs:
            x = trans_conv(x)
            finer.insert(0, x)
        # extra_fpn_convs[j] belongs to the j-th finest level (release order)
        finer_outs = [conv(x) for conv, x in zip(self.extra_fpn_convs, finer)]

        outs = [self.fpn_convs[i](lateral) for i, lateral in enumerate(laterals)]
        num_coarse = self.num_outs - len(outs) - len(finer_outs)
        if num_coarse > 0:
            if not self.add_extra_convs:
                for _ in range(num_coarse):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == 'on_input':
                    source = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == 'on_lateral':
                    source = laterals[-1]
                else:
                    source = outs[-1]
                first = len(laterals)
                outs.append(self.fpn_convs[first](source))
                for i in range(first + 1, first + num_coarse):
                    x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](x))
        return tuple(finer_outs + outs)
