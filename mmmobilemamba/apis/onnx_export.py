"""ONNX export of MobileMamba backbones and of the mmdet / mmseg models built on them.

A target is a backbone variant (``'S6'``, ``'B1'``, ...: the graph returns the stage maps) or an
mmdet / mmseg config (the graph returns the raw head outputs of the model's tensor-mode forward:
a single-stage detector's per-level class scores and box deltas, a segmentor's decode-head logits).
Post-processing (anchor decoding and NMS for detectors, resizing and argmax for segmentors) stays
outside the graph, as with mmdet's and mmseg's own ``mode='tensor'`` forward.

Before tracing, every BatchNorm is folded (``switch_to_deploy(inference_convs=False)``, plain
``nn.Conv2d`` layers) and, inside :func:`export_forms`, the layers that do not trace into
standard ONNX ops take equivalent forms:

* the selective scan becomes the chunked two-level scan of :mod:`mmmobilemamba.ops.scan_exportable`
  (dynamic sequence length);
* the inverse Haar transform becomes a grouped transposed convolution;
* adaptive average pooling to a grid (PSPNet's pyramid pooling) becomes two matrix products whose
  pooling matrices are computed from the input size, so H and W can stay dynamic.

The graph is traced with PyTorch's TorchScript-based exporter (``dynamo=False``, opset 17): it
needs no extra package and keeps H and W symbolic through the models' size arithmetic.
"""
import contextlib
import copy
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.layers import mambavision_mixer, ss2d, wte_mamba
from mmmobilemamba.ops.scan_exportable import flattened_selective_scan_exportable

__all__ = ['ExportError', 'ExportTarget', 'load_target', 'randomize_norms', 'export_forms',
           'export_onnx', 'check_shapes', 'check_onnx', 'describe_sizes']

OPSET = 17
INPUT_NAME = 'input'


class ExportError(ValueError):
    """A target that cannot be exported; the message says why and what can be exported instead."""


@dataclass
class ExportTarget:
    """What to export: ``model(x)`` returns a tuple of tensors named ``output_names``.

    ``reference`` is the same model before folding (PyTorch's eager form, for the check).
    """
    name: str
    model: nn.Module
    reference: nn.Module
    output_names: List[str]
    default_shape: Tuple[int, int]
    notes: List[str] = field(default_factory=list)


class _FlatOutputs(nn.Module):
    """``forward(x)`` = the tensors of ``fn(x)`` (nested tuples / lists flattened, in order)."""

    def __init__(self, model: nn.Module, fn: Callable):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, x: torch.Tensor) -> tuple:
        return tuple(_flatten(self.fn(self.model, x)))


def _flatten(outputs) -> list:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in _flatten(item)]


def _fold(module: nn.Module) -> nn.Module:
    """Fold BatchNorm in every MobileMamba of ``module`` (plain convolutions), in place."""
    for sub in module.modules():
        if isinstance(sub, MobileMamba):
            sub.switch_to_deploy(inference_convs=False)
    return module


def _backbone_target(arch: str) -> ExportTarget:
    backbone = MobileMamba(arch).eval()
    names = [f'stage{i}' for i in backbone.out_indices]
    size = backbone.arch['img_size']
    return ExportTarget(arch.upper(), _FlatOutputs(backbone, lambda m, x: m(x)), backbone, names, (size, size),
                        notes=[f'outputs: stage maps {names}, strides {backbone.strides}'])


def _config_target(path: str) -> ExportTarget:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope

    from .config import input_shape, load_config

    if '::' not in path and not os.path.isfile(path):
        raise ExportError(f'config {path!r} not found (working directory: {os.getcwd()})')
    try:
        cfg = load_config(path)
    except FileNotFoundError as e:
        raise ExportError(f'config {path!r} not found ({e})') from e
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.get('backbone', {}).pop('init_cfg', None)  # export the structure; weights come from --checkpoint
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    kind = type(model).__name__
    from mmdet.models.detectors import SingleStageDetector
    from mmseg.models.segmentors import EncoderDecoder
    if isinstance(model, SingleStageDetector):
        levels = len(model.bbox_head.prior_generator.strides)
        names = [f'cls_score_{i}' for i in range(levels)] + [f'bbox_pred_{i}' for i in range(levels)]
        notes = ['outputs: raw per-level class scores and box deltas of the head; anchor decoding and '
                 'NMS are not in the graph (mmdet: model.bbox_head.predict_by_feat)']
    elif isinstance(model, EncoderDecoder):
        names = ['seg_logits']
        notes = ['outputs: decode-head logits at the head\'s stride; resize to the image and argmax '
                 'outside the graph (mmseg: model.postprocess_result)']
    else:
        raise ExportError(
            f'{path}: a {kind} cannot be exported: only single-stage detectors (RetinaNet, SSD, ...) '
            f'and encoder-decoder segmentors have a tensor-mode forward made of standard ONNX ops '
            f'(two-stage detectors run mmcv\'s NMS and RoIAlign inside it); export the backbone alone '
            f'with an arch name ({", ".join(MobileMamba.arch_settings)}) instead')
    return ExportTarget(path, _FlatOutputs(model, lambda m, x: m._forward(x)), model, names,
                        input_shape(cfg), notes)


