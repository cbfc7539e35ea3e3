"""One place that registers mmmobilemamba's modules for OpenMMLab.

Modules go into mmengine's root ``MODELS`` registry. mmdet's and mmseg's ``MODELS`` registries
are children of that root and fall back to their parent when a type is not theirs, so
``dict(type='MobileMamba')`` builds from an mmdet config, an mmseg config, or plain mmengine
without this package importing mmdet or mmseg.
"""
from mmengine.registry import MODELS

__all__ = ['MODELS', 'register_model']


def register_model(cls):
    """Class decorator: register ``cls`` under its class name (used by every backbone/neck here)."""
    MODELS.register_module(module=cls)
    return cls
