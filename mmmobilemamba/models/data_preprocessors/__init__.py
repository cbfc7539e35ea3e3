"""mmdet batch augments and data preprocessors (needs mmdet; det configs import this module through ``custom_imports``)."""
from .bucket_pad import BatchBucketPad, BucketPadDetDataPreprocessor

__all__ = ['BatchBucketPad', 'BucketPadDetDataPreprocessor']
