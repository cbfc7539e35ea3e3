"""Training-iteration benchmark of whole detectors and segmentors, and inference with NMS.

What one training iteration is here: ``model.train_step(data, optim_wrapper)``, i.e. the data
preprocessor (host-to-device copy, normalisation, padding), forward, loss, backward, gradient
clipping and the AdamW step. Data loading is excluded: the same synthetic batch (random images,
random gt boxes / masks / label maps at the configs' sizes) is fed every iteration. The models of a
table are held side by side and timed in rounds, one iteration of each per round (each iteration
synchronised, wall clock; cuDNN benchmark as each config's runtime sets it): the median over
``--iters`` rounds after ``--warmup`` iterations of each. A drift of the machine's speed then reaches
every row alike, so ratios within a table are the figures to compare. Peak memory: the most a
model's own steps allocate (``torch.cuda.max_memory_allocated`` less what other models hold).

Every model trains with the same optimizer wrapper, the one of the MobileMamba configs: fused AdamW
(lr 1e-4, weight decay 0.05, none on 'norm' parameters) with one parameter group per distinct
setting (``MergedGroupsOptimWrapperConstructor``), gradient clipping at 0.1; AMP rows use
mmengine's ``AmpOptimWrapper`` (dynamic loss scaling). Inference: ``model.test_step`` at batch 1,
as the config runs it (eager; the backbone replayed as a CUDA graph where the config sets
``cuda_graph_inference``), including post-processing (RetinaNet/Mask R-CNN: box decoding, NMS, mask pasting; seg:
resizing the logits to the image), and for MobileMamba models also in deploy mode. Weights are
random (heads with their own initialisation). Hold fewer models (``--models``) on a smaller GPU.

Run::

    python -m mmmobilemamba.apis.benchmark_train                      # every model, on CUDA
    python -m mmmobilemamba.apis.benchmark_train --models retinanet-S6 retinanet-R18 \\
        --levers tf32 channels-last compile --trunk --release-repo .gpu/release
"""
import argparse
import contextlib
import copy
import functools
import logging
from typing import Dict, Optional

import torch

from .timing import PRECISIONS, allocated_mib, autocast, first_call_peak_mib, fmt, interleaved_wall_ms, table

__all__ = ['MODEL_SPECS', 'add_arguments', 'run', 'main']

# the release-recipe schedules' optimizer (configs/_base_/schedules/*adamw*.py), for every model alike
ADAMW = dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, fused=True)
AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}

# name -> (config, task, batch, (H, W), config overrides). Sizes and batches as in the issue's
# comparison: detectors at 1333x800 (batch 2), segmentors at 512x512 (batch 8).
_MASK_RCNN = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
_PSPNET_R50 = 'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py'
MODEL_SPECS = {
    'retinanet-S6': ('configs/det/retinanet_mobilemamba_s6.py', 'det', 2, (800, 1333), {}),
    # the same model, its backbone's training steps and test forwards replayed as CUDA graphs, batches
    # padded to two sizes
    'retinanet-S6-cuda-graph': ('configs/det/retinanet_mobilemamba_s6_cuda-graph.py', 'det', 2, (800, 1333), {}),
    # the cuda-graph config with the backbone's stages compiled: the graphs replay inductor's kernels
    'retinanet-S6-compiled-cuda-graph': ('configs/det/retinanet_mobilemamba_s6_cuda-graph.py', 'det', 2, (800, 1333),
                                         {'model.backbone.compile': True}),
    'retinanet-B1': ('configs/det/retinanet_mobilemamba_b1.py', 'det', 2, (800, 1333), {}),
    'retinanet-R18': ('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py', 'det', 2, (800, 1333), {}),
    # mmdet's RetinaNet-R18 leaves ResNet-18's stem and first stage untrained (frozen_stages=1); this one
    # trains every stage, as the MobileMamba configs train their whole backbone
    'retinanet-R18-all-stages': ('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py', 'det', 2, (800, 1333),
                                 {'model.backbone.frozen_stages': -1}),
    'retinanet-R50': ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'det', 2, (800, 1333), {}),
    'mask-rcnn-S6': ('configs/det/mask-rcnn_mobilemamba_s6.py', 'det', 2, (800, 1333), {}),
    'mask-rcnn-B1': ('configs/det/mask-rcnn_mobilemamba_b1.py', 'det', 2, (800, 1333), {}),
    'mask-rcnn-R18': (_MASK_RCNN, 'det', 2, (800, 1333),
                      {'model.backbone.depth': 18, 'model.neck.in_channels': [64, 128, 256, 512]}),
    'mask-rcnn-R50': (_MASK_RCNN, 'det', 2, (800, 1333), {}),
    'pspnet-S6': ('configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py', 'seg', 8, (512, 512), {}),
    # the same model with mmseg's own heads (F.interpolate upsampling of the logits)
    'pspnet-S6-stock-heads': ('configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py', 'seg', 8, (512, 512),
                              {'model.decode_head.type': 'PSPHead', 'model.auxiliary_head.type': 'FCNHead'}),
    'pspnet-B4': ('configs/seg/pspnet_mobilemamba_b4_512x512_80k_ade20k.py', 'seg', 8, (512, 512), {}),
    'deeplabv3-S6': ('configs/seg/deeplabv3_mobilemamba_s6_512x512_80k_ade20k.py', 'seg', 8, (512, 512), {}),
    'deeplabv3-B4': ('configs/seg/deeplabv3_mobilemamba_b4_512x512_80k_ade20k.py', 'seg', 8, (512, 512), {}),
    # mmseg has no ADE20K ResNet-18 PSPNet; these are its R18-D8 settings (Cityscapes configs)
    'pspnet-R18': (_PSPNET_R50, 'seg', 8, (512, 512),
                   {'model.backbone.depth': 18, 'model.decode_head.in_channels': 512,
                    'model.decode_head.channels': 128, 'model.auxiliary_head.in_channels': 256,
                    'model.auxiliary_head.channels': 64}),
    'pspnet-R50': (_PSPNET_R50, 'seg', 8, (512, 512), {}),
}


