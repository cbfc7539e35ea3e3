"""WTE-Mamba: bidirectional selective scan plus a Haar-wavelet enhanced local branch, summed.

Module and parameter names follow the release's ``MBWTConv2d`` (``global_atten``,
``base_scale``, ``wavelet_convs``, ``wavelet_scale``, ``wt_filter``, ``iwt_filter``).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .conv_bn import absorb_channel_scale, fuse_modules
from .ss2d import BiSS2D
from .wavelet import haar_filters, inverse_wavelet_transform, wavelet_transform

__all__ = ['Scale', 'WTEMamba']


class Scale(nn.Module):
    """Learnable per-channel multiplier of shape ``shape`` (broadcast over (B, C, H, W))."""

    def __init__(self, shape, init_value: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full(shape, init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


class WTEMamba(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): ``scale * mixer(x) + IWT(scale_w * dwconv(WT(x)))``.

    The wavelet branch works on the four Haar sub-bands at half resolution with a depthwise
    ``kernel_size`` conv; odd H or W is zero-padded for the transform and cropped back.

    Args:
        global_mixer: ``'bimamba'`` (the release's bidirectional SS2D) or ``'mambavision'``
            (a MambaVision-style mixer, 2-D and non-causal: scanned SSM half + symmetric non-SSM half).
    """

    def __init__(self, channels: int, kernel_size: int = 5, ssm_ratio: float = 2.0,
                 d_state: int = 1, global_mixer: str = 'bimamba'):
        super().__init__()
        if global_mixer == 'bimamba':
            self.global_atten = BiSS2D(channels, d_state=d_state, ssm_ratio=ssm_ratio)
        elif global_mixer == 'mambavision':
            from .mambavision_mixer import MambaVisionMixer
            self.global_atten = MambaVisionMixer(channels, d_state=d_state, ssm_ratio=ssm_ratio)
        else:
            raise ValueError(f"global_mixer must be 'bimamba' or 'mambavision', got {global_mixer!r}")
        self.base_scale = Scale((1, channels, 1, 1))
        wt_filter, iwt_filter = haar_filters(channels)
        self.register_buffer('wt_filter', wt_filter)
        self.register_buffer('iwt_filter', iwt_filter)
        bands = 4 * channels
        self.wavelet_convs = nn.ModuleList([
            nn.Conv2d(bands, bands, kernel_size, padding=kernel_size // 2, groups=bands, bias=False)])
        self.wavelet_scale = nn.ModuleList([Scale((1, bands, 1, 1), init_value=0.1)])

    def wavelet_branch(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, width % 2, 0, height % 2))
        bands = wavelet_transform(x, self.wt_filter)
        b, c, k, h, w = bands.shape
        bands = self.wavelet_scale[0](self.wavelet_convs[0](bands.reshape(b, c * k, h, w)))
        x = inverse_wavelet_transform(bands.reshape(b, c, k, h, w), self.iwt_filter)
        return x[..., :height, :width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_scale(self.global_atten(x)) + self.wavelet_branch(x)

    def fuse(self) -> nn.Module:
        """Fold BN into the convs, then both learnable scales into the convs they follow."""
        fuse_modules(self)
        absorb_channel_scale(self.wavelet_convs[0], self.wavelet_scale[0].weight)
        self.wavelet_scale[0] = nn.Identity()
        absorb_channel_scale(self.global_atten.out_proj, self.base_scale.weight)
        self.base_scale = nn.Identity()
        return self
