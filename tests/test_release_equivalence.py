"""Golden test: our CPU backbone against outputs of the official release's own code.

The fixtures ``tests/data/release_golden/ARCH_HxW.npz`` hold an input and the three stage maps
(strides 16/32/64) that the release's detection backbone produced on a GPU with its own CUDA
selective-scan kernel, in float32 without TF32, on the deterministic random weights of
``tests/_golden.py`` (norms, scales and statistics randomised, so every branch contributes).
``make_release_golden.py`` beside them regenerates them from a local copy of the release.
"""
import os

import numpy as np
import pytest
import torch

from _golden import FIXED_SUFFIXES, GOLDEN_CASES, golden_path, randomise_golden
from mmmobilemamba.models.backbones.mobilemamba import MobileMamba

RELATIVE_TOLERANCE = 1e-5
REGENERATE = ('regenerate them on a CUDA machine from the repository root with a local copy of the official '
              'MobileMamba release and its built selective_scan_cuda_oflex kernel:\n'
              '  PYTHONPATH=.:KERNEL_DIR python tests/data/release_golden/make_release_golden.py '
              '--release-repo RELEASE_COPY\n(see that script\'s docstring)')


@pytest.fixture(scope='module')
def golden_models():
    """arch -> (our backbone in eval mode with the golden weights, their SHA-256); built once."""
    models = {}

    def get(arch: str):
        if arch not in models:
            model = MobileMamba(arch, out_indices=(0, 1, 2)).eval()
            models[arch] = model, randomise_golden(model)
        return models[arch]
    return get


def load_fixture(arch: str, size) -> dict:
    path = golden_path(arch, size)
    if not os.path.isfile(path):
        pytest.fail(f'golden fixture {path} is missing; {REGENERATE}')
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize('arch,size', GOLDEN_CASES, ids=[f'{a}-{h}x{w}' for a, (h, w) in GOLDEN_CASES])
def test_matches_release_outputs(golden_models, arch, size):
    fixture = load_fixture(arch, size)
    model, weights_sha256 = golden_models(arch)
    assert str(fixture['arch']) == arch
    assert str(fixture['weights_sha256']) == weights_sha256, (
        f'the weights of tests/_golden.py for {arch} are not those the fixture was made with '
        f'(recipe or state-dict layout changed); {REGENERATE}')
    x = torch.from_numpy(fixture['input'])
    assert tuple(x.shape) == (1, 3) + tuple(size)

    with torch.no_grad():
        outs = model(x)

    failures, lines = [], []
    for i, out in enumerate(outs):
        ref = torch.from_numpy(fixture[f'stage{i}']).double()
        assert out.shape == ref.shape, f'stage {i}: shape {tuple(out.shape)} != release {tuple(ref.shape)}'
        diff = out.double() - ref
        relative = (diff.norm() / ref.norm()).item()
        lines.append(f'stage {i} {tuple(ref.shape[1:])}: relative {relative:.2e}, '
                     f'max abs {diff.abs().max().item():.2e} (|ref| max {ref.abs().max().item():.2e})')
        if not relative <= RELATIVE_TOLERANCE:
            failures.append(i)
    print(f'{arch} {size[0]}x{size[1]}: ' + '; '.join(lines))
    assert not failures, (f'{arch} {size[0]}x{size[1]}: stages {failures} differ from the release by more than '
                          f'{RELATIVE_TOLERANCE:g} relative:\n' + '\n'.join(lines))


def test_golden_weights_randomise_every_branch(golden_models):
    """Every float entry but the fixed Haar filters is overwritten; no norm weight is 0 (a fresh
    model's branch norms are, which makes every block the identity)."""
    model, _ = golden_models('S6')
    fresh = MobileMamba('S6', out_indices=(0, 1, 2)).state_dict()
    for name, value in model.state_dict().items():
        if name.endswith(FIXED_SUFFIXES):
            assert torch.equal(value, fresh[name]), name
        elif value.is_floating_point():
            assert not torch.equal(value, fresh[name]), f'{name} kept its initial value'
            if name.endswith('bn.weight'):
                assert value.abs().min() > 0, f'{name} has zeros'