# ------------------------------------------------------------------------------- models and data
def load_config(name: str, spec, with_loss_fp32: bool):
    """The spec's config with overrides, no checkpoint pointers and, if ``with_loss_fp32``, every
    ``FocalLoss`` replaced by ``Float32FocalLoss`` (bf16: mmcv's focal-loss op has no bf16 kernel)."""
    from .config import load_config as read_config
    path, _, _, _, overrides = spec
    cfg = read_config(path, dict(overrides))
    cfg.model.pop('pretrained', None)
    cfg.model.backbone.init_cfg = None
    head = cfg.model.get('bbox_head') or {}
    if with_loss_fp32 and head.get('loss_cls', {}).get('type') == 'FocalLoss':
        head.loss_cls.type = 'Float32FocalLoss'
    return cfg


def use_config_cudnn_benchmark(cfg, device: torch.device) -> None:
    """cuDNN autotuning as the config's Runner would set it (``env_cfg.cudnn_benchmark``: mmseg's
    runtime on, mmdet's off; autotuning every new RoI count makes Mask R-CNN steps seconds long)."""
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = bool(cfg.get('env_cfg', {}).get('cudnn_benchmark', False))


def build_model(cfg, device: torch.device):
    """Build and initialise ``cfg.model`` in its default scope (registering mmdet/mmseg modules and
    this package's heads and losses)."""
    import mmmobilemamba  # noqa: F401
    from mmengine.registry import MODELS, init_default_scope
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmseg':
        import mmmobilemamba.models.decode_heads  # noqa: F401
        from mmseg.utils import register_all_modules
    else:
        import mmmobilemamba.models.losses  # noqa: F401
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device)


def det_batch(batch: int, size, with_mask: bool, num_classes: int = 80) -> dict:
    """Random uint8 images (3, H, W) with 8 random gt boxes each (and masks for Mask R-CNN)."""
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, *size)] * batch, num_items=[8] * batch,
                          num_classes=num_classes, with_mask=with_mask)


