"""mmseg's PSP, ASPP, FCN and FPN heads with the logits upsampled by :func:`bilinear_resize_gemm`.

The stock heads upsample their logits to the label size (loss) or the input size (predict) with
bilinear ``F.interpolate``; from a stride-64 map that is 8x8 -> 512x512, and its CUDA backward, an
atomic scatter, dominates the training iteration. These subclasses compute the same values
(``bilinear_resize_gemm``: two GEMMs, equal to ``F.interpolate`` up to float rounding, forward and
backward) and change nothing else: in a config, ``type='PSPHead'`` becomes
``type='GemmResizePSPHead'`` with the same arguments.
"""
from typing import List

import torch
from torch import nn

from mmseg.models.decode_heads import ASPPHead, FCNHead, FPNHead, PSPHead
from mmseg.models.losses import accuracy
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ..layers.gemm_resize import bilinear_resize_gemm

__all__ = ['GemmResizeHeadMixin', 'GemmResizePSPHead', 'GemmResizeASPPHead', 'GemmResizeFCNHead',
           'GemmResizeFPNHead']


class GemmResizeHeadMixin:
    """Replaces ``BaseDecodeHead.loss_by_feat`` / ``predict_by_feat`` with versions whose bilinear
    resize of the logits is :func:`bilinear_resize_gemm`. Put it before the mmseg head in the bases."""

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples: SampleList) -> dict:
        """Losses of (B, K, h, w) logits against the (B, H, W) labels, as ``BaseDecodeHead``: each
        ``loss_decode`` term (summed by ``loss_name``), the sampler's pixel weights, ``acc_seg``."""
        seg_label = self._stack_batch_gt(batch_data_samples)            # (B, 1, H, W)
        seg_logits = bilinear_resize_gemm(seg_logits, seg_label.shape[2:], self.align_corners)
        seg_weight = self.sampler.sample(seg_logits, seg_label) if self.sampler is not None else None
        seg_label = seg_label.squeeze(1)
        terms = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) else [self.loss_decode]
        losses = {}
        for term in terms:
            value = term(seg_logits, seg_label, weight=seg_weight, ignore_index=self.ignore_index)
            losses[term.loss_name] = losses[term.loss_name] + value if term.loss_name in losses else value
        losses['acc_seg'] = accuracy(seg_logits, seg_label, ignore_index=self.ignore_index)
        return losses

    def predict_by_feat(self, seg_logits: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        """(B, K, h, w) logits -> (B, K, H, W) at the size ``BaseDecodeHead`` resizes to: the tile's
        ``img_shape`` in slide inference (a ``torch.Size``), else ``pad_shape``, else ``img_shape``."""
        meta = batch_img_metas[0]
        if isinstance(meta['img_shape'], torch.Size):
            size = meta['img_shape']
        elif 'pad_shape' in meta:
            size = meta['pad_shape'][:2]
        else:
            size = meta['img_shape']
        return bilinear_resize_gemm(seg_logits, size, self.align_corners)


@MODELS.register_module()
class GemmResizePSPHead(GemmResizeHeadMixin, PSPHead):
    """``PSPHead`` with GEMM logit upsampling (same arguments)."""


@MODELS.register_module()
class GemmResizeASPPHead(GemmResizeHeadMixin, ASPPHead):
    """``ASPPHead`` (DeepLabv3) with GEMM logit upsampling (same arguments)."""


@MODELS.register_module()
class GemmResizeFCNHead(GemmResizeHeadMixin, FCNHead):
    """``FCNHead`` (e.g. the auxiliary head) with GEMM logit upsampling (same arguments)."""


@MODELS.register_module()
class GemmResizeFPNHead(GemmResizeHeadMixin, FPNHead):
    """``FPNHead`` (Semantic FPN) with GEMM logit upsampling (same arguments)."""
