"""FLOPs and parameter counting for MobileMamba classifiers (whole configs: :mod:`mmmobilemamba.apis.flops`).

Counting follows the convention of the MobileMamba paper (fvcore, which ``mmengine.analysis``
ports): one multiply-add is one FLOP, convolutions / linear layers / matmuls / einsums and norm
layers are counted, element-wise ops (activations, additions, exp, ...) are not.

fvcore cannot see inside the selective scan (the release runs it as one CUDA op; here it is a
pure-PyTorch scan made of element-wise ops), so, like the release, the scan of every SS2D block
is added analytically: ``9*B*L*D*N + B*D*L`` for ``D`` scanned channels (both directions),
``N`` states and ``L`` tokens (the release's ``flops_selective_scan_fn`` with the D skip term).
The paper counts the classifier with BatchNorm folded into the convolutions (no BN FLOPs);
:func:`classifier_complexity` does the same (``fuse_bn=True``).
"""
from typing import Dict, Optional, Tuple, Union

import torch
from torch import nn

__all__ = ['PAPER_IMAGENET', 'count_complexity', 'classifier_complexity', 'format_count']

# ImageNet-1K classifier table of the paper / release README: FLOPs, params, resolution.
PAPER_IMAGENET: Dict[str, Tuple[float, float, int]] = {
    'T2': (255e6, 8.8e6, 192),
    'T4': (413e6, 14.2e6, 192),
    'S6': (652e6, 15.0e6, 224),
    'B1': (1080e6, 17.1e6, 256),
    'B2': (2427e6, 17.1e6, 384),
    'B4': (4313e6, 17.1e6, 512),
}

def format_count(n: float, unit: str = '') -> str:
    """``1.234e9`` -> ``'1.234G'``."""
    for div, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(n) >= div:
            return f'{n / div:.3f}{suffix}{unit}'
    return f'{n:.0f}{unit}'


def _scan_flops(batch: int, length: int, channels: int, states: int) -> int:
    """The release's count for one selective scan call (``with_D=True, with_Z=False``)."""
    return 9 * batch * length * channels * states + batch * channels * length


def _scan_modules(model: nn.Module):
    """Modules that run a selective scan: they own ``A_logs`` of shape (directions*D, N)."""
    for name, module in model.named_modules():
        a_logs = module._parameters.get('A_logs') if hasattr(module, '_parameters') else None
        if isinstance(a_logs, torch.Tensor) and a_logs.dim() == 2:
            yield name, module


def count_complexity(model: nn.Module, inputs: Union[torch.Tensor, tuple], *,
                     count_scan: bool = True, count_norm: bool = True) -> dict:
    """Count FLOPs (fvcore convention) and parameters of ``model(*inputs)``.

    Returns a dict: ``flops`` (total), ``scan_flops`` (the analytic selective-scan part, included
    in ``flops``), ``params`` (all parameters), ``unsupported`` (op name -> calls that were not
    counted, for inspection).
    """
    from mmengine.analysis import FlopAnalyzer

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    records = {}
    handles = []
    if count_scan:
        for name, module in _scan_modules(model):
            def hook(mod, args, _name=name):
                x = args[0] if args else None
                if isinstance(x, torch.Tensor) and x.dim() == 4:
                    channels, states = mod.A_logs.shape
                    records[_name] = _scan_flops(x.shape[0], x.shape[2] * x.shape[3], channels, states)
            handles.append(module.register_forward_pre_hook(hook))
    try:
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        if not count_norm:
            analyzer.set_op_handle(**{'aten::batch_norm': None, 'aten::layer_norm': None,
                                      'aten::group_norm': None, 'aten::instance_norm': None})
        traced = analyzer.total()
        unsupported = dict(analyzer.unsupported_ops())
    finally:
        for h in handles:
            h.remove()
    scan = sum(records.values())
    params = sum(p.numel() for p in model.parameters())
    return dict(flops=traced + scan, scan_flops=scan, params=params, unsupported=unsupported)


def classifier_complexity(arch: str = 'S6', img_size: Optional[int] = None, fuse_bn: bool = True,
                          num_classes: int = 1000) -> dict:
    """Params and FLOPs of the ImageNet classifier of ``arch`` at its resolution (paper setting).

    Parameters are counted on the model as trained (before BN folding), FLOPs on the
    BN-folded model when ``fuse_bn`` (as the release does). The result also holds
    ``params_fused`` (after folding), ``img_size`` and the paper's numbers (``paper_flops``,
    ``paper_params``).
    """
    from mmmobilemamba.models.classifier import MobileMambaClassifier

    key = arch.upper()
    model = MobileMambaClassifier(arch=key, num_classes=num_classes)
    img_size = img_size or model.arch['img_size']
    params = sum(p.numel() for p in model.parameters())
    model.eval()
    if fuse_bn:
        model.switch_to_deploy(inference_convs=False)  # the release's layers, as fvcore sees them
    with torch.no_grad():
        result = count_complexity(model, torch.randn(1, 3, img_size, img_size))
    result.update(arch=key, img_size=img_size, params_fused=result['params'], params=params)
    if key in PAPER_IMAGENET:
        result['paper_flops'], result['paper_params'], _ = PAPER_IMAGENET[key]
    return result
