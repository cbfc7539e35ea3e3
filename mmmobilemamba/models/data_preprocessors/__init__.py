"""mmdet batch augments (needs mmdet; det configs import this module through ``custom_imports``)."""
from .bucket_pad import BatchBucketPad

__all__ = ['BatchBucketPad']
