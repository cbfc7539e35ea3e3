"""Pad each training batch to the smallest of a few fixed sizes, so that a backbone replayed as CUDA
graphs (``MobileMamba(cuda_graph=True)``) sees only those few input shapes.

mmdet's detection pipelines resize with ``keep_ratio=True`` and pad each batch to a multiple of 32,
so nearly every batch has a new shape, and a graph is captured per shape. With mmdet's
``AspectRatioBatchSampler`` (the default of its COCO configs) a batch holds only landscape or only
portrait images, so for the 1333x800 scale two sizes, (800, 1344) and (1344, 800), hold every batch.
"""
import warnings
from typing import List, Optional, Sequence, Tuple

from torch import Tensor, nn

from mmdet.models.data_preprocessors import BatchFixedSizePad
from mmdet.registry import MODELS

__all__ = ['BatchBucketPad']


@MODELS.register_module()
class BatchBucketPad(nn.Module):
    """mmdet's ``BatchFixedSizePad`` to the smallest of ``sizes`` that holds the batch.

    A batch larger than every size (in height or width) is left as it is, with one warning.

    Args:
        sizes: (height, width) pairs to pad to.
        **pad_kwargs: ``BatchFixedSizePad``'s other arguments (``img_pad_value``, ``pad_mask``,
            ``mask_pad_value``, ``pad_seg``, ``seg_pad_value``), used for every size.

    Example:
        >>> import torch
        >>> pad = BatchBucketPad([(800, 1344), (1344, 800)])
        >>> pad(torch.zeros(2, 3, 800, 1088))[0].shape
        torch.Size([2, 3, 800, 1344])
    """

    def __init__(self, sizes: Sequence[Tuple[int, int]], **pad_kwargs):
        super().__init__()
        sizes = [tuple(size) for size in sizes]
        if not sizes or any(len(size) != 2 or min(size) < 1 for size in sizes):
            raise ValueError(f'BatchBucketPad needs (height, width) pairs of positive sizes, got {sizes}')
        order = sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1])
        self.sizes: List[Tuple[int, int]] = [sizes[i] for i in order]
        self.pads = nn.ModuleList(BatchFixedSizePad(size, **pad_kwargs) for size in self.sizes)
        self._warned = False

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        """inputs (B, C, H, W) -> (B, C, h, w), the smallest (h, w) of ``sizes`` with h >= H, w >= W."""
        height, width = inputs.shape[-2:]
        for (bucket_height, bucket_width), pad in zip(self.sizes, self.pads):
            if bucket_height >= height and bucket_width >= width:
                return pad(inputs, data_samples)
        if not self._warned:
            warnings.warn(f'BatchBucketPad: a {height}x{width} batch is larger than every size in {self.sizes}; '
                          f'such batches keep their shape (with cuda_graph, a new graph or an eager step). '
                          f'Add a size that holds them.', RuntimeWarning, stacklevel=2)
            self._warned = True
        return inputs, data_samples
