"""``MobileMamba(compile=...)``: CUDA training steps through ``torch.compile`` are as accurate as eager ones.

Off CUDA, in eval mode and without gradients the option changes nothing (checked on the CPU); the
compiled comparisons need a GPU (each compiles a T2 forward + backward).
"""
import copy
import importlib
import pickle
from unittest import mock

import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.layers.compiled_training import CompiledTraining, compile_options

from _random_weights import GPU_FP32, randomize_norms_and_scales, relative_error
from test_cuda_graph import _assert_close, _step, gradient_errors

scan_module = importlib.import_module('mmmobilemamba.ops.selective_scan')
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def _pair(compile, norm_eval=False, cuda_graph=False):
    """(eager, compiled) T2 backbones with the same randomised weights, in training mode."""
    eager = randomize_norms_and_scales(MobileMamba('T2', norm_eval=norm_eval, check_finite=False))
    compiled = MobileMamba('T2', norm_eval=norm_eval, check_finite=False, compile=compile, cuda_graph=cuda_graph)
    compiled.load_state_dict(eager.state_dict())
    return eager.train(), compiled.train()


NCHW = dict(layout_optimization=False)


@pytest.mark.parametrize('value, expected', [
    (False, None), (None, None), (True, dict(dynamic=False, options=NCHW)),
    # a mode becomes its inductor options, since torch.compile does not take a mode and options together
    (dict(mode='max-autotune-no-cudagraphs'),
     dict(dynamic=False, options={**NCHW, 'max_autotune': True, 'coordinate_descent_tuning': True})),
    (dict(dynamic=True, options={'layout_optimization': True}),
     dict(dynamic=True, options=dict(layout_optimization=True)))])
def test_compile_options(value, expected):
    assert compile_options(value) == expected


def test_unknown_compile_mode_is_named():
    with pytest.raises(ValueError, match="'fastest' is not one of torch.compile's modes"):
        MobileMamba('T2', compile=dict(mode='fastest'))


@pytest.mark.parametrize('value', [dict(mode='reduce-overhead'), dict(mode='max-autotune'),
                                   dict(options={'triton.cudagraphs': True})])
def test_inductor_cuda_graphs_are_refused(value):
    """Compiled steps replayed by inductor's CUDA graphs gave wrong gradients on the GPU (module doc)."""
    with pytest.raises(ValueError, match='cuda_graph=True for graph replay'):
        MobileMamba('T2', compile=value)


def test_options_are_accepted_by_torch_compile():
    """The defaults compile and run (CPU, where inductor makes C++ kernels)."""
    fn = torch.compile(lambda x: torch.nn.functional.conv2d(x, torch.ones(4, 1, 3, 3), groups=4),
                       **compile_options(dict(mode='default')))
    assert fn(torch.ones(1, 4, 5, 5)).shape == (1, 4, 3, 3)


def test_bad_compile_setting_is_named():
    with pytest.raises(TypeError, match='compile must be a bool or a dict'):
        MobileMamba('T2', compile='max-autotune')
    with pytest.raises(TypeError, match=r"\['modes'\], which torch.compile does not take"):
        MobileMamba('T2', compile=dict(modes='reduce-overhead'))


def test_compile_with_checkpointing_is_refused():
    with pytest.raises(ValueError, match='compile does not combine with with_cp'):
        MobileMamba('T2', compile=True, with_cp=True)


@pytest.mark.parametrize('graphs', [False, True])
def test_off_cuda_the_option_runs_eagerly(monkeypatch, graphs):
    def refuse(*args, **kwargs):
        raise AssertionError('torch.compile called for a CPU step')

    monkeypatch.setattr(torch, 'compile', refuse)
    eager, compiled = _pair(compile=True, cuda_graph=graphs)
    x = torch.randn(2, 3, 128, 160)
    _assert_close(_step(compiled, x), _step(eager, x), 1e-6)
    with torch.no_grad():
        outs = compiled.eval()(x)
    assert relative_error(outs[-1], eager.eval()(x)[-1]) <= 1e-6
    assert compiled._compiled._compiled is None


