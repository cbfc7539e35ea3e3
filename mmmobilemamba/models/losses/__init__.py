"""mmdet losses (needs mmdet; det configs import this module through ``custom_imports``)."""
from .float32_focal_loss import Float32FocalLoss

__all__ = ['Float32FocalLoss']
