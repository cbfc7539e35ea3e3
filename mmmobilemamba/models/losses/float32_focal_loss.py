"""mmdet's ``FocalLoss`` computed on float32 logits, so RetinaNet trains under bf16 autocast.

On CUDA, mmdet's sigmoid focal loss calls mmcv's ``sigmoid_focal_loss`` op, which has float32
and float16 kernels but none for bfloat16: under bf16 AMP the head's logits are bfloat16 and the
op raises. ``Float32FocalLoss`` casts the logits to float32 first (the gradient flows back in the
logits' dtype) and is otherwise ``FocalLoss`` with the same arguments. In fp32 training it is the
same computation; under fp16 autocast the loss is computed in float32 instead of float16.
"""
from typing import Optional

import torch

from mmdet.models.losses import FocalLoss
from mmdet.registry import MODELS

__all__ = ['Float32FocalLoss']


@MODELS.register_module()
class Float32FocalLoss(FocalLoss):
    """``FocalLoss`` (same arguments) whose predictions are cast to float32 before the loss."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[int] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        """pred (N, num_classes) logits of any float dtype; the rest as ``FocalLoss.forward``."""
        return super().forward(pred.float(), target, weight, avg_factor, reduction_override)