def test_copies_and_pickles_compile_their_own():
    holder = CompiledTraining(compile_options(True))
    holder._compiled = object()
    for clone in (copy.deepcopy(holder), pickle.loads(pickle.dumps(holder))):
        assert clone._compiled is None and clone.options == holder.options
    model = MobileMamba('T2', compile=True)
    model._compiled._compiled = object()
    assert copy.deepcopy(model)._compiled._compiled is None


def assert_steps_as_accurate_as_eager(eager, other, steps=3, factor=10.0):
    """``steps`` training steps of ``other`` and of the eager float32 model, each from the same
    weights (copied in place; an SGD step of the eager model in between), measured against the same
    model in float64 (sequential reference scan): outputs equal the eager ones within ``GPU_FP32``,
    and the largest gradient error of ``other`` is at most ``factor`` times the eager model's, or
    ``GPU_FP32``. BatchNorm in training mode makes a step ill-conditioned: a channel of small batch
    variance amplifies rounding, so two correct float32 forms that round differently (inductor's
    fused kernels against eager ones) can differ by far more than ``GPU_FP32`` where each is as far
    from float64; a form that computed something else (stale weights, a wrong kernel) is far more."""
    device = next(eager.parameters()).device
    reference = MobileMamba('T2', norm_eval=eager.norm_eval, check_finite=False, scan_backend='reference')
    reference = reference.double().to(device).train()
    optimizer = torch.optim.SGD(eager.parameters(), lr=0.05)
    # the reference backend returns float32, like every backend: the float64 model's scan stays float64
    with mock.patch.dict(scan_module._IMPLEMENTATIONS, reference=_float64_scan):
        targets = other.state_dict(), reference.state_dict()
        for step in range(steps):
            with torch.no_grad():
                for name, source in eager.state_dict().items():
                    for target in targets:
                        target[name].copy_(source)
            x = torch.randn(2, 3, 160, 224, device=device, generator=torch.Generator(device.type).manual_seed(step))
            expected, got, exact = _step(eager, x), _step(other, x), _step(reference, x.double())
            for a, b in zip(got[0], expected[0]):
                assert relative_error(a, b) <= GPU_FP32, step
            eager_errors, other_errors = gradient_errors(expected[1], exact[1]), gradient_errors(got[1], exact[1])
            worst_eager, worst = max(eager_errors.values()), max(other_errors.values())
            print(f'step {step}: largest gradient error from float64 {worst:.2e}, eager {worst_eager:.2e}')
            assert worst <= max(factor * worst_eager, GPU_FP32), (
                step, f'{worst:.2e} ({max(other_errors, key=other_errors.get)}) vs eager {worst_eager:.2e} '
                f'({max(eager_errors, key=eager_errors.get)}) from float64')
            optimizer.step()


def _float64_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    return scan_module.selective_scan_reference(u, delta, A, B, C, D, delta_bias, delta_softplus)


def test_accuracy_yardstick_on_the_cpu():
    """The yardstick itself, on the CPU: an eager copy passes, a copy that misses the weight update
    between two steps (what a graph reading stale weights would do) fails."""
    eager, other = _pair(False)
    assert_steps_as_accurate_as_eager(eager, other, steps=1, factor=1.0)
    eager, stale = _pair(False)
    stale.state_dict = lambda: {name: t.clone() for name, t in MobileMamba.state_dict(stale).items()}
    with pytest.raises(AssertionError, match=r'^\(?1\b'):
        assert_steps_as_accurate_as_eager(eager, stale, steps=2)


@requires_cuda
@pytest.mark.parametrize('graphs', [False, True], ids=['compiled', 'compiled-graphed'])
def test_compiled_training_steps_as_accurate_as_eager(tf32, graphs):
    """BatchNorm in training mode (the case inductor rewrites most); with ``cuda_graph=True`` the
    compiled kernels are captured and replayed by the backbone's own graph cache."""
    tf32(False)
    eager, compiled = (m.cuda() for m in _pair(True, norm_eval=False, cuda_graph=graphs))
    assert_steps_as_accurate_as_eager(eager, compiled)
    assert compiled._compiled._compiled is not None
    assert len(compiled._graphs) == (1 if graphs else 0)
