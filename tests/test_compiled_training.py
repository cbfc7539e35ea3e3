"""``MobileMamba(compile=...)``: CUDA training steps through ``torch.compile`` equal the eager ones.

Off CUDA, in eval mode and without gradients the option changes nothing (checked on the CPU); the
compiled comparison needs a GPU (it compiles a T2 forward + backward once).
"""
import copy
import pickle

import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.layers.compiled_training import CompiledTraining, compile_options

from _random_weights import randomize_norms_and_scales, relative_error
from test_cuda_graph import _assert_close, _step, assert_steps_from_same_weights_equal

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def _pair(compile, norm_eval=False):
    """(eager, compiled) T2 backbones with the same randomised weights, in training mode."""
    eager = randomize_norms_and_scales(MobileMamba('T2', norm_eval=norm_eval, check_finite=False))
    compiled = MobileMamba('T2', norm_eval=norm_eval, check_finite=False, compile=compile)
    compiled.load_state_dict(eager.state_dict())
    return eager.train(), compiled.train()


@pytest.mark.parametrize('value, expected', [
    (False, None), (None, None), (True, dict(dynamic=False)),
    (dict(mode='reduce-overhead'), dict(dynamic=False, mode='reduce-overhead')),
    (dict(dynamic=True), dict(dynamic=True))])
def test_compile_options(value, expected):
    assert compile_options(value) == expected


def test_bad_compile_setting_is_named():
    with pytest.raises(TypeError, match='compile must be a bool or a dict'):
        MobileMamba('T2', compile='max-autotune')
    with pytest.raises(TypeError, match=r"\['modes'\], which torch.compile does not take"):
        MobileMamba('T2', compile=dict(modes='reduce-overhead'))


@pytest.mark.parametrize('other', [dict(cuda_graph=True), dict(with_cp=True)])
def test_compile_with_graphs_or_checkpointing_is_refused(other):
    with pytest.raises(ValueError, match='reduce-overhead'):
        MobileMamba('T2', compile=True, **other)


def test_off_cuda_the_option_runs_eagerly(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('torch.compile called for a CPU step')

    monkeypatch.setattr(torch, 'compile', refuse)
    eager, compiled = _pair(compile=True)
    x = torch.randn(2, 3, 128, 160)
    _assert_close(_step(compiled, x), _step(eager, x), 1e-6)
    with torch.no_grad():
        outs = compiled.eval()(x)
    assert relative_error(outs[-1], eager.eval()(x)[-1]) <= 1e-6
    assert compiled._compiled._compiled is None


def test_copies_and_pickles_compile_their_own():
    holder = CompiledTraining(dict(mode='reduce-overhead'))
    holder._compiled = object()
    for clone in (copy.deepcopy(holder), pickle.loads(pickle.dumps(holder))):
        assert clone._compiled is None and clone.options == holder.options
    model = MobileMamba('T2', compile=True)
    model._compiled._compiled = object()
    assert copy.deepcopy(model)._compiled._compiled is None


@requires_cuda
def test_compiled_training_steps_equal_eager(tf32):
    """The configs' mode (compiled kernels replayed as CUDA graphs) with BatchNorm in training mode
    (the case inductor rewrites most)."""
    tf32(False)
    eager, compiled = (m.cuda() for m in _pair(dict(mode='reduce-overhead'), norm_eval=False))
    assert_steps_from_same_weights_equal(eager, compiled)
    assert compiled._compiled._compiled is not None
