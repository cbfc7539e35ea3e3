"""SS2D's convolution form of the scan inputs (MMMOBILEMAMBA_SS2D_CONV_PROJ=1) gives the einsum
form's outputs and gradients (CPU, randomised parameters; the block computes its scan in float32)."""
import pytest
import torch

from mmmobilemamba.models.layers.ss2d import BiSS2D, flattened_selective_scan


def _randomised_block(channels=24, seed=0):
    torch.manual_seed(seed)
    block = BiSS2D(channels)
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.startswith(('A_logs', 'dt_projs', 'Ds')) or p.dim() == 1:
                p.copy_(torch.randn_like(p) * 0.5)
    return block


def _outputs_and_grads(block, x, monkeypatch, conv):
    monkeypatch.setenv('MMMOBILEMAMBA_SS2D_CONV_PROJ', '1' if conv else '0')
    block.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y = block(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=y.device).view_as(y)).sum().backward()
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in block.named_parameters()}


@pytest.mark.parametrize('shape', [(2, 24, 5, 7), (2, 24, 1, 1), (2, 24, 8, 8)])
def test_conv_projections_equal_einsum_form(shape, monkeypatch):
    block = _randomised_block()
    block.train()
    x = torch.randn(*shape)
    y0, gx0, g0 = _outputs_and_grads(block, x, monkeypatch, conv=False)
    y1, gx1, g1 = _outputs_and_grads(block, x, monkeypatch, conv=True)
    assert y0.abs().max() > 1e-3  # the block is not the identity: the scan path contributes
    torch.testing.assert_close(y1, y0, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gx1, gx0, atol=1e-5, rtol=1e-4)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], atol=1e-4, rtol=1e-4, msg=name)


def test_one_direction(monkeypatch):
    torch.manual_seed(1)
    d, r, n, k = 12, 3, 2, 1
    seq = torch.randn(2, d, 4, 6, dtype=torch.float64)
    params = [torch.randn(k, r + 2 * n, d, dtype=torch.float64), torch.rand(k, d, r, dtype=torch.float64),
              torch.rand(k, d, dtype=torch.float64), torch.randn(k * d, n, dtype=torch.float64) * 0.3,
              torch.randn(k * d, dtype=torch.float64)]
    monkeypatch.setenv('MMMOBILEMAMBA_SS2D_CONV_PROJ', '0')
    ref = flattened_selective_scan(seq, *params)
    monkeypatch.setenv('MMMOBILEMAMBA_SS2D_CONV_PROJ', '1')
    torch.testing.assert_close(flattened_selective_scan(seq, *params), ref, atol=1e-10, rtol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA scan kernels')
@pytest.mark.parametrize('shape', [(2, 24, 5, 7), (2, 24, 16, 16)])
def test_conv_projections_on_cuda(shape, monkeypatch):
    """The Triton scan reads the strided B/C views; TF32 off so both forms are float32 throughout."""
    block = _randomised_block().cuda()
    block.train()
    x = torch.randn(*shape, device='cuda')
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        y0, gx0, g0 = _outputs_and_grads(block, x, monkeypatch, conv=False)
        y1, gx1, g1 = _outputs_and_grads(block, x, monkeypatch, conv=True)
    torch.testing.assert_close(y1, y0, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(gx1, gx0, atol=1e-4, rtol=1e-3)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], atol=1e-3, rtol=1e-3, msg=name)
