"""Deterministic random weights for the golden comparison with the official release.

Every state-dict entry is drawn from a generator seeded by the CRC-32 of its NAME, with a range
chosen from its name and SHAPE, so two implementations with the same state-dict names and shapes
get identical weights without shipping them. Norms, scales and statistics are randomised (a fresh
model is the identity: its branch BatchNorms start at zero). The Haar filters ``wt_filter`` /
``iwt_filter`` are fixed by the architecture, so each model keeps its own; the golden outputs
then check them too.

Used by ``tests/test_release_equivalence.py`` and by
``tests/data/release_golden/make_release_golden.py``; it imports only numpy and torch.
"""
import hashlib
import math
import os
import zlib
from typing import Tuple

import numpy as np
import torch
from torch import nn

__all__ = ['FIXED_SUFFIXES', 'GOLDEN_CASES', 'GOLDEN_DIR', 'golden_input', 'golden_path', 'golden_value',
           'randomise_golden']

FIXED_SUFFIXES = ('wt_filter', 'iwt_filter')
# BatchNorms that close a residual branch (``x + branch(x)``): the release initialises most of them
# to zero; small random values keep the activations O(1) and the network well conditioned (B1 at
# 224 px: a 1e-6 relative input change moves the stride-64 map by 9e-7 with them, by 7.5e-4 when
# these norms get U(0.5, 1.5) like the others)
BRANCH_END_NORMS = ('.m.bn', '.pw2.bn', '.proj.1.bn')
GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'release_golden')
# (arch, (H, W)): 224 is a multiple of 16 and 32 but not of 64; 200 x 328 gives odd maps at every stage
GOLDEN_CASES = (('S6', (224, 224)), ('S6', (200, 328)), ('B1', (224, 224)), ('B1', (200, 328)))


def golden_path(arch: str, size: Tuple[int, int], directory: str = GOLDEN_DIR) -> str:
    return os.path.join(directory, f'{arch}_{size[0]}x{size[1]}.npz')


def golden_input(size: Tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) float32 image-like input: 8-bit levels, roughly zero mean and unit variance."""
    rng = np.random.default_rng(zlib.crc32(f'input {size}'.encode()))
    pixels = rng.integers(0, 256, (1, 3) + tuple(size))
    return torch.from_numpy(((pixels - 127.5) / 64.0).astype(np.float32))


def _fan_in(shape: Tuple[int, ...]) -> int:
    """Conv (out, in/groups, kh, kw) and linear (out, in): all but dim 0; stacked (K, out, in): last."""
    return int(np.prod(shape[1:])) if len(shape) in (2, 4) else shape[-1]


def golden_value(name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """The float64 value of state-dict entry ``name`` of ``shape``.

    BatchNorms that end a residual branch: weight ~ U(0.1, 0.3), bias ~ U(-0.1, 0.1); other
    BatchNorm / LayerNorm weights ~ U(0.5, 1.5); every other bias and ``running_mean`` ~ U(-0.5, 0.5),
    ``running_var`` ~ U(0.5, 2); per-channel scales ~ U(0.5, 1.5); ``A_logs`` ~ U(-1, 1) (so
    A = -exp(A_logs) in [-e, -1/e]); ``Ds`` ~ U(0.5, 1.5); ``dt_projs_bias`` ~ U(-3, -1) (softplus
    0.05..0.31, long memory along the scan); other weights ~ U(-1, 1) * sqrt(3 / fan_in).
    """
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    module, leaf = name.rsplit('.', 1)
    if module.endswith(BRANCH_END_NORMS) and leaf in ('weight', 'bias'):
        return rng.uniform(0.1, 0.3, shape) if leaf == 'weight' else rng.uniform(-0.1, 0.1, shape)
    if leaf == 'running_var':
        return rng.uniform(0.5, 2.0, shape)
    if leaf in ('running_mean', 'bias'):
        return rng.uniform(-0.5, 0.5, shape)
    if leaf == 'A_logs':
        return rng.uniform(-1.0, 1.0, shape)
    if leaf == 'Ds':
        return rng.uniform(0.5, 1.5, shape)
    if leaf == 'dt_projs_bias':
        return rng.uniform(-3.0, -1.0, shape)
    if len(shape) == 1 or 'scale' in name:  # norm weights and (1, C, 1, 1) scales
        return rng.uniform(0.5, 1.5, shape)
    return rng.uniform(-1.0, 1.0, shape) * math.sqrt(3.0 / _fan_in(shape))


@torch.no_grad()
def randomise_golden(model: nn.Module) -> str:
    """Overwrite every float entry of ``model.state_dict()`` (but the fixed Haar filters) in place
    with :func:`golden_value`; integer buffers (``num_batches_tracked``) become 0.

    Returns the SHA-256 (hex) of the written values: names, shapes and float32 bytes in sorted
    name order, so a change of the recipe or of the state-dict layout changes it.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.endswith(FIXED_SUFFIXES):
            continue
        if not tensor.is_floating_point():
            tensor.zero_()
            continue
        value = golden_value(name, tuple(tensor.shape)).astype(np.float32)
        tensor.copy_(torch.from_numpy(value))
        digest.update(f'{name}:{tuple(tensor.shape)};'.encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
