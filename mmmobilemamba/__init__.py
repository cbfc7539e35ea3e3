"""mmmobilemamba: the MobileMamba backbone (CVPR 2025) for MMDetection 3.x and MMSegmentation 1.x.

``import mmmobilemamba`` (or ``custom_imports=dict(imports=['mmmobilemamba'])`` in a config)
registers the ``MobileMamba`` backbone, the necks and the optimizer-wrapper constructor so that
mmdet and mmseg configs find them, and allow-lists for ``torch.load(weights_only=True)`` the few
non-tensor objects that release and mmengine checkpoints hold (``mmmobilemamba.utils.checkpoint``).
"""
__version__ = '0.1.0'

from . import engine, models  # noqa: F401,E402  (registers modules)
from .models.backbones import MobileMamba  # noqa: E402
from .utils.checkpoint import register_safe_globals  # noqa: E402

register_safe_globals()

__all__ = ['MobileMamba', '__version__']
