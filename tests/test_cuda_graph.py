"""``MobileMamba(cuda_graph=True)``: the training step replayed as CUDA graphs equals the eager one.

Off CUDA the option changes nothing (checked here on the CPU); the graph tests need a GPU.
"""
import contextlib
import copy
import pickle
import warnings

import pytest
import torch
from torch import nn

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.layers.cuda_graph import CudaGraphCache

from _random_weights import BF16, GPU_FP32, randomize_norms_and_scales, relative_error

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def _pair(norm_eval=True, **kwargs):
    """(eager, graphed) T2 backbones with the same randomised weights, in training mode."""
    eager = randomize_norms_and_scales(MobileMamba('T2', norm_eval=norm_eval, check_finite=False, **kwargs))
    graphed = MobileMamba('T2', norm_eval=norm_eval, check_finite=False, cuda_graph=True, **kwargs)
    graphed.load_state_dict(eager.state_dict())
    return eager.train(), graphed.train()


def _step(model, x, autocast_dtype=None):
    """Outputs and parameter gradients of one forward + backward."""
    model.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        outs = model(x)
    sum((o.float() * torch.linspace(-1, 1, o.shape[1], device=o.device)[:, None, None]).square().mean()
        for o in outs).backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    return [o.detach().clone() for o in outs], grads


NOISE = 1e-6  # of the largest gradient: float32 rounding of an analytically zero gradient lies below


def gradient_errors(got: dict, expected: dict) -> dict:
    """Per parameter, ``relative_error`` of the gradient in ``got`` against ``expected``, for the
    gradients above float noise. In training mode the bias of a BatchNorm whose every path to the
    loss passes through another training-mode BatchNorm (the layers before a PatchMerging) has
    gradient 0 analytically: a constant shift is normalised away, and its computed value is
    rounding noise (about 1e-9 of the largest gradient), unequal between any two forms. Such
    gradients must stay below the noise level in ``got`` too."""
    assert got.keys() == expected.keys() and expected
    scale = max(g.abs().max() for g in expected.values())
    noise = {name for name, g in expected.items() if g.abs().max() <= NOISE * scale}
    assert len(noise) < len(expected) // 10, sorted(noise)
    loud = {name: f'{got[name].abs().max() / scale:.1e}' for name in noise if got[name].abs().max() > NOISE * scale}
    assert not loud, ('gradients that are float noise in one form only', loud)
    return {name: relative_error(got[name], expected[name]) for name in expected if name not in noise}


def _assert_close(got, expected, tolerance):
    """``got`` and ``expected`` from :func:`_step`: outputs and every gradient above float noise
    (:func:`gradient_errors`) within ``tolerance``."""
    (outs_got, grads_got), (outs_expected, grads_expected) = got, expected
    for a, b in zip(outs_got, outs_expected):
        assert relative_error(a, b) <= tolerance
    errors = gradient_errors(grads_got, grads_expected)
    scale = max(g.abs().max() for g in grads_expected.values())
    over = {name: (f'{error:.2e}', f'|grad| {grads_expected[name].abs().max() / scale:.1e} of the largest')
            for name, error in sorted(errors.items(), key=lambda kv: -kv[1]) if error > tolerance}
    assert not over, (len(over), list(over.items())[:12])


def assert_steps_from_same_weights_equal(eager, other, steps=3):
    """``steps`` CUDA training steps of ``other`` equal the eager model's, an SGD step of the eager model
    in between, each started from the eager model's weights copied in place into ``other``: replays
    read the updated weights and new inputs, and the comparison is of one step at a time, not of two
    optimizer trajectories drifting apart."""
    optimizer = torch.optim.SGD(eager.parameters(), lr=0.05)
    for step in range(steps):
        with torch.no_grad():
            for target, source in zip(other.parameters(), eager.parameters()):
                target.copy_(source)
        x = torch.randn(2, 3, 160, 224, device='cuda', generator=torch.Generator('cuda').manual_seed(step))
        expected, got = _step(eager, x), _step(other, x)
        _assert_close(got, expected, GPU_FP32)
        optimizer.step()


def test_cuda_graph_with_checkpointing_is_refused():
    with pytest.raises(ValueError, match='with_cp'):
        MobileMamba('T2', cuda_graph=True, with_cp=True)


def test_cache_size_must_be_positive():
    with pytest.raises(ValueError, match='max_graphs'):
        CudaGraphCache(max_graphs=0)