def seg_batch(batch: int, size, num_classes: int = 150) -> dict:
    """Random uint8 images (3, H, W) with random (1, H, W) label maps."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, *size), dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=tuple(size), ori_shape=tuple(size), pad_shape=tuple(size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def make_batch(name: str, task: str, batch: int, size) -> dict:
    if task == 'seg':
        return seg_batch(batch, size)
    return det_batch(batch, size, with_mask=name.startswith('mask-rcnn'))


def build_optim_wrapper(model, precision: str):
    from mmengine.optim import build_optim_wrapper
    import mmmobilemamba.engine  # noqa: F401  (registers the constructor)
    cfg = dict(optimizer=dict(ADAMW), clip_grad=dict(max_norm=0.1, norm_type=2),
               constructor='MergedGroupsOptimWrapperConstructor',
               paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
    if precision == 'fp32':
        cfg['type'] = 'OptimWrapper'
    else:
        cfg.update(type='AmpOptimWrapper', dtype=AMP_DTYPES[precision])
    return build_optim_wrapper(model, cfg)


# ------------------------------------------------------------------------------------ the levers
class _ChannelsLastInput(torch.nn.Module):
    """Runs ``module`` on a channels-last copy of its input."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x.contiguous(memory_format=torch.channels_last))


def _apply_channels_last(model, precision, data):
    model.backbone.to(memory_format=torch.channels_last)
    model.backbone = _ChannelsLastInput(model.backbone)


def _apply_compile(model, precision, data):
    # the backbone option's settings: static shapes, convolutions kept NCHW
    from mmmobilemamba.models.layers.compiled_training import compile_options
    model.backbone = torch.compile(model.backbone, **compile_options(True))


def _apply_no_finite_check(model, precision, data):
    model.backbone.check_finite = False


class _GraphedTraining(torch.nn.Module):
    """Any backbone with its training steps replayed as CUDA graphs (what ``cuda_graph=True`` does
    inside MobileMamba), for comparing other backbones under the same lever."""

    cuda_graph = True

    def __init__(self, module):
        super().__init__()
        from mmmobilemamba.models.layers.cuda_graph import CudaGraphCache
        self.module = module
        self.graphs = CudaGraphCache()

    def forward(self, x):
        return self.graphs(self, self.module, x)


def _apply_cuda_graph(model, precision, data):
    """MobileMamba: ``cuda_graph=True`` and no finite check (a host sync per step); other backbones
    go through the same graph cache."""
    if hasattr(model.backbone, 'cuda_graph'):
        model.backbone.cuda_graph = True
        model.backbone.check_finite = False
    else:
        model.backbone = _GraphedTraining(model.backbone)


@contextlib.contextmanager
def _env(name: str, value: str):
    import os
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def _tf32_matmul():
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision('high')
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


# lever -> (what it does, model transform or None, context manager factory or None)
LEVERS: Dict[str, tuple] = {
    'tf32': ('every float32 matmul on TF32 tensor cores (torch.set_float32_matmul_precision("high"))',
             None, _tf32_matmul),
    'conv-proj': ('SS2D scan inputs from 1x1 convs of the un-flipped sequence (MMMOBILEMAMBA_SS2D_CONV_PROJ=1)',
                  None, lambda: _env('MMMOBILEMAMBA_SS2D_CONV_PROJ', '1')),
    'channels-last': ('backbone weights and input in channels-last format', _apply_channels_last, None),
    'no-finite-check': ('backbone check_finite=False (no host sync per forward)', _apply_no_finite_check, None),
    'compile': ('torch.compile(backbone) (inductor, default mode, static shapes, NCHW convolutions; the trunk '
                'rows: MobileMamba(compile=True))', _apply_compile, None),
    'cuda-graph': ('backbone forward and backward replayed as CUDA graphs (MobileMamba cuda_graph=True, '
                   'no finite check; other backbones through the same graph cache)',
                   _apply_cuda_graph, None),
}


# levers that apply to a bare backbone (no-finite-check is always on in the trunk benchmark)
TRUNK_LEVERS = ('tf32', 'conv-proj', 'channels-last', 'cuda-graph', 'compile', 'compile+cuda-graph')


# ------------------------------------------------------------------------------------- sections
def _replays_cuda_graphs(model) -> bool:
    """Whether a module of ``model`` replays its training steps as CUDA graphs (MobileMamba with
    ``cuda_graph=True``, or the lever's wrapper)."""
    return any(getattr(module, 'cuda_graph', False) is True for module in model.modules())


