"""Property-based inputs for the backbone (hypothesis): any size of 1-700 px and any aspect, batch 1-3,
float32 or bfloat16 (autocast), contiguous, channels-last or non-contiguous views, every variant.

Each case ends in one of two documented ways: the documented output shapes (stage i of an H x W
input is ceil(H / 2**(4+i)) x ceil(W / 2**(4+i)), the variant's channels) with finite values, or,
for images smaller than 64 px, the documented ValueError raised by the input check itself, never
an IndexError or an error from deep inside the network. To stay cheap on a CPU, small sides are
drawn more often than large ones and the batch shrinks so a batch holds at most ``MAX_PIXELS``.
``OUTCOMES`` counts how the cases ended; the test prints it (``pytest -s`` shows it).
"""
import math
import traceback
from collections import Counter

import pytest
import torch

from _random_weights import randomize_norms_and_scales

from mmmobilemamba.models.backbones import MobileMamba

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

VARIANTS = ('T2', 'T4', 'S6', 'B1', 'B2', 'B4')
MIN_SIZE = 64
MAX_PIXELS = 2 * 128 * 128  # per batch: a 700-px side comes with a short other side and batch 1
LAYOUTS = ('contiguous', 'channels_last', 'transposed_view', 'strided_view')
OUTCOMES = Counter()
_MODELS = {}


def _model(arch):
    """Each variant once, in eval mode, with its norms and scales randomised so that every residual
    branch contributes (a freshly built block is the identity)."""
    if arch not in _MODELS:
        torch.manual_seed(0)
        _MODELS[arch] = randomize_norms_and_scales(MobileMamba(arch))
    return _MODELS[arch]


def _image(batch, height, width, layout, generator):
    """(batch, 3, height, width) in the given memory layout."""
    if layout == 'transposed_view':
        return torch.randn(batch, 3, width, height, generator=generator).transpose(2, 3)
    if layout == 'strided_view':
        return torch.randn(batch, 3, height, 2 * width, generator=generator)[..., ::2]
    x = torch.randn(batch, 3, height, width, generator=generator)
    return x.contiguous(memory_format=torch.channels_last) if layout == 'channels_last' else x


side = st.one_of(st.integers(1, 160), st.integers(1, 160), st.integers(1, 700))


@st.composite
def cases(draw):
    height, width = draw(side), draw(side)
    batch = draw(st.integers(1, max(1, min(3, MAX_PIXELS // (height * width)))))
    return dict(arch=draw(st.sampled_from(VARIANTS)), batch=batch, height=height, width=width,
                dtype=draw(st.sampled_from([torch.float32, torch.bfloat16])), layout=draw(st.sampled_from(LAYOUTS)),
                seed=draw(st.integers(0, 2 ** 16)))


def _run(case):
    model = _model(case['arch'])
    generator = torch.Generator().manual_seed(case['seed'])
    x = _image(case['batch'], case['height'], case['width'], case['layout'], generator)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=case['dtype'] == torch.bfloat16):
        return model(x.to(case['dtype']))


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def _check_case(case):
    height, width = case['height'], case['width']
    label = f"{case['layout']}, {str(case['dtype'])[6:]}"
    if min(height, width) < MIN_SIZE:
        with pytest.raises(ValueError, match=f'smaller than MobileMamba.s total stride {MIN_SIZE}') as info:
            _run(case)
        assert traceback.extract_tb(info.tb)[-1].name == '_check_input'  # refused up front, not deep inside
        OUTCOMES[f'clear error (< {MIN_SIZE} px), {label}'] += 1
        return
    outs = _run(case)
    dims = MobileMamba.arch_settings[case['arch']]['embed_dims']
    assert len(outs) == 3
    for i, out in enumerate(outs):
        stride = 2 ** (4 + i)
        assert out.shape == (case['batch'], dims[i], math.ceil(height / stride), math.ceil(width / stride)), case
        assert torch.isfinite(out).all(), case
    OUTCOMES[f'documented shapes, finite, {label}'] += 1


def test_backbone_on_any_input():
    OUTCOMES.clear()
    _check_case()
    print('\nfuzzed inputs:', sum(OUTCOMES.values()))
    for outcome, count in sorted(OUTCOMES.items()):
        print(f'  {count:3d}  {outcome}')
    assert sum(OUTCOMES.values()) >= 25
    endings = {outcome.split(',')[0] for outcome in OUTCOMES}
    assert endings == {'documented shapes', f'clear error (< {MIN_SIZE} px)'}, endings
