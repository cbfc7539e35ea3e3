"""Weights for tests that compare two forms of one model (CPU/GPU, deploy/unfused, compiled/eager,
fused kernels/generic path).

A freshly built MobileMamba block is the identity, as released: the BatchNorm that closes each
residual branch (``dw0``, ``dw1``, the FFNs' ``pw2``, MRFFI's ``proj``) starts with weight 0, so
SS2D, the wavelet branch and MK-DeConv add exactly 0 and a comparison of two fresh forms compares
the stem only. :func:`randomize_norms_and_scales` gives every norm and learnable scale values a
trained model could have; :func:`assert_every_branch_contributes` proves, on the unfused model,
that the comparison then sees every branch; :func:`relative_error` is the measure every such test
bounds, by one of the tolerances below (README sections 3 and 7 quote the same numbers).
"""
import torch
from torch import nn

# max |a - b| / max |b| allowed between two forms of a model with randomised norms and scales
CPU_FP32 = 1e-5   # CPU, float32 (deploy vs unfused measured: at most 1.3e-6, every variant, config, tool run)
GPU_FP32 = 1e-4   # CUDA, float32 with TF32 off (the Triton scan and cuDNN reduce in other orders)
GPU_TF32 = 2e-3   # CUDA, float32 with cuDNN's TF32 convolutions on (PyTorch's default)
BF16 = 5e-2       # bfloat16 autocast: activations rounded to 8 bits of mantissa

NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
# SS2D's per-channel skip weights (fresh: 1) and state decay rates (fresh: A = -exp(0) = -1 everywhere)
SCAN_PARAMETERS = ('Ds', 'A_logs')


@torch.no_grad()
def randomize_norms_and_scales(model: nn.Module, seed: int = 0) -> nn.Module:
    """In place, reproducibly for ``seed``: every norm's weight in +-[0.5, 1.5], bias and running mean
    in [-0.2, 0.2], running variance in [0.5, 1.5]; every WTE-Mamba scale in +-[0.5, 1.5]; SS2D's
    ``Ds`` in +-[0.5, 1.5] and ``A_logs`` in [-1, 1]. Returns ``model`` in eval mode."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high, signed=False):
        values = torch.rand(tensor.shape, generator=gen, dtype=torch.float64) * (high - low) + low
        if signed:
            values *= torch.randint(0, 2, tensor.shape, generator=gen) * 2 - 1
        tensor.copy_(values)

    from mmmobilemamba.models.layers.wte_mamba import Scale
    changed = 0
    for module in model.modules():
        if isinstance(module, NORMS):
            for name, low, high, signed in (('weight', 0.5, 1.5, True), ('bias', -0.2, 0.2, False),
                                            ('running_mean', -0.2, 0.2, False), ('running_var', 0.5, 1.5, False)):
                tensor = getattr(module, name, None)
                if tensor is not None:
                    uniform(tensor, low, high, signed)
                    changed += 1
        elif isinstance(module, Scale):
            uniform(module.weight, 0.5, 1.5, signed=True)
            changed += 1
        for name in SCAN_PARAMETERS:
            param = module._parameters.get(name)
            if param is not None:
                uniform(param, *((0.5, 1.5, True) if name == 'Ds' else (-1.0, 1.0)))
                changed += 1
    assert changed, f'{type(model).__name__} has no norm or scale to randomise'
    return model.eval()


def branch_sizes(model: nn.Module, x) -> dict:
    """``{name: max |branch output| / max |branch input|}`` of one forward of ``model(x)`` (no grad),
    for every residual branch (the module each ``Residual`` wraps) and every MRFFI sub-branch of the
    unfused model: WTE-Mamba's scaled global mixer and scaled wavelet conv (against WTE-Mamba's
    input) and MK-DeConv."""
    from mmmobilemamba.models.layers.block import Residual
    from mmmobilemamba.models.layers.mrffi import MKDeConv
    from mmmobilemamba.models.layers.wte_mamba import WTEMamba
    watched = {}  # name: (module whose output is the branch, module whose input is its reference)
    for name, module in model.named_modules():
        if isinstance(module, Residual):
            watched[f'{name}.m'] = (module.m, module.m)
        elif isinstance(module, WTEMamba):
            watched[f'{name}.base_scale'] = (module.base_scale, module)
            watched[f'{name}.wavelet_scale'] = (module.wavelet_scale[0], module)
        elif isinstance(module, MKDeConv):
            watched[name] = (module, module)
    outputs, inputs = {}, {}

    def keep(store, module, value):
        store.setdefault(module, value.detach().float().abs().max().item())
    hooks = []
    for branch, reference in watched.values():
        hooks.append(branch.register_forward_hook(lambda m, args, out: keep(outputs, m, out)))
        hooks.append(reference.register_forward_hook(lambda m, args, out: keep(inputs, m, args[0])))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: outputs[branch] / max(inputs[reference], 1e-12)
            for name, (branch, reference) in watched.items() if branch in outputs}


def assert_every_branch_contributes(model: nn.Module, x, minimum: float = 1e-2):
    """Every residual branch and MRFFI sub-branch of the unfused ``model`` outputs at least ``minimum``
    of its input's largest magnitude on ``x``: no block is the identity, so a comparison of two forms
    of ``model`` on ``x`` sees all of them."""
    sizes = branch_sizes(model, x)
    assert sizes, f'{type(model).__name__} ran no MobileMamba branch'
    small = {name: size for name, size in sizes.items() if not size >= minimum}
    assert not small, f'branches the comparison would not see (output / input): {small}'



def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """``max |got - expected| / max |expected|`` in float64, on the CPU (shapes must agree)."""
    assert got.shape == expected.shape, (got.shape, expected.shape)
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    return ((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12)).item()
