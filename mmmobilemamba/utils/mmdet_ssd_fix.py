"""Imported by the SSDLite configs (``custom_imports``), so that mmdet's own tools run them too:
applies :func:`mmmobilemamba.utils.compat.fix_mmdet_ssd_head` (SSD inference in mmdet <= 3.3.0)."""
from .compat import fix_mmdet_ssd_head

fix_mmdet_ssd_head()
