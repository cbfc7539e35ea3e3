"""Selective scan: the parallel PyTorch scan against the float64 sequential reference."""
import importlib

import pytest
import torch

# the module (the package's ``selective_scan`` attribute is the function of that name)
ss = importlib.import_module('mmmobilemamba.ops.selective_scan')


def make_inputs(batch=2, groups=2, channels=3, states=2, length=37, dtype=torch.float64, bias=True):
    u = torch.randn(batch, groups * channels, length, dtype=dtype)
    delta = torch.randn_like(u)
    A = -torch.rand(groups * channels, states, dtype=dtype) * 2 - 0.1
    B = torch.randn(batch, groups, states, length, dtype=dtype)
    C = torch.randn_like(B)
    D = torch.randn(groups * channels, dtype=dtype)
    delta_bias = torch.randn(groups * channels, dtype=dtype) if bias else None
    return [u, delta, A, B, C, D, delta_bias]


@pytest.mark.parametrize('length', [1, 2, 63, 64, 65, 200, 1000])
def test_linear_recurrence_matches_loop(length):
    a = torch.rand(3, length, dtype=torch.float64)
    b = torch.randn(3, length, dtype=torch.float64)
    h, expected = torch.zeros(3, dtype=torch.float64), []
    for t in range(length):
        h = a[:, t] * h + b[:, t]
        expected.append(h)
    expected = torch.stack(expected, -1)
    torch.testing.assert_close(ss.linear_recurrence(a, b), expected)
    torch.testing.assert_close(ss.chunked_linear_recurrence(a, b, chunk=16), expected)


@pytest.mark.parametrize('length,states,groups', [(1, 1, 2), (37, 1, 2), (130, 4, 1), (300, 2, 2)])
def test_torch_scan_forward_and_grad_match_reference(length, states, groups):
    inputs = make_inputs(groups=groups, states=states, length=length)
    ref_inputs = [t.clone().requires_grad_() for t in inputs]
    fast_inputs = [t.clone().requires_grad_() for t in inputs]
    y_ref = ss.selective_scan_reference(*ref_inputs)
    y = ss.selective_scan_torch(*fast_inputs)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-4, atol=1e-4)
    grad_out = torch.randn_like(y_ref)
    y_ref.backward(grad_out)
    y.backward(grad_out.float())
    for name, fast, ref in zip('u delta A B C D delta_bias'.split(), fast_inputs, ref_inputs):
        # every input gets a gradient, also A for L == 1 (zero there): DDP needs it
        torch.testing.assert_close(fast.grad.double(), ref.grad, rtol=1e-3, atol=1e-3, msg=name)


def test_scan_without_optional_terms():
    u, delta, A, B, C, _, _ = make_inputs(length=20)
    y_ref = ss.selective_scan_reference(u, delta, A, B, C, None, None, False)
    y = ss.selective_scan(u.float(), delta.float(), A.float(), B.float(), C.float(), delta_softplus=False)
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-4, atol=1e-4)


def test_half_inputs_are_computed_in_float32():
    inputs = make_inputs(length=50, dtype=torch.float32)
    y32 = ss.selective_scan(*inputs)
    y16 = ss.selective_scan(*[t.bfloat16() for t in inputs[:2]] + inputs[2:3] + [t.bfloat16() for t in inputs[3:5]] + inputs[5:])
    assert y16.dtype == torch.float32
    torch.testing.assert_close(y16, y32, rtol=0.1, atol=0.1)


def test_dispatch_on_cpu_and_fallback_warning(monkeypatch):
    inputs = [t.float() for t in make_inputs(length=10)]
    assert ss.available_backends(torch.device('cpu')) == ['torch', 'reference']
    monkeypatch.setenv('MMMOBILEMAMBA_SCAN_BACKEND', 'triton')
    ss._warn_once.cache_clear()
    with pytest.warns(RuntimeWarning, match="'triton' is not available"):
        y = ss.selective_scan(*inputs)
    torch.testing.assert_close(y, ss.selective_scan_torch(*inputs))
    monkeypatch.setenv('MMMOBILEMAMBA_SCAN_BACKEND', 'cuda-magic')
    with pytest.raises(ValueError, match='unknown selective-scan backend'):
        ss.selective_scan(*inputs)


def test_bad_shapes_are_refused():
    u, delta, A, B, C, D, bias = [t.float() for t in make_inputs(groups=2, channels=3)]
    with pytest.raises(ValueError, match='G dividing'):
        ss.selective_scan(u[:, :5], delta[:, :5], A[:5], B, C, D[:5], bias[:5])
