"""SS2D's per-direction projection: einsum's values and gradients, with the weight gradient summed
from GEMMs over token chunks."""
import pytest
import torch

from mmmobilemamba.models.layers.ss2d import _token_chunk, project_directions


def _einsum_and_ours(shape, out_channels=7, dtype=torch.float64, device='cpu', seed=0):
    """((y, x.grad, w.grad) of einsum's autograd, the same of project_directions) for one upstream
    gradient; the inputs are drawn in float64 and rounded to ``dtype``, so every dtype sees the same values."""
    generator = torch.Generator().manual_seed(seed)
    batch, directions, channels, length = shape
    x, weight, grad = (torch.randn(size, dtype=torch.float64, generator=generator).to(device, dtype) for size in
                       (shape, (directions, out_channels, channels), (batch, directions, out_channels, length)))
    results = []
    for fn in (lambda a, b: torch.einsum('bkdl,kcd->bkcl', a, b), project_directions):
        a, b = x.clone().requires_grad_(), weight.clone().requires_grad_()
        y = fn(a, b)
        y.backward(grad)
        results.append((y.detach(), a.grad, b.grad))
    return results


@pytest.mark.parametrize('length, chunk', [(3840, 480), (512, 512), (600, 300), (1031, 1031), (196, 196), (1, 1)])
def test_token_chunk(length, chunk):
    assert _token_chunk(length) == chunk


@pytest.mark.parametrize('shape', [(2, 2, 30, 3840), (3, 2, 12, 196), (1, 1, 5, 1031), (2, 2, 4, 1)])
def test_equals_einsum_in_float64(shape):
    expected, got = _einsum_and_ours(shape)
    for name, a, b in zip(('output', 'input gradient', 'weight gradient'), got, expected):
        assert a.dtype == b.dtype, name
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


def test_without_weight_gradient_it_is_einsum():
    x, weight = torch.randn(2, 2, 6, 40), torch.randn(2, 3, 6)
    with torch.no_grad():
        assert torch.equal(project_directions(x, weight), torch.einsum('bkdl,kcd->bkcl', x, weight))


def test_bf16_autocast_sums_weight_gradient_in_float32():
    x = torch.randn(2, 2, 16, 1024, requires_grad=True)
    weight = torch.randn(2, 5, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = project_directions(x, weight)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
    exact = torch.einsum('bkdl->kd', x.detach().double())[:, None].expand(-1, 5, -1)
    assert ((weight.grad - exact).abs().max() / exact.abs().max()).item() < 2e-2


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
@pytest.mark.parametrize('dtype, tolerance', [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_on_cuda_at_s6_stage1_size(dtype, tolerance, tf32):
    """S6's first stage at 4x768x1280 (3840 tokens per image), against einsum in float64."""
    tf32(False)
    (reference, _), (_, got) = (_einsum_and_ours((4, 2, 306, 3840), 12, torch.float64, 'cuda'),
                                _einsum_and_ours((4, 2, 306, 3840), 12, dtype, 'cuda'))
    for name, a, b in zip(('output', 'input gradient', 'weight gradient'), got, reference):
        error = ((a.double() - b).abs().max() / b.abs().max()).item()
        assert error < tolerance, (name, error)
