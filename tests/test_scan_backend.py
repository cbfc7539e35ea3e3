"""Choosing the selective-scan backend: the constructor argument (reachable from configs), the
environment variable as an override, the one warning when 'auto' on CUDA misses our Triton kernels,
and every backend returning float32."""
import importlib
import sys
import types

import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.ops import kernel_registry

ss = importlib.import_module('mmmobilemamba.ops.selective_scan')  # the module (the package exports the function)

TRITON_MODULE = 'mmmobilemamba.ops.triton_selective_scan'


def _scan_inputs(length=12, channels=4, groups=1, states=2, batch=2):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(batch, channels, length, generator=g), torch.randn(batch, channels, length, generator=g),
            -torch.rand(channels, states, generator=g) - 0.5, torch.randn(batch, groups, states, length, generator=g),
            torch.randn(batch, groups, states, length, generator=g), torch.randn(channels, generator=g),
            torch.randn(channels, generator=g)]


@pytest.fixture
def fresh_dispatch(monkeypatch):
    """Kernel imports and warnings are cached per process: start from an empty cache, leave one behind."""
    monkeypatch.delenv('MMMOBILEMAMBA_SCAN_BACKEND', raising=False)
    for cache in (kernel_registry.load_kernel.cache_clear, ss._warn_once.cache_clear):
        cache()
    cached = (kernel_registry.LOADED_KERNELS, kernel_registry._IMPORT_ERRORS)
    saved = [dict(d) for d in cached]
    yield monkeypatch
    for cache in (kernel_registry.load_kernel.cache_clear, ss._warn_once.cache_clear):
        cache()
    for live, old in zip(cached, saved):
        live.clear()
        live.update(old)


def test_constructor_argument_reaches_every_scan_and_the_env_var_overrides_it(fresh_dispatch):
    used = []
    fresh_dispatch.setattr(ss, '_resolve', lambda backend, device: used.append(backend) or 'torch')
    model = MobileMamba('T2', scan_backend='reference').eval()
    mixers = [m for m in model.modules() if hasattr(m, 'scan_backend') and m is not model]
    assert len(mixers) == 5 and {m.scan_backend for m in mixers} == {'reference'}  # one SS2D per block
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert used and set(used) == {'reference'}

    fresh_dispatch.undo()
    fresh_dispatch.setenv('MMMOBILEMAMBA_SCAN_BACKEND', 'reference')
    assert ss._resolve('torch', 'cpu') == 'reference'  # the variable overrides the argument
    fresh_dispatch.setenv('MMMOBILEMAMBA_SCAN_BACKEND', '')  # empty: as if unset
    assert ss._resolve('reference', 'cpu') == 'reference'


def test_config_sets_the_backend():
    from mmengine.registry import MODELS
    import mmmobilemamba  # noqa: F401
    model = MODELS.build(dict(type='MobileMamba', arch='T2', scan_backend='torch',
                              global_mixer='mambavision'))
    assert {m.scan_backend for m in model.modules() if hasattr(m, 'scan_backend')} == {'torch'}
    with pytest.raises(ValueError, match="scan_backend must be one of .*'triton'"):
        MobileMamba('T2', scan_backend='cuda')


def test_every_backend_returns_float32():
    inputs = _scan_inputs()
    reference = ss.selective_scan(*inputs, backend='reference')
    assert reference.dtype == torch.float32
    torch.testing.assert_close(reference, ss.selective_scan(*inputs, backend='torch'), rtol=1e-5, atol=1e-5)
    assert ss.selective_scan(*[t.double() for t in inputs], backend='reference').dtype == torch.float32
    assert ss.selective_scan_reference(*[t.double() for t in inputs]).dtype == torch.float64  # the yardstick


def test_auto_warns_once_when_the_triton_import_failed(fresh_dispatch):
    fresh_dispatch.setitem(sys.modules, TRITON_MODULE, None)  # importing it raises ImportError
    fresh_dispatch.setitem(sys.modules, 'mamba_ssm', None)
    with pytest.warns(RuntimeWarning) as record:
        assert ss._resolve('auto', 'cuda') == 'torch'
        assert ss._resolve('auto', 'cuda') == 'torch'
    messages = [str(w.message) for w in record if 'selective-scan' in str(w.message)]
    assert len(messages) == 1, messages
    assert f'could not be imported (ModuleNotFoundError: import of {TRITON_MODULE}' in messages[0]
    assert '26-65x slower' in messages[0]
    assert "scan_backend='triton'" in messages[0] and 'MMMOBILEMAMBA_SCAN_BACKEND' in messages[0]


def test_auto_warns_once_when_mamba_ssm_shadows_the_fused_kernels(fresh_dispatch):
    fake_interface = types.ModuleType('mamba_ssm.ops.selective_scan_interface')
    fake_interface.selective_scan_fn = lambda *args: None
    fake_triton = types.ModuleType(TRITON_MODULE)
    fake_triton.selective_scan_triton = lambda *args: None
    fakes = {'mamba_ssm': types.ModuleType('mamba_ssm'), 'mamba_ssm.ops': types.ModuleType('mamba_ssm.ops'),
             'mamba_ssm.ops.selective_scan_interface': fake_interface, TRITON_MODULE: fake_triton}
    for name, module in fakes.items():
        fresh_dispatch.setitem(sys.modules, name, module)
    with pytest.warns(RuntimeWarning) as record:
        assert ss._resolve('auto', 'cuda') == 'mamba_ssm'
        assert ss._resolve('auto', 'cuda') == 'mamba_ssm'
    messages = [str(w.message) for w in record if 'selective-scan' in str(w.message)]
    assert len(messages) == 1 and 'mamba-ssm is installed' in messages[0], messages
    assert 'fused Triton inference kernels' in messages[0] and "scan_backend='triton'" in messages[0]


def test_explicit_choices_and_cpu_do_not_warn(fresh_dispatch, recwarn):
    fresh_dispatch.setitem(sys.modules, TRITON_MODULE, None)
    fresh_dispatch.setitem(sys.modules, 'mamba_ssm', None)
    assert ss._resolve('auto', 'cpu') == 'torch'
    assert ss._resolve('torch', 'cuda') == 'torch'
    assert not [w for w in recwarn if 'selective-scan' in str(w.message)]
