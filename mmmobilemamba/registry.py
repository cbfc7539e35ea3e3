"""The registry mmmobilemamba's modules are registered in.

Modules go into mmengine's root ``MODELS`` registry (``@MODELS.register_module()``, as in mmdet).
mmdet's and mmseg's ``MODELS`` registries are children of that root and fall back to their parent
when a type is not theirs, so ``dict(type='MobileMamba')`` builds from an mmdet config, an mmseg
config, or plain mmengine without this package importing mmdet or mmseg.
"""
from mmengine.registry import MODELS

__all__ = ['MODELS']
