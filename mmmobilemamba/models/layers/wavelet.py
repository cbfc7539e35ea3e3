"""One-level 2-D Haar wavelet transform as fixed depthwise (transposed) convolutions.

Filters come from PyWavelets' ``'db1'`` (Haar) bank, built exactly as the official MobileMamba
release stores them (``wt_filter`` / ``iwt_filter`` in its state_dict), so its checkpoints load.
"""
from typing import Tuple

import pywt
import torch
import torch.nn.functional as F

__all__ = ['haar_filters', 'wavelet_transform', 'inverse_wavelet_transform']


def _filter_bank(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The four separable 2x2 filters LL, HL, LH, HH (rows x columns), shape (4, 2, 2)."""
    return torch.stack([torch.outer(low, low), torch.outer(high, low),
                        torch.outer(low, high), torch.outer(high, high)])


def haar_filters(channels: int, wave: str = 'db1',
                 dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """Analysis and synthesis filters for ``channels`` channels, each of shape (4*channels, 1, 2, 2).

    Filter ``4*c + k`` is sub-band ``k`` (LL, HL, LH, HH) of channel ``c``.
    """
    bank = pywt.Wavelet(wave)
    dec = _filter_bank(torch.tensor(bank.dec_lo[::-1], dtype=dtype),
                       torch.tensor(bank.dec_hi[::-1], dtype=dtype))
    rec = _filter_bank(torch.tensor(bank.rec_lo, dtype=dtype), torch.tensor(bank.rec_hi, dtype=dtype))
    return dec[:, None].repeat(channels, 1, 1, 1), rec[:, None].repeat(channels, 1, 1, 1)


def wavelet_transform(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) with even H, W -> sub-bands (B, C, 4, H/2, W/2)."""
    b, c, h, w = x.shape
    return F.conv2d(x, filters.to(x.dtype), stride=2, groups=c).reshape(b, c, 4, h // 2, w // 2)


def inverse_wavelet_transform(bands: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Sub-bands (B, C, 4, H/2, W/2) -> (B, C, H, W); exact inverse of :func:`wavelet_transform`.

    The stride-2 2x2 transposed convolution, written as a per-channel 4x4 mix of the sub-bands into
    the four pixels of each 2x2 cell followed by ``pixel_shuffle``: same result, but cuDNN runs the
    grouped transposed convolution group by group, which is slow (measured in
    ``benchmarks/design_measurements.md``).
    """
    b, c, _, h, w = bands.shape
    cells = torch.einsum('bckhw,ckp->bcphw', bands, filters.reshape(c, 4, 4).to(bands.dtype))
    return F.pixel_shuffle(cells.reshape(b, 4 * c, h, w), 2)
