"""MobileMamba with its ImageNet head: for FLOPs/params checks, throughput and checkpoint tests.

State-dict names equal the official release's classifier (``patch_embed``, ``blocks1..3``,
``head.bn``/``head.l`` and, for distilled checkpoints, ``head_dist``).
"""
import torch

from .backbones.mobilemamba import MobileMamba
from .layers.conv_bn import BNLinear

__all__ = ['MobileMambaClassifier']


class MobileMambaClassifier(MobileMamba):
    """(B, 3, H, W) -> logits (B, num_classes): backbone, global average pool, BN + Linear head.

    With ``distillation=True`` a second head ``head_dist`` is added; in eval mode the two heads'
    logits are averaged, in training both are returned.
    """

    def __init__(self, arch='S6', num_classes: int = 1000, distillation: bool = False, **kwargs):
        super().__init__(arch, out_indices=(2,), **kwargs)
        self.head = BNLinear(self.embed_dims[-1], num_classes)
        self.head_dist = BNLinear(self.embed_dims[-1], num_classes) if distillation else None

    def forward(self, x: torch.Tensor):
        features = super().forward(x)[-1].mean((2, 3))
        logits = self.head(features)
        if self.head_dist is None:
            return logits
        logits_dist = self.head_dist(features)
        return (logits + logits_dist) / 2 if not self.training else (logits, logits_dist)
