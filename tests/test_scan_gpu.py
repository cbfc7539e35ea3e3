"""GPU checks of the Triton selective-scan kernel against the float64 sequential reference.

Skipped without CUDA (and without Triton). Forward output and the gradients of every input
(u, delta, A, B, C, D, delta_bias) are compared; the kernel computes in float32.
"""
import pytest
import torch

from mmmobilemamba.ops import selective_scan, selective_scan_reference, selective_scan_torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

NAMES = ('u', 'delta', 'A', 'B', 'C', 'D', 'delta_bias')


def _kernel():
    triton_scan = pytest.importorskip('mmmobilemamba.ops.triton_selective_scan')
    return triton_scan.selective_scan_triton


def _inputs(batch, groups, dg, n_states, length, dtype=torch.float32, with_d=True, with_bias=True,
            split_bc=False, seed=0):
    """Random inputs on the GPU in ``dtype`` (A, D, delta_bias stay float32, as in the model)."""
    gen = torch.Generator(device='cpu').manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).cuda()

    channels = groups * dg
    u = rnd(batch, channels, length).to(dtype)
    delta = rnd(batch, channels, length, scale=0.5).to(dtype)
    A = -(torch.rand(channels, n_states, generator=gen) * 2 + 0.05).cuda()
    if split_bc:  # B and C as strided views of one projection, as in the model
        bc = rnd(batch, groups, 3 + 2 * n_states, length).to(dtype)
        B, C = bc[:, :, 3:3 + n_states], bc[:, :, 3 + n_states:]
    else:
        B = rnd(batch, groups, n_states, length).to(dtype)
        C = rnd(batch, groups, n_states, length).to(dtype)
    D = rnd(channels) if with_d else None
    bias = rnd(channels, scale=0.3) if with_bias else None
    return [u, delta, A, B, C, D, bias]


def _leaves(xs, dtype=None):
    out = []
    for x in xs:
        if x is None:
            out.append(None)
            continue
        x = x.detach().clone()
        out.append((x.to(dtype) if dtype is not None else x).requires_grad_())
    return out


def _compare(xs, softplus=True, rtol=1e-4, atol=1e-5, scan=None):
    """Run a kernel (default: ours) and the float64 reference; assert forward and all gradients agree:
    max |kernel - ref| <= rtol * max |ref| + atol (atol covers gradients that are exactly zero,
    e.g. dA for a one-token sequence, where the kernel leaves float32 rounding residue)."""
    scan = scan or _kernel()
    ref_in = _leaves(xs, torch.float64)
    ker_in = _leaves(xs)
    ref = selective_scan_reference(*ref_in, delta_softplus=softplus)
    out = scan(*ker_in, delta_softplus=softplus)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    dy = torch.randn_like(ref)
    ref.backward(dy)
    out.backward(dy.float())
    pairs = {'y': (out, ref)}
    for name, k, r in zip(NAMES, ker_in, ref_in):
        if r is None:
            continue
        assert k.grad is not None and k.grad.dtype == k.dtype and k.grad.shape == k.shape, name
        pairs[name] = (k.grad, r.grad)
    errors = {name: ((a.double() - b).abs().max().item(), b.abs().max().item()) for name, (a, b) in pairs.items()}
    bad = {name: e for name, e in errors.items() if not e[0] <= rtol * e[1] + atol}
    assert not bad, f'(max abs error, max |ref|): {errors}'
    return errors


def _rel(a, b):
    return ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize('length', [1, 7, 64, 129, 196, 4099])
@pytest.mark.parametrize('n_states', [1, 4])
@pytest.mark.parametrize('groups', [1, 2])
def test_matches_reference_fp32(length, n_states, groups):
    batch = 1 if length > 1000 else 2
    _compare(_inputs(batch, groups, 24, n_states, length, seed=length * 7 + n_states + groups))


@pytest.mark.parametrize('n_states', [2, 3, 16])
def test_other_state_counts(n_states):
    _compare(_inputs(2, 2, 9, n_states, 50, seed=n_states))


@pytest.mark.parametrize('with_d,with_bias,softplus', [(False, False, True), (True, False, False),
                                                       (False, True, False)])
def test_optional_terms(with_d, with_bias, softplus):
    _compare(_inputs(2, 2, 10, 2, 33, with_d=with_d, with_bias=with_bias), softplus=softplus)


def test_strided_b_c_and_odd_channels():
    _compare(_inputs(3, 2, 37, 1, 150, split_bc=True))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs(dtype):
    """Half inputs are read as they are and computed in float32: compare with the reference run on
    the same (rounded) values; gradients come back in the inputs' dtypes."""
    xs = _inputs(2, 2, 16, 1, 196, dtype=dtype)
    rounded = [x.float() if x is not None else None for x in xs]
    scan = _kernel()
    ker_in = _leaves(xs)
    ref_in = _leaves(rounded, torch.float64)
    out = scan(*ker_in)
    ref = selective_scan_reference(*ref_in)
    assert out.dtype == torch.float32
    assert _rel(out, ref) < 1e-4
    dy = torch.randn_like(ref)
    out.backward(dy.float())
    ref.backward(dy)
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3  # gradients are rounded to the input dtype
    for name, k, r in zip(NAMES, ker_in, ref_in):
        if r is not None:
            assert k.grad.dtype == k.dtype
            assert _rel(k.grad, r.grad) < tol, name


def test_matches_torch_backend_at_model_shape():
    xs = _inputs(16, 2, 160, 1, 196, seed=3)
    out = _kernel()(*xs)
    ref = selective_scan_torch(*xs)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_dispatcher_picks_kernel():
    xs = _inputs(2, 2, 8, 1, 16)
    out = selective_scan(*xs, backend='triton')
    torch.testing.assert_close(out, _kernel()(*xs))


