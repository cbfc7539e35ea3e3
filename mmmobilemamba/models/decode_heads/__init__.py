"""mmseg decode heads whose logit upsampling runs as two GEMMs (needs mmseg; seg configs import
this module through ``custom_imports``)."""
from .gemm_resize_heads import (GemmResizeASPPHead, GemmResizeFCNHead, GemmResizeFPNHead,
                                GemmResizeHeadMixin, GemmResizePSPHead)

__all__ = ['GemmResizeHeadMixin', 'GemmResizePSPHead', 'GemmResizeASPPHead', 'GemmResizeFCNHead',
           'GemmResizeFPNHead']