def load_target(target: str, checkpoint: Optional[str] = None, randomize_seed: Optional[int] = None
                ) -> ExportTarget:
    """The :class:`ExportTarget` for an arch name or a config path (``mmdet::...`` allowed).

    ``checkpoint`` (read by :mod:`mmmobilemamba.utils.checkpoint`, loaded strictly) fills the model, then
    ``randomize_seed`` (if not None) randomises its norms (:func:`randomize_norms`); the folded
    copy that is exported is made after both.
    """
    if target.upper() in MobileMamba.arch_settings:
        result = _backbone_target(target)
    elif target.endswith('.py'):
        result = _config_target(target)
    else:
        raise ExportError(f'unknown export target {target!r}: give a MobileMamba arch '
                          f'({", ".join(MobileMamba.arch_settings)}) or an mmdet / mmseg config file (.py)')
    if checkpoint:
        from mmmobilemamba.utils.checkpoint import load_pretrained, read_checkpoint
        if isinstance(result.reference, MobileMamba):
            load_pretrained(result.reference, checkpoint)  # release or converted ImageNet weights
        else:
            state = read_checkpoint(checkpoint)
            result.reference.load_state_dict(state.get('state_dict', state), strict=True)
    if randomize_seed is not None:
        randomize_norms(result.reference, randomize_seed)
    result.model = _fold(copy.deepcopy(result.model)).eval()
    return result


@torch.no_grad()
def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and statistics, every LayerNorm a random
    affine, and WTE-Mamba's scales random values (seeded), in place.

    Every residual branch of a freshly built MobileMamba block adds zero (its last BatchNorm starts
    at zero); comparisons of two forms of the model need these randomised to mean anything.
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(t, low, high):
        t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)

    def normal(t, std):
        t.copy_(torch.randn(t.shape, generator=gen) * std)

    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            uniform(module.running_var, 0.5, 1.5)
            normal(module.running_mean, 0.2)
        if isinstance(module, (_BatchNorm, nn.LayerNorm, nn.GroupNorm)) and module.weight is not None:
            uniform(module.weight, 0.5, 1.5)
            normal(module.bias, 0.2)
        if isinstance(module, wte_mamba.Scale):
            normal(module.weight, 0.5)
    return model