def prepare_train(model, data, precision, device, args, base_mib: float = 0.0) -> tuple:
    """(``step``, peak MiB): ``step()`` runs one ``model.train_step`` at ``precision``, warmed up
    ``args.warmup`` times. The peak is the model's own: the most memory allocated during one of its
    steps, less ``base_mib``, what was allocated before ``model`` was built, so models held
    side by side do not count each other. Where the model replays CUDA graphs the peak spans the
    warm-up, whose steps capture them (their memory pool stays in use but is no longer counted as
    allocated); elsewhere it is one step after warm-up (cuDNN's algorithm search stays out)."""
    optim_wrapper = build_optim_wrapper(model, precision)
    model.train()

    def step():
        model.train_step(data, optim_wrapper)

    def steps(count: int):
        for _ in range(count):
            step()

    if _replays_cuda_graphs(model):  # the first step captures the graphs
        peak = first_call_peak_mib(functools.partial(steps, max(args.warmup, 1)), device)
    else:
        steps(args.warmup)
        peak = first_call_peak_mib(step, device)
    return step, peak - base_mib


def time_train(model, data, precision, device, args) -> tuple:
    """(median ms per train_step, peak MiB) for one precision, one model alone."""
    step, peak = prepare_train(model, data, precision, device, args)
    return interleaved_wall_ms({'model': step}, device, args.iters)['model'], peak


def _failure(label, error) -> str:
    text = f'{type(error).__name__}: {str(error).splitlines()[0][:150] if str(error) else ""}'
    print(f'  {label}: failed ({text})', flush=True)
    return 'failed'


def _spec_for(name: str, args):
    path, task, batch, size, overrides = MODEL_SPECS[name]
    if args.batch:
        batch = args.batch
    if args.size:
        size = tuple(args.size)
    return path, task, batch, size, overrides


def _build_for(name: str, args, device, batch: Optional[int] = None):
    """(model, data) of a MODEL_SPECS entry, on ``device``, with cuDNN autotuning as its config sets."""
    spec = _spec_for(name, args)
    _, task, spec_batch, size, _ = spec
    cfg = load_config(name, spec, with_loss_fp32='bf16' in args.precisions)
    use_config_cudnn_benchmark(cfg, device)
    return build_model(cfg, device), make_batch(name, task, batch or spec_batch, size)


def _prepare_named(name: str, precision: str, device, args) -> tuple:
    """:func:`prepare_train` of a MODEL_SPECS entry built now, its peak less what was allocated before."""
    base_mib = allocated_mib(device)
    model, data = _build_for(name, args, device)
    return prepare_train(model, data, precision, device, args, base_mib)


def _release(device):
    import gc
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def section_train(args, device) -> str:
    """Every model of ``args.models`` per precision, held side by side and timed in rounds
    (:func:`~.timing.interleaved_wall_ms`), so that their ratios come from the same minutes."""
    header = ['model', 'input, batch'] + [f'{p} ms/iter' for p in args.precisions] + \
        [f'{p} peak MiB' for p in args.precisions]
    results = {name: {} for name in args.models}
    for precision in args.precisions:
        steps = {}
        for name in args.models:
            try:
                steps[name], peak = _prepare_named(name, precision, device, args)
                results[name][precision] = (None, peak)
            except Exception as e:  # keep the other models' numbers
                results[name][precision] = (_failure(f'{name} {precision}', e), '-')
        for name, ms in interleaved_wall_ms(steps, device, args.iters).items():
            results[name][precision] = (ms, results[name][precision][1])
            print(f'  {name} train {precision}: {fmt(ms)} ms, peak {fmt(results[name][precision][1])} MiB',
                  flush=True)
        steps.clear()
        _release(device)
    rows = []
    for name in args.models:
        _, _, batch, size, _ = _spec_for(name, args)
        rows.append([name, f'{size[1]}x{size[0]}, {batch}'] + [results[name][p][0] for p in args.precisions]
                    + [results[name][p][1] for p in args.precisions])
    text = table('Training iteration: model.train_step (data preprocessor, forward, loss, backward, '
                 'grad clip, AdamW step); data loading excluded; synthetic batch; median ms; models timed '
                 'in alternation', header, rows)
    if args.inference:
        text += '\n' + section_test(args, device)
    return text