@pytest.mark.parametrize('length', [300, 1100])  # inference chunks: TUNING['block_t'], TUNING['long_block_t']
def test_no_grad_inference_and_determinism(length):
    xs = _inputs(4, 2, 64, 1, length, seed=5)
    with torch.no_grad():  # the inference launch: no checkpoints
        a = _kernel()(*xs)
        assert torch.equal(a, _kernel()(*xs))
    ker_in = _leaves(xs)
    b = _kernel()(*ker_in)  # the training launch: checkpoints, TUNING['grad_block_t'] chunks
    # (the training launch itself is checked against the float64 reference above)
    assert b.requires_grad
    torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)
    grads = []
    for _ in range(2):
        for x in ker_in:
            if x is not None:
                x.grad = None
        _kernel()(*ker_in).square().sum().backward()
        grads.append([x.grad.clone() for x in ker_in if x is not None])
    for g1, g2 in zip(*grads):
        assert torch.equal(g1, g2)


@pytest.mark.parametrize('length', [7, 196, 4099])
def test_mamba_ssm_backend_matches_reference(length):
    """Where mamba-ssm's CUDA kernel is installed, the dispatcher's 'mamba_ssm' backend is checked
    with the same tolerance (it is the comparison kernel of tools/analysis_tools/benchmark.py)."""
    pytest.importorskip('mamba_ssm.ops.selective_scan_interface')

    def mamba_ssm_scan(*args, **kwargs):
        return selective_scan(*args, backend='mamba_ssm', **kwargs).float()

    _compare(_inputs(2, 2, 32, 1, length, seed=7), scan=mamba_ssm_scan)


def _ss2d_scan_inputs(batch, channels, rank, n_states, height, width, seed=0):
    """x (batch, Di, H, W) and the scan parameters of a two-direction SS2D, on the GPU."""
    gen = torch.Generator(device='cpu').manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).cuda()

    x = rnd(batch, channels, height, width)
    x_proj_weight = rnd(2, rank + 2 * n_states, channels, scale=channels ** -0.5)
    dt_projs_weight = rnd(2, channels, rank, scale=rank ** -0.5)
    dt_projs_bias = rnd(2, channels, scale=0.3)
    A_logs = (torch.rand(2 * channels, n_states, generator=gen) * 2 - 1).cuda()
    Ds = rnd(2 * channels)
    return x, [x_proj_weight, dt_projs_weight, dt_projs_bias, A_logs, Ds]


@pytest.mark.parametrize('batch,channels,rank,n_states,height,width', [
    (2, 64, 4, 1, 14, 14),      # S6 stage-1 like: L = 196, two chunks of 128 -> one of 256
    (3, 37, 3, 3, 7, 9),        # odd channels, padded states (N = 3 -> 4), L = 63
    (1, 16, 1, 1, 1, 1),        # one token
    (2, 24, 2, 2, 33, 34),      # L = 1122: long-sequence chunks, last one partial
])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_bidirectional_scan_matches_float64_two_pass(batch, channels, rank, n_states, height, width,
                                                           dtype, channels_last, inference_kernel_calls):
    """Inference of the two-direction flattened scan runs in the fused kernel and agrees with the
    generic path (flipped copies, float64 sequential reference on the CPU), for channels-first and
    channels-last maps (the deploy mode's layout; the output keeps the input's layout)."""
    pytest.importorskip('mmmobilemamba.ops.triton_bidirectional_scan')
    from mmmobilemamba.models.layers.ss2d import flattened_selective_scan
    calls = inference_kernel_calls('bidirectional_scan')
    x, params = _ss2d_scan_inputs(batch, channels, rank, n_states, height, width)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = x.to(dtype).contiguous(memory_format=layout)
    with torch.no_grad():
        got = flattened_selective_scan(x, *params)
    assert calls, 'the fused kernel was not used'
    assert got.dtype == torch.float32 and got.shape == (batch, channels, height, width)
    assert got.is_contiguous(memory_format=layout) or height * width == 1
    with torch.no_grad():  # CPU float64 takes the generic path (stack, flip, reference scan)
        expected = flattened_selective_scan(x.double().cpu(), *[p.double().cpu() for p in params])
    error = (got.double().cpu() - expected).abs().max().item()
    scale = expected.abs().max().item()
    # bf16: the projections are rounded to bf16 on the GPU (autocast's einsum), not in float64
    assert error <= (1e-4 if dtype == torch.float32 else 3e-2) * scale + 1e-5, (error, scale)
    with torch.no_grad():  # deterministic: the same bits twice
        assert torch.equal(flattened_selective_scan(x, *params), got)


def test_fused_bidirectional_scan_is_skipped_when_gradients_are_wanted(monkeypatch):
    pytest.importorskip('mmmobilemamba.ops.triton_bidirectional_scan')
    from mmmobilemamba.ops import triton_inference_kernel
    monkeypatch.setenv('MMMOBILEMAMBA_SCAN_BACKEND', 'triton')
    x, params = _ss2d_scan_inputs(1, 8, 1, 1, 4, 4)
    params[0].requires_grad_()
    assert triton_inference_kernel('bidirectional_scan', x, *params) is None
    with torch.no_grad():
        assert triton_inference_kernel('bidirectional_scan', x, *params) is not None
    monkeypatch.setenv('MMMOBILEMAMBA_SCAN_BACKEND', 'torch')
    with torch.no_grad():
        assert triton_inference_kernel('bidirectional_scan', x, *params) is None
