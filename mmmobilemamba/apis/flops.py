"""Params and FLOPs of the whole model of an mmdet / mmseg config (``tools/analysis_tools/get_flops.py``).

Counting as :mod:`mmmobilemamba.utils.complexity`; the input is :func:`mmmobilemamba.apis.config.input_shape`,
the same rule the speed benchmark uses.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from mmmobilemamba.utils.complexity import count_complexity

from .config import build_model, input_shape, load_config

__all__ = ['config_complexity']


def _data_samples(scope: str, shape: Tuple[int, int]):
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape,
                scale_factor=(1.0, 1.0), img_id=0, flip=False)
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        return [SegDataSample(metainfo=meta)]
    from mmdet.structures import DetDataSample
    return [DetDataSample(metainfo=meta)]


class _TensorMode(nn.Module):
    """Wrap an mmdet/mmseg model so that ``forward(x)`` is its raw ``mode='tensor'`` forward."""

    def __init__(self, model: nn.Module, data_samples):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, x):
        return self.model(x, self.data_samples, mode='tensor')


def config_complexity(config, shape: Optional[Sequence[int]] = None, cfg_options: Optional[dict] = None,
                      count_scan: bool = True) -> dict:
    """Params and FLOPs of the whole model of an mmdet / mmseg config on one (H, W) image.

    ``shape`` defaults to :func:`~mmmobilemamba.apis.config.input_shape`; it is padded up to a
    multiple of the data preprocessor's ``pad_size_divisor`` (as mmdet's pipeline does). The
    backbone's ``init_cfg`` is ignored (weights are never loaded), so a missing checkpoint is fine.
    Returns the dict of :func:`count_complexity` plus ``shape``, ``backbone_params``,
    ``neck_params`` and the model type.
    """
    from mmengine.model import revert_sync_batchnorm

    cfg = load_config(config, cfg_options)
    scope = cfg.get('default_scope', 'mmdet')
    h, w = input_shape(cfg, shape)
    model = revert_sync_batchnorm(build_model(cfg))
    model.eval()
    wrapped = _TensorMode(model, _data_samples(scope, (h, w)))
    with torch.no_grad():
        result = count_complexity(wrapped, torch.randn(1, 3, h, w), count_scan=count_scan)

    def n_params(name):
        module = getattr(model, name, None)
        return sum(p.numel() for p in module.parameters()) if isinstance(module, nn.Module) else 0

    result.update(shape=(h, w), model_type=type(model).__name__,
                  backbone_params=n_params('backbone'), neck_params=n_params('neck'))
    return result