# ------------------------------------------------------------------------------ export forms
def _inverse_wavelet_as_convs(bands: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """:func:`~mmmobilemamba.models.layers.wavelet.inverse_wavelet_transform` as the grouped 2x2
    stride-2 transposed convolution it is (ONNX ``ConvTranspose``)."""
    b, c, _, h, w = bands.shape
    return F.conv_transpose2d(bands.reshape(b, 4 * c, h, w), filters, stride=2, groups=c)


def _pooling_matrix(size: torch.Tensor, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) matrix averaging the cells ``[floor(i*size/bins), ceil((i+1)*size/bins))``,
    as adaptive average pooling does; built from ``size`` so that it follows dynamic shapes."""
    positions = torch.arange(size, device=like.device).to(like.dtype)[None, :]
    index = torch.arange(bins, device=like.device).to(like.dtype)[:, None]
    size = positions[:, -1:] + 1  # a tensor computed from the traced size, not a constant
    start = torch.floor(index * size / bins)
    end = torch.ceil((index + 1) * size / bins)
    inside = ((positions >= start) & (positions < end)).to(like.dtype)
    return inside / (end - start)


class ExportableAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d(output_size)`` for any input size, as two matrix products."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = self.output_size
        pool_h = _pooling_matrix(x.shape[-2], rows, x)
        pool_w = _pooling_matrix(x.shape[-1], cols, x)
        return torch.matmul(torch.matmul(pool_h, x), pool_w.t())


def _replace_adaptive_pools(module: nn.Module):
    for name, child in module.named_children():
        if isinstance(child, nn.AdaptiveAvgPool2d) and child.output_size not in (1, (1, 1)):
            setattr(module, name, ExportableAdaptiveAvgPool2d(child.output_size))
        else:
            _replace_adaptive_pools(child)


@contextlib.contextmanager
def export_forms(model: nn.Module):
    """Inside: ``model`` (changed in place, permanently for its pooling layers) and the scan and
    wavelet functions of the package compute in ONNX-exportable ops (see the module doc)."""
    _replace_adaptive_pools(model)
    patches = [(ss2d, 'flattened_selective_scan', flattened_selective_scan_exportable),
               (mambavision_mixer, 'flattened_selective_scan', flattened_selective_scan_exportable),
               (wte_mamba, 'inverse_wavelet_transform', _inverse_wavelet_as_convs)]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    try:
        for module, name, replacement in patches:
            setattr(module, name, replacement)
        yield model
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


# ------------------------------------------------------------------------------ export and check
def export_onnx(target: ExportTarget, path: str, shape: Sequence[int], dynamic: bool = True,
                opset: int = OPSET) -> str:
    """Trace ``target.model`` on a (1, 3, H, W) input and write ``path``; with ``dynamic`` the
    batch, H and W axes of the input (and of every output) are symbolic."""
    height, width = shape
    axes = {0: 'batch', 2: 'height', 3: 'width'}
    dynamic_axes = ({INPUT_NAME: axes, **{name: {0: 'batch', 2: f'{name}_height', 3: f'{name}_width'}
                                           for name in target.output_names}} if dynamic else None)
    x = torch.randn(1, 3, height, width)
    try:
        with torch.no_grad(), export_forms(target.model), warnings.catch_warnings():
            warnings.simplefilter('ignore')  # tracer warnings about Python-side shape checks
            torch.onnx.export(target.model, (x,), path, input_names=[INPUT_NAME],
                              output_names=target.output_names, dynamic_axes=dynamic_axes,
                              opset_version=opset, do_constant_folding=True, dynamo=False)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 -- re-raised as one error that names the target
        raise ExportError(f'{target.name}: tracing to ONNX failed: {type(e).__name__}: '
                          f'{str(e).splitlines()[0] if str(e) else ""}') from e
    return path


def check_shapes(shape: Sequence[int]) -> List[Tuple[int, int]]:
    """Three input sizes for the check: ``shape``, a multiple-of-32 size of another aspect ratio,
    and an odd size that is not a multiple of 64 (exercises every padding path)."""
    height, width = shape
    other = (max(64, 32 * round(height * 0.75 / 32)), max(64, 32 * round(width * 1.25 / 32)))
    odd = (height - 29 if height - 29 >= 64 else height + 29, width + 13)
    return [tuple(shape), other, odd]


def check_onnx(target: ExportTarget, path: str, shapes: Sequence[Tuple[int, int]], threads: int = 0,
               log: Callable[[str], None] = print) -> float:
    """Run ``path`` with ONNX Runtime (CPU) on random (1, 3, H, W) inputs of each shape and return
    the largest absolute difference from PyTorch's eager, unfolded model over all outputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    reference = _FlatOutputs(target.reference, target.model.fn).eval()
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for height, width in shapes:
        x = torch.randn(1, 3, height, width, generator=gen)
        with torch.no_grad():
            expected = reference(x)
        got = session.run(None, {INPUT_NAME: x.numpy()})
        if len(got) != len(expected):
            raise ExportError(f'{target.name}: ONNX graph has {len(got)} outputs, PyTorch {len(expected)}')
        diffs = []
        for name, want, have in zip(target.output_names, expected, got):
            if tuple(want.shape) != tuple(have.shape):
                raise ExportError(f'{target.name}: output {name} at {height}x{width} has shape '
                                  f'{tuple(have.shape)} in ONNX Runtime, {tuple(want.shape)} in PyTorch')
            diffs.append((torch.from_numpy(have) - want).abs().max().item())
        scale = max(t.abs().max().item() for t in expected)
        log(f'{height}x{width}: max abs diff {max(diffs):.3g} (outputs up to {scale:.3g} in magnitude)')
        worst = max(worst, max(diffs))
    return worst


def describe_sizes(shape: Sequence[int]) -> str:
    return 'x'.join(str(s) for s in shape) + (' (not a multiple of 64)' if any(s % 64 for s in shape) else '')
