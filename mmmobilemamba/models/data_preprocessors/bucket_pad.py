"""Pad each batch to the smallest of a few fixed sizes, so that a backbone replayed as CUDA graphs
(``MobileMamba(cuda_graph=True, cuda_graph_inference=True)``) sees only those few input shapes:
:class:`BatchBucketPad` as a training batch augment, :class:`BucketPadDetDataPreprocessor` for
training and test batches.

mmdet's detection pipelines resize with ``keep_ratio=True`` and pad each batch to a multiple of 32,
so nearly every batch has a new shape, and a graph is captured per shape. With mmdet's
``AspectRatioBatchSampler`` (the default of its COCO configs) a batch holds only landscape or only
portrait images, so for the 1333x800 scale two sizes, (800, 1344) and (1344, 800), hold every batch.
"""
import warnings
from typing import List, Optional, Sequence, Tuple

from torch import Tensor, nn

from mmdet.models.data_preprocessors import BatchFixedSizePad, DetDataPreprocessor
from mmdet.registry import MODELS

__all__ = ['BatchBucketPad', 'BucketPadDetDataPreprocessor']


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


@MODELS.register_module()
class BucketPadDetDataPreprocessor(DetDataPreprocessor):
    """mmdet's ``DetDataPreprocessor`` that then pads every batch, in training and in testing, with
    :class:`BatchBucketPad` to the smallest of ``bucket_sizes`` that holds it (mmdet runs
    ``batch_augments`` in training only).

    Args:
        bucket_sizes: (height, width) pairs, e.g. ``[(800, 1344), (1344, 800)]`` for the 1333x800
            scale (mmdet's ``AspectRatioBatchSampler`` never mixes landscape and portrait images).
        bucket_pad_kwargs: ``BatchBucketPad``'s padding arguments (``pad_mask``, ``pad_seg``, ...),
            applied in training; test batches pad their images only.
        **kwargs: ``DetDataPreprocessor``'s arguments.
    """

    def __init__(self, bucket_sizes: Sequence[Tuple[int, int]], bucket_pad_kwargs: Optional[dict] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.train_pad = BatchBucketPad(bucket_sizes, **(bucket_pad_kwargs or {}))
        self.test_pad = BatchBucketPad(bucket_sizes, img_pad_value=self.train_pad.pads[0].img_pad_value)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        pad = self.train_pad if training else self.test_pad
        inputs, data_samples = pad(data['inputs'], data['data_samples'])
        return {'inputs': inputs, 'data_samples': data_samples}