def section_test(args, device) -> str:
    """``model.test_step`` at batch 1 of every model, and of each MobileMamba model in deploy mode
    (``switch_to_deploy``, as ``tools/test.py --deploy`` runs it), timed in alternation."""
    models, failed = {}, {}
    for name in args.models:
        try:
            model, data = _build_for(name, args, device, batch=1)
            models[name] = (model.eval(), data)
            if hasattr(model.backbone, 'switch_to_deploy'):
                deployed = copy.deepcopy(model)
                deployed.backbone.switch_to_deploy()
                models[f'{name} deploy'] = (deployed.eval(), data)
        except Exception as e:
            failed[name] = _failure(f'{name} test', e)
    results = {label: {} for label in list(models) + list(failed)}
    for precision in args.test_precisions:
        def test_step(model, data, precision=precision):
            with torch.no_grad(), autocast(device, precision):
                model.test_step(data)

        steps = {}
        for label, (model, data) in models.items():
            try:
                for _ in range(args.warmup):
                    test_step(model, data)
                steps[label] = functools.partial(test_step, model, data)
            except Exception as e:
                results[label][precision] = _failure(f'{label} test {precision}', e)
        for label, ms in interleaved_wall_ms(steps, device, args.iters).items():
            results[label][precision] = f'{fmt(ms)} ({1e3 / ms:.1f})'
            print(f'  {label} test {precision}: {results[label][precision]} ms (FPS)', flush=True)
    rows = []
    for label in results:
        _, _, _, size, _ = _spec_for(label.split()[0], args)
        rows.append([label, f'{size[1]}x{size[0]}, 1'] + [results[label].get(p, failed.get(label, '-'))
                                                          for p in args.test_precisions])
    del models
    _release(device)
    return table('Inference: model.test_step, batch 1, as configured (cuda-graph configs: backbone replayed as a '
                 'CUDA graph), post-processing and NMS included; ms (FPS); '
                 '"deploy": backbone after switch_to_deploy(); models timed in alternation',
                 ['model', 'input, batch'] + [f'{p} ms (FPS)' for p in args.test_precisions], rows)


def section_levers(args, device) -> str:
    """Each lever (or '+'-joined combination) against the same model without it, in one process."""
    rows = []
    for name in args.lever_models:
        spec = _spec_for(name, args)
        _, task, batch, size, _ = spec
        cfg = load_config(name, spec, with_loss_fp32=True)
        use_config_cudnn_benchmark(cfg, device)
        data = make_batch(name, task, batch, size)
        for precision in args.lever_precisions:
            base = None
            for lever in ['none'] + list(args.levers):
                model = None
                try:
                    model = build_model(cfg, device)
                    parts = [] if lever == 'none' else lever.split('+')
                    with contextlib.ExitStack() as stack:
                        for part in parts:
                            _, transform, context = LEVERS[part]
                            if transform is not None:
                                transform(model, precision, data)
                            if context is not None:
                                stack.enter_context(context())
                        ms, mem = time_train(model, data, precision, device, args)
                    base = ms if lever == 'none' else base
                    rows.append([name, precision, lever, ms, f'{base / ms:.2f}x' if base else '-', mem])
                except Exception as e:
                    rows.append([name, precision, lever, _failure(f'{name} {lever}', e), '-', '-'])
                print(f'  {name} {precision} {lever}: {fmt(rows[-1][3])} ms', flush=True)
                del model
    used = {part for lever in args.levers for part in lever.split('+')}
    legend = '; '.join(f'{k}: {v[0]}' for k, v in LEVERS.items() if k in used)
    return table(f'Training-speed levers (speed-up = baseline ms / lever ms). {legend}',
                 ['model', 'precision', 'lever', 'ms/iter', 'speed-up', 'peak MiB'], rows)


def _lever(text: str) -> str:
    """argparse type: a lever name or several joined by '+'."""
    unknown = [part for part in text.split('+') if part not in LEVERS]
    if unknown:
        raise argparse.ArgumentTypeError(f'unknown lever(s) {unknown}; choose from {list(LEVERS)}, '
                                         'or join several with +')
    return text