def test_off_cuda_the_option_runs_eagerly():
    eager, graphed = _pair()
    x = torch.randn(2, 3, 128, 160)
    _assert_close(_step(graphed, x), _step(eager, x), 1e-6)
    assert len(graphed._graphs) == 0


def test_copies_and_pickles_start_without_graphs():
    cache = CudaGraphCache(max_graphs=3)
    cache._graphs[('key',)] = object()
    for clone in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert len(clone) == 0 and clone.max_graphs == 3
    assert len(cache) == 1


def test_a_full_cache_warns_once_and_runs_new_shapes_without_a_graph(monkeypatch):
    """The cache logic alone (capture stubbed, so it runs on the CPU): the shape past ``max_graphs``
    and every later new shape run ``fn`` itself, with one warning; a pickled copy starts empty and
    warns again once full."""
    cache, captured, calls = CudaGraphCache(max_graphs=1), [], []
    monkeypatch.setattr(CudaGraphCache, '_capture', lambda self, owner, fn, x, dtype: captured.append(x.shape) or fn)
    fn = lambda x: calls.append(x.shape) or x
    owner = nn.Linear(1, 1)
    cache._graphed_call(owner, fn, torch.zeros(1, 2))
    with pytest.warns(RuntimeWarning, match='holds 1 input shapes already'):
        cache._graphed_call(owner, fn, torch.zeros(1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        cache._graphed_call(owner, fn, torch.zeros(1, 4))
    assert captured == [(1, 2)] and calls == [(1, 2), (1, 3), (1, 4)]
    clone = pickle.loads(pickle.dumps(cache))
    clone._graphed_call(owner, fn, torch.zeros(1, 5))
    with pytest.warns(RuntimeWarning, match='holds 1 input shapes already'):
        clone._graphed_call(owner, fn, torch.zeros(1, 6))
    assert captured == [(1, 2), (1, 5)]


@requires_cuda
@pytest.mark.parametrize('norm_eval', [True, False], ids=['frozen-bn', 'training-bn'])
def test_graphed_training_steps_equal_eager(tf32, norm_eval):
    tf32(False)
    eager, graphed = (m.cuda() for m in _pair(norm_eval=norm_eval))
    assert_steps_from_same_weights_equal(eager, graphed)
    assert len(graphed._graphs) == 1


@requires_cuda
def test_graphed_bf16_autocast_step_equals_eager():
    eager, graphed = (m.cuda() for m in _pair())
    x = torch.randn(2, 3, 160, 224, device='cuda')
    for _ in range(2):
        _assert_close(_step(graphed, x, torch.bfloat16), _step(eager, x, torch.bfloat16), BF16)
    assert len(graphed._graphs) == 1


@requires_cuda
def test_shapes_past_the_limit_run_eagerly(tf32):
    tf32(False)
    eager, graphed = (m.cuda() for m in _pair(cuda_graph_max_shapes=1))
    first, second = (torch.randn(2, 3, h, 192, device='cuda') for h in (128, 192))
    _step(graphed, first)
    with pytest.warns(RuntimeWarning, match='BatchBucketPad'):
        got = _step(graphed, second)
    _assert_close(got, _step(eager, second), GPU_FP32)
    assert len(graphed._graphs) == 1


@requires_cuda
def test_moving_the_module_drops_its_graphs():
    _, graphed = _pair()
    graphed.cuda()
    _step(graphed, torch.randn(2, 3, 128, 128, device='cuda'))
    assert len(graphed._graphs) == 1
    graphed.to(torch.float32)
    assert len(graphed._graphs) == 0
    graphed.eval()
    with torch.no_grad():
        graphed(torch.randn(1, 3, 128, 128, device='cuda'))  # inference: never captured
    assert len(graphed._graphs) == 0


@requires_cuda
def test_accumulated_gradients_add_up(tf32):
    """Two backwards before one step: the second runs eagerly and the sums equal eager training's."""
    tf32(False)
    eager, graphed = (m.cuda() for m in _pair())
    xs = [torch.randn(2, 3, 128, 160, device='cuda') for _ in range(2)]
    grads = []
    for model in (eager, graphed):
        model.zero_grad(set_to_none=True)
        warns = pytest.warns(RuntimeWarning, match='accumulation') if model is graphed else contextlib.nullcontext()
        with warns:
            for x in xs:
                sum(o.square().mean() for o in model(x)).backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    expected, got = grads
    assert got.keys() == expected.keys()
    for name in expected:
        assert relative_error(got[name], expected[name]) <= GPU_FP32, name
