import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F

from mmmobilemamba.models.layers.wavelet import haar_filters, inverse_wavelet_transform, wavelet_transform


@pytest.mark.parametrize('size', [(2, 2), (8, 6), (32, 64)])
def test_perfect_reconstruction(size):
    x = torch.randn(2, 5, *size, dtype=torch.float64)
    dec, rec = haar_filters(5, dtype=torch.float64)
    bands = wavelet_transform(x, dec)
    assert bands.shape == (2, 5, 4, size[0] // 2, size[1] // 2)
    torch.testing.assert_close(inverse_wavelet_transform(bands, rec), x)


def test_low_band_matches_pywavelets():
    image = np.random.RandomState(0).randn(8, 10)
    dec, _ = haar_filters(1, dtype=torch.float64)
    bands = wavelet_transform(torch.from_numpy(image)[None, None], dec)[0, 0]
    approx, (detail_h, detail_v, detail_d) = pywt.dwt2(image, 'db1')
    np.testing.assert_allclose(bands[0].numpy(), approx, atol=1e-12)
    # the detail bands are PyWavelets' up to sign and orientation naming
    for ours, theirs in zip(bands[1:].numpy(), (detail_h, detail_v, detail_d)):
        np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-12)


def test_filters_are_orthonormal():
    dec, rec = haar_filters(1, dtype=torch.float64)
    gram = dec.flatten(1) @ dec.flatten(1).T
    torch.testing.assert_close(gram, torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(rec, dec)  # Haar is symmetric: synthesis == analysis


def test_inverse_equals_the_release_transposed_convolution():
    """The release inverts with a grouped stride-2 conv_transpose2d of ``iwt_filter``; ours is a
    per-channel mix + pixel_shuffle and must give the same map for any sub-bands and filters."""
    channels = 5
    filters = torch.randn(4 * channels, 1, 2, 2, dtype=torch.float64)  # not only Haar: any per-channel bank
    bands = torch.randn(2, channels, 4, 3, 7, dtype=torch.float64)
    expected = F.conv_transpose2d(bands.reshape(2, 4 * channels, 3, 7), filters, stride=2, groups=channels)
    torch.testing.assert_close(inverse_wavelet_transform(bands, filters), expected)