# ------------------------------------------------------------------------------------- output
def environment(args, device) -> str:
    import platform
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else (platform.processor() or 'CPU')
    lines = [f'- device: {name}; torch {torch.__version__}; cuDNN benchmark as each config sets it '
             '(env_cfg.cudnn_benchmark: mmdet configs off, mmseg configs on)',
             f'- median of {args.iters} iterations after {args.warmup} warm-up iterations, wall clock, '
             'synchronised per iteration; data loading excluded',
             '- optimizer for every model: fused AdamW lr 1e-4, wd 0.05 (none on norm), grad clip 0.1; AMP: '
             'mmengine AmpOptimWrapper; bf16 RetinaNets use Float32FocalLoss (mmcv has no bf16 focal loss)']
    text = '\n'.join(lines) + '\n'
    print(text, flush=True)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    cuda = torch.cuda.is_available()
    parser.add_argument('--device', default='cuda' if cuda else 'cpu')
    parser.add_argument('--models', nargs='*', default=list(MODEL_SPECS), choices=list(MODEL_SPECS),
                        help='models of the training table (default: all); none skips the table')
    parser.add_argument('--precisions', nargs='+', choices=list(PRECISIONS),
                        help='training precisions (default fp32 fp16 bf16 on CUDA, fp32 on CPU)')
    parser.add_argument('--test-precisions', nargs='+', choices=list(PRECISIONS), help='inference precisions '
                        '(default fp32 fp16 on CUDA, fp32 on CPU)')
    parser.add_argument('--no-inference', dest='inference', action='store_false',
                        help='skip the test_step (inference with NMS) table')
    parser.add_argument('--iters', type=int, help='timed iterations (default 10 CUDA / 1 CPU)')
    parser.add_argument('--warmup', type=int, help='warm-up iterations (default 3 CUDA / 1 CPU)')
    parser.add_argument('--size', nargs=2, type=int, metavar=('H', 'W'), help='override every input size')
    parser.add_argument('--batch', type=int, help='override every training batch')
    parser.add_argument('--levers', nargs='*', default=[], type=_lever,
                        help=f'training-speed levers to compare against the baseline, one at a time or '
                        f'joined with + (e.g. conv-proj+cuda-graph); of {list(LEVERS)}')
    parser.add_argument('--lever-models', nargs='+', default=['retinanet-S6'], choices=list(MODEL_SPECS),
                        help='models of the lever table (SS2D levers change nothing in ResNet models)')
    parser.add_argument('--lever-precisions', nargs='+', choices=list(PRECISIONS),
                        help='precisions of the lever table (default fp32 bf16 on CUDA, fp32 on CPU)')
    parser.add_argument('--trunk', action='store_true', help='time the S6 trunk (stem + 3 stages, forward + '
                        'backward), against the release with --release-repo')
    parser.add_argument('--release-repo', help='local copy of the official MobileMamba release with its '
                        'selective_scan_cuda_oflex kernel importable (on PYTHONPATH)')
    parser.add_argument('--trunk-shapes', nargs='+', default=None, metavar='BxHxW',
                        help='trunk shapes (default 128x224x224 4x768x1280 on CUDA, 2x64x64 on CPU)')
    parser.add_argument('--trunk-precisions', nargs='+', choices=['fp32', 'bf16', 'fp16'])
    parser.add_argument('--trunk-levers', nargs='*', default=[], choices=TRUNK_LEVERS,
                        help='extra rows: our trunk with each of these levers')
    parser.add_argument('--trunk-profile', action='store_true',
                        help='also print the top CUDA kernels of each trunk (last shape, fp32, 3 steps)')
    parser.add_argument('--out', help='also write the tables (markdown) to this file')
    return parser


def _defaults(args):
    cuda = args.device.startswith('cuda')
    args.precisions = args.precisions or (['fp32', 'fp16', 'bf16'] if cuda else ['fp32'])
    args.test_precisions = args.test_precisions or (['fp32', 'fp16'] if cuda else ['fp32'])
    args.lever_precisions = args.lever_precisions or (['fp32', 'bf16'] if cuda else ['fp32'])
    args.trunk_precisions = args.trunk_precisions or (['fp32', 'bf16'] if cuda else ['fp32'])
    args.trunk_shapes = args.trunk_shapes or (['128x224x224', '4x768x1280'] if cuda else ['2x64x64'])
    args.iters = args.iters or (10 if cuda else 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    return args


def run(args) -> str:
    """Run the sections that ``args`` asks for; returns the tables as markdown."""
    args = _defaults(args)
    device = torch.device(args.device)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter optimizer lines
    out = [environment(args, device)]
    if args.models:
        out.append(section_train(args, device))
    if args.levers:
        out.append(section_levers(args, device))
    if args.trunk:  # last: importing the release registers its modules
        from .benchmark_trunk import section_trunk
        out.append(section_trunk(args, device))
    text = '\n'.join(out)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return text


def main(argv: Optional[list] = None) -> str:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split('\n\n')[0]))
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    main()
