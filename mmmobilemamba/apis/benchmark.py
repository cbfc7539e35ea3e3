"""Speed benchmarks of MobileMamba: classifier throughput, resolution scaling, selective-scan
backends, reference models, det/seg models built from configs, and CPU latency of the eager,
deploy and ONNX Runtime forms (``cpu``: :mod:`mmmobilemamba.apis.benchmark_cpu`, options
``--cpu-*``). Training speed has its own engine, ``python -m mmmobilemamba.apis.benchmark_train``.

Run from the repository root::

    python tools/analysis_tools/benchmark.py               # everything but det/seg, on CUDA if present
    python tools/analysis_tools/benchmark.py --sections det --config configs/det/retinanet_mobilemamba_s6.py \
        mmdet::retinanet/retinanet_r18_fpn_1x_coco.py
    python tools/analysis_tools/benchmark.py --device cpu  # small CPU defaults (batch 8, few iterations)
    python tools/analysis_tools/benchmark.py --out benchmarks/gpu_results.md
    python tools/analysis_tools/benchmark.py --sections cpu --cpu-archs S6 --cpu-sizes 224 512

Timing: warm-up runs first, then each run is timed separately (CUDA events on the GPU,
``time.perf_counter`` on the CPU) and the median is reported. Peak memory is
``torch.cuda.max_memory_allocated`` during the timed runs. Inference runs under
``torch.inference_mode``; AMP rows run under ``torch.autocast`` with the named dtype.
"""
import argparse
import contextlib
import datetime
import os
import os.path as osp
import platform
import sys
import time

import torch

from mmmobilemamba.utils.compat import install_mmcv_ext_stub

from . import benchmark_cpu
from .timing import PRECISIONS, autocast, median_event_ms, peak_mib, queued_gpu_ms, table


ARCHS = ('T2', 'T4', 'S6', 'B1', 'B2', 'B4')
DEFAULT_DET_CONFIGS = ('configs/det/retinanet_mobilemamba_s6.py',
                       'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')


# ------------------------------------------------------------------------------------- utilities
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--sections', nargs='+', default=None,
                   choices=['throughput', 'scaling', 'scan', 'reference', 'det', 'cpu'],
                   help='default: all but det and cpu (det too when --config is given); cpu needs onnxruntime')
    p.add_argument('--archs', nargs='+', default=list(ARCHS), type=str.upper)
    p.add_argument('--batch', type=int, help='throughput batch (default 256 on CUDA, 8 on CPU)')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--precisions', nargs='+', choices=list(PRECISIONS),
                   help='default fp32 bf16 fp16 on CUDA, fp32 on CPU')
    p.add_argument('--warmup', type=int, help='warm-up runs (default 10 CUDA / 1 CPU)')
    p.add_argument('--iters', type=int, help='timed runs (default 30 CUDA / 3 CPU)')
    p.add_argument('--scan-backend', default='auto',
                   help='selective-scan backend for the models (auto, triton, torch, mamba_ssm)')
    p.add_argument('--compare-scan-archs', nargs='*', default=['S6'], type=str.upper,
                   help='also time these archs (fused) with every other available scan kernel')
    p.add_argument('--references', nargs='+', default=list(REFERENCE_MODELS), choices=list(REFERENCE_MODELS),
                   help='reference models of the "reference" section (timm / torchvision)')
    p.add_argument('--scaling-arch', default='S6', type=str.upper)
    p.add_argument('--scaling-sizes', nargs='+', type=int,
                   help='default 512 1024 2048 on CUDA, 256 512 on CPU')
    p.add_argument('--scaling-batch', type=int, help='batch of the scaling runs (default 8 on CUDA, 1 on CPU)')
    p.add_argument('--scan-batch', type=int, help='batch of the scan shapes (default = --batch)')
    p.add_argument('--scan-long', nargs=2, type=int, metavar=('BATCH', 'SIZE'),
                   help='also time the scan of stage 1 at SIZE px input and BATCH images '
                        '(default 8 1024 on CUDA: L = 4096)')
    p.add_argument('--config', nargs='+', default=None,
                   help='mmdet/mmseg configs to time (tensor-mode forward, no post-processing); '
                        '"mmdet::path" or "mmseg::path" reads from the installed package')
    p.add_argument('--det-shape', nargs=2, type=int, metavar=('H', 'W'),
                   help='input size for --config models (default: the size get_flops counts, '
                        'mmmobilemamba.apis.config.input_shape; padded to the preprocessor\'s size divisor)')
    p.add_argument('--det-iters', type=int, help='timed runs for det/seg (default 50 CUDA / 3 CPU)')
    p.add_argument('--det-precisions', nargs='+', choices=list(PRECISIONS),
                   help='precisions for det/seg (default fp32 fp16 on CUDA, fp32 on CPU)')
    p.add_argument('--stub-mmcv-ops', action='store_true',
                   help='if mmcv has no compiled ops (mmcv-lite), register a stub mmcv._ext so that '
                        'mmdet/mmseg import; any call into a compiled op then raises')
    p.add_argument('--no-cudnn-benchmark', dest='cudnn_benchmark', action='store_false',
                   help="leave cuDNN's algorithm search off (the mmdet/mmseg default, env_cfg.cudnn_benchmark=False)")
    p.add_argument('--compile', action='store_true',
                   help='time the classifiers (MobileMamba and reference) through torch.compile '
                        '(inductor, default mode; each precision compiles once during warm-up)')
    p.add_argument('--channels-last', action='store_true',
                   help='run the classifiers (MobileMamba and reference) and their inputs in channels-last memory format')
    p.add_argument('--no-graph', dest='graph', action='store_false',
                   help='skip the CUDA-graph replay timings (eager timings only)')
    p.add_argument('--out', help='also write the tables (markdown) to this file')
    benchmark_cpu.add_arguments(p.add_argument_group('cpu section (CPU latency, batch 1)'), prefix='cpu-')
    args = p.parse_args(argv)
    cuda = args.device.startswith('cuda')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error('CUDA is not available; use --device cpu')
    args.cuda = cuda
    args.batch = args.batch or (256 if cuda else 8)
    args.precisions = args.precisions or (['fp32', 'bf16', 'fp16'] if cuda else ['fp32'])
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    args.iters = args.iters or (30 if cuda else 3)
    args.det_iters = args.det_iters or (50 if cuda else 3)
    args.det_precisions = args.det_precisions or (['fp32', 'fp16'] if cuda else ['fp32'])
    args.scaling_sizes = args.scaling_sizes or ([512, 1024, 2048] if cuda else [256, 512])
    args.scan_batch = args.scan_batch or args.batch
    args.scaling_batch = args.scaling_batch or (8 if cuda else 1)
    if args.scan_long is None and cuda:
        args.scan_long = [8, 1024]
    if args.sections is None:
        args.sections = ['throughput', 'scaling', 'scan', 'reference'] + (['det'] if args.config else [])
    if 'det' in args.sections and not args.config:
        args.config = list(DEFAULT_DET_CONFIGS)
    return args


def measure_graph(fn, device, warmup, iters):
    """Like :func:`~mmmobilemamba.apis.timing.median_event_ms`, for replays of a CUDA graph captured
    from ``fn`` (no launch overhead).

    Returns NaN where graphs do not apply (CPU) or the capture fails."""
    if device.type != 'cuda':
        return float('nan')
    try:
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        ms = median_event_ms(graph.replay, device, warmup, iters)
        del graph
        torch.cuda.empty_cache()
        return ms
    except Exception as e:
        print(f'  CUDA graph capture failed ({type(e).__name__}: {str(e)[:160]})', flush=True)
        torch.cuda.synchronize(device)
        return float('nan')


def inference(model, x, device, precision):
    """A closure running ``model(x)`` in inference mode under the precision's autocast."""
    def run():
        with torch.inference_mode(), autocast(device, precision, cache_enabled=False):
            return model(x)
    return run


@contextlib.contextmanager
def scan_backend(name):
    """Select the selective-scan backend of every model call (the dispatcher reads the variable)."""
    old = os.environ.get('MMMOBILEMAMBA_SCAN_BACKEND')
    os.environ['MMMOBILEMAMBA_SCAN_BACKEND'] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop('MMMOBILEMAMBA_SCAN_BACKEND', None)
        else:
            os.environ['MMMOBILEMAMBA_SCAN_BACKEND'] = old


@contextlib.contextmanager
def without_inference_kernels():
    """SS2D without its fused Triton inference kernels (bidirectional scan, norm and gate): the
    generic path with flipped copies and separate ops, for side-by-side rows."""
    from mmmobilemamba.models.layers import ss2d
    saved = ss2d.triton_inference_kernel
    ss2d.triton_inference_kernel = lambda *args, **kwargs: None
    try:
        yield
    finally:
        ss2d.triton_inference_kernel = saved


def resolved_backend(device, name='auto'):
    from mmmobilemamba.ops import available_backends
    usable = available_backends(device)
    return usable[0] if name == 'auto' or name not in usable else name


def throughput_rows(model, name, kind, args, device, fused_label, backend_label):
    rows = []
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
    nan = float('nan')
    if args.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
        kind = f'{kind}, channels-last'
    if args.compile:  # a fresh cache: every model and precision gets its own graphs
        torch._dynamo.reset()
        model, kind = torch.compile(model), f'{kind}, compiled'
    for precision in args.precisions:
        row = [name, kind, f'{args.img_size}²', args.batch, precision, fused_label, backend_label]
        try:
            run = inference(model, x, device, precision)
            ms = median_event_ms(run, device, args.warmup, args.iters)
            mem = peak_mib(device)
            ms_graph = measure_graph(run, device, args.warmup, args.iters) if args.graph else nan
            rows.append(row + [ms, args.batch / ms * 1e3, ms_graph, args.batch / ms_graph * 1e3, mem])
        except Exception as e:  # e.g. an op without a kernel for this dtype on CPU
            rows.append(row + [nan] * 5)
            print(f'  {name} {precision}: failed ({type(e).__name__}: {str(e)[:120]})', flush=True)
    return rows


THROUGHPUT_HEADER = ['model', 'kind', 'input', 'batch', 'precision', 'BN fused', 'scan', 'ms/batch',
                     'images/s', 'ms/batch (graph)', 'images/s (graph)', 'peak MiB']


# -------------------------------------------------------------------------------------- sections
def section_throughput(args, device):
    from mmmobilemamba.models.classifier import MobileMambaClassifier
    from mmmobilemamba.ops import available_backends
    backend = resolved_backend(device, args.scan_backend)
    rows = []
    with scan_backend(args.scan_backend):
        for arch in args.archs:
            model = MobileMambaClassifier(arch).to(device).eval()
            rows += throughput_rows(model, f'MobileMamba-{arch}', 'classifier', args, device, 'no', backend)
            model.switch_to_deploy()
            rows += throughput_rows(model, f'MobileMamba-{arch}', 'classifier', args, device, 'yes', backend)
            del model
    # the same networks with every other scan kernel available here, side by side; 'triton' runs
    # SS2D's fused inference kernels, 'triton, unfused SS2D' the generic path with the same scan
    others = [(b, contextlib.nullcontext) for b in available_backends(device) if b not in (backend, 'reference')]
    if 'triton' in available_backends(device):
        others.append(('triton', without_inference_kernels))
    for other, variant in others:
        with scan_backend(other), variant():
            label = other if variant is contextlib.nullcontext else f'{other}, unfused SS2D'
            for arch in args.compare_scan_archs:
                model = MobileMambaClassifier(arch).to(device).eval().switch_to_deploy()
                rows += throughput_rows(model, f'MobileMamba-{arch}', 'classifier', args, device, 'yes', label)
                del model
    # BN folded but the convolutions left as cuDNN's nn.Conv2d (switch_to_deploy(inference_convs=False))
    with scan_backend(args.scan_backend):
        for arch in args.compare_scan_archs:
            model = MobileMambaClassifier(arch).to(device).eval().switch_to_deploy(inference_convs=False)
            rows += throughput_rows(model, f'MobileMamba-{arch}', 'classifier', args, device,
                                    'yes, cuDNN convs', backend)
            del model
    return table(f'Classifier throughput ({args.img_size}², batch {args.batch}, ImageNet head)',
                 THROUGHPUT_HEADER, rows)


def _fuse_reference(name, model):
    """Fold BatchNorm into the preceding conv/linear, as ``switch_to_deploy()`` does for MobileMamba,
    so that the fused rows compare like with like: timm's own re-parameterisation for EfficientViT,
    torch.fx's conv-BN fusion for the torchvision models."""
    if 'timm' in name:
        from timm.utils.model import reparameterize_model
        return reparameterize_model(model, inplace=True)
    from torch.fx.experimental.optimization import fuse
    return fuse(model)


REFERENCE_MODELS = {  # --references name: (row label, package, builder)
    'efficientvit_m5': ('EfficientViT-M5 (timm)', 'timm', lambda m: m.create_model('efficientvit_m5', pretrained=False)),
    'mobilenet_v2': ('MobileNetV2 (torchvision)', 'torchvision', lambda m: m.models.mobilenet_v2()),
    'resnet18': ('ResNet-18 (torchvision)', 'torchvision', lambda m: m.models.resnet18()),
}


def section_reference(args, device):
    import importlib
    rows = []
    for key in args.references:
        name, package, build = REFERENCE_MODELS[key]
        try:
            module = importlib.import_module(package)
        except Exception as e:
            print(f'{package} not importable ({type(e).__name__}); skipping {name}', flush=True)
            continue
        for fused in (False, True):
            model = build(module).eval()
            if fused:  # on the CPU: timm's fuse() makes its new layers there
                model = _fuse_reference(name, model)
            model = model.to(device)
            rows += throughput_rows(model, name, 'classifier', args, device, 'yes' if fused else 'no', '-')
            del model
    return table(f'Reference models ({args.img_size}², batch {args.batch})', THROUGHPUT_HEADER, rows)


def section_scaling(args, device):
    from mmmobilemamba.models.backbones import MobileMamba
    backend = resolved_backend(device, args.scan_backend)
    model = MobileMamba(args.scaling_arch, out_indices=(0, 1, 2)).to(device).eval().switch_to_deploy()
    rows = []
    precisions = [p for p in ('fp32', 'bf16') if p in args.precisions] or args.precisions[:1]
    iters = max(3, args.iters // 2)
    with scan_backend(args.scan_backend):
        for precision in precisions:
            base = None
            for size in args.scaling_sizes:
                x = torch.randn(args.scaling_batch, 3, size, size, device=device)
                run = inference(model, x, device, precision)
                try:
                    ms = median_event_ms(run, device, max(2, args.warmup // 2), iters)
                    mem = peak_mib(device)
                    ms_graph = measure_graph(run, device, max(2, args.warmup // 2), iters) if args.graph \
                        else float('nan')
                except torch.cuda.OutOfMemoryError:
                    rows.append([precision, f'{size}²', 'OOM', '-', '-', '-', '-', '-', '-'])
                    continue
                # ratios from the graph timings where there are any (batch 1 is launch-bound in eager mode)
                t = ms_graph if ms_graph == ms_graph else ms
                if base is None:
                    base = prev = (size, t)
                pixel_ratio = (size / base[0]) ** 2
                step = (t / prev[1]) / (size / prev[0]) ** 2 if prev[0] != size else 1.0
                rows.append([precision, f'{size}²', ms, ms_graph, f'{t / base[1]:.2f}', f'{pixel_ratio:.0f}',
                             f'{(t / base[1]) / pixel_ratio:.2f}', f'{step:.2f}', mem])
                prev = (size, t)
    return table(f'Resolution scaling: MobileMamba-{args.scaling_arch} backbone (3 outputs, BN fused, '
                 f'batch {args.scaling_batch}, scan {backend}); ratios from graph replays',
                 ['precision', 'input', 'ms (eager)', 'ms (graph)', 'time ratio', 'pixel ratio',
                  'time ratio / pixel ratio', 'same, vs previous size', 'peak MiB'], rows)


def record_scan_shapes(model, x):
    """The (u, B) shapes and dtypes of every selective-scan call of one forward pass."""
    from mmmobilemamba.models.layers import ss2d
    seen = []
    original = ss2d.selective_scan

    def recorder(u, delta, A, B, *rest, **kwargs):
        key = (tuple(u.shape), tuple(B.shape))
        if key not in seen:
            seen.append(key)
        return original(u, delta, A, B, *rest, **kwargs)

    ss2d.selective_scan = recorder
    try:
        with torch.inference_mode():
            model(x)
    finally:
        ss2d.selective_scan = original
    return seen


def scan_inputs(u_shape, b_shape, device, dtype, grad):
    batch, channels, length = u_shape
    groups, states = b_shape[1], b_shape[2]
    g = torch.Generator(device='cpu').manual_seed(0)

    def rnd(*shape, scale=1.0, dt=dtype):
        return (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dt).requires_grad_(grad)

    u = rnd(batch, channels, length)
    delta = rnd(batch, channels, length, scale=0.5)
    A = (-(torch.rand(channels, states, generator=g) + 0.1)).to(device).requires_grad_(grad)
    B = rnd(batch, groups, states, length)
    C = rnd(batch, groups, states, length)
    D = rnd(channels, dt=torch.float32)
    bias = rnd(channels, scale=0.3, dt=torch.float32)
    return u, delta, A, B, C, D, bias


def section_scan(args, device):
    from mmmobilemamba.models.backbones import MobileMamba
    from mmmobilemamba.ops import available_backends, selective_scan
    backends = [b for b in available_backends(device) if b != 'reference']
    arch = 'S6' if 'S6' in args.archs else args.archs[0]
    model = MobileMamba(arch).to(device).eval()
    shapes = [(s, f'{arch} {args.img_size}²') for s in record_scan_shapes(
        model, torch.randn(args.scan_batch, 3, args.img_size, args.img_size, device=device))]
    if args.scan_long:
        lb, size = args.scan_long
        shapes += [(s, f'{arch} {size}²') for s in record_scan_shapes(
            model, torch.randn(lb, 3, size, size, device=device))[:1]]
    del model
    rows = []
    iters = max(5, args.iters)
    for (u_shape, b_shape), origin in shapes:
        for dtype_name, dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16)):
            if dtype_name not in args.precisions:
                continue
            inputs = scan_inputs(u_shape, b_shape, device, dtype, grad=True)
            dy = torch.randn(u_shape, device=device)
            results = {}
            for backend in backends:
                try:
                    def fwd():
                        with torch.no_grad():
                            selective_scan(*inputs, backend=backend)

                    def fwd_bwd():
                        y = selective_scan(*inputs, backend=backend)
                        torch.autograd.grad(y, inputs, dy)

                    with scan_backend(backend):
                        t_f = median_event_ms(fwd, device, args.warmup, iters)
                        t_fb = median_event_ms(fwd_bwd, device, max(2, args.warmup // 2), iters)
                        mem = peak_mib(device)
                        g_f = queued_gpu_ms(fwd, device, iters, t_f, repeats=3)
                        g_fb = queued_gpu_ms(fwd_bwd, device, iters, t_fb, repeats=3)
                    results[backend] = (t_f, t_fb, g_f, g_fb, mem)
                except Exception as e:
                    print(f'  scan {backend} {u_shape}: failed ({type(e).__name__}: {str(e)[:120]})', flush=True)
            base = results.get('torch')
            ref = results.get('mamba_ssm')
            gpu = device.type == 'cuda'
            for backend, (t_f, t_fb, g_f, g_fb, mem) in results.items():
                n_el = u_shape[0] * u_shape[1] * u_shape[2]
                # fewest bytes of the forward: u and delta read, y (fp32) written, B and C read
                fwd_bytes = n_el * (2 * inputs[0].element_size() + 4) + 2 * inputs[3].numel() * inputs[3].element_size()
                f, fb, bf, bfb = (g_f, g_fb, base[2], base[3]) if gpu else (t_f, t_fb, base and base[0], base and base[1])
                rows.append([origin, f'{u_shape[0]}x{u_shape[1]}x{u_shape[2]}, N={b_shape[2]}, G={b_shape[1]}',
                             dtype_name, backend, t_f, t_fb, g_f, g_fb,
                             f'{bf / f:.1f}x' if base else '-', f'{bfb / fb:.1f}x' if base else '-',
                             _vs_mamba_ssm(ref, gpu, f, fb), fwd_bytes / f / 1e6, mem])
    return table('Selective scan backends at model shapes (u: batch x G*D x L). "eager": median per call '
                 'including Python/launch overhead; "GPU": per call with the launches queued behind a '
                 'sleep kernel (GPU time only); speed-ups and GB/s from the GPU times',
                 ['shape from', 'u shape', 'inputs', 'backend', 'fwd ms (eager)', 'fwd+bwd ms (eager)',
                  'fwd ms (GPU)', 'fwd+bwd ms (GPU)', 'fwd speed-up vs torch', 'fwd+bwd speed-up vs torch',
                  'time / mamba-ssm (fwd, fwd+bwd)', 'fwd GB/s (min bytes)', 'peak MiB'], rows)


def _vs_mamba_ssm(ref, gpu, f, fb):
    """Time of a backend relative to mamba-ssm's kernel (below 1: faster), or '-' without mamba-ssm."""
    if ref is None:
        return '-'
    rf, rfb = (ref[2], ref[3]) if gpu else (ref[0], ref[1])
    return f'{f / rf:.2f}x, {fb / rfb:.2f}x'


# ----------------------------------------------------------------------------------------- det/seg
def section_det(args, device):
    from .config import build_model, input_shape, load_config
    if args.stub_mmcv_ops and install_mmcv_ext_stub():
        print('note: mmcv has no compiled ops here; a stub mmcv._ext is registered (tensor-mode '
              'forward of these models calls none)', flush=True)
    rows = []
    backend = resolved_backend(device, args.scan_backend)
    for path in args.config:
        try:
            cfg = load_config(path)
            model, scope = build_model(cfg), cfg.get('default_scope', 'mmdet')
        except Exception as e:
            print(f'{path}: could not build ({type(e).__name__}: {str(e)[:200]})', flush=True)
            rows.append([osp.basename(path), '-', '-', '-', '-', 'build failed', '-', '-', '-', '-'])
            continue
        model = model.to(device).eval()
        h, w = input_shape(cfg, args.det_shape)
        x = torch.randn(1, 3, h, w, device=device)
        is_mm = type(getattr(model, 'backbone', None)).__name__ == 'MobileMamba'
        variants = [('no', False)] + ([('yes', True)] if is_mm else [])
        for fused_label, fuse in variants:
            if fuse:
                model.backbone.switch_to_deploy()
            for precision in args.det_precisions:
                try:
                    with scan_backend(args.scan_backend):
                        run = inference(model._forward, x, device, precision)
                        ms = median_event_ms(run, device, args.warmup, args.det_iters)
                        mem = peak_mib(device)
                        ms_graph = measure_graph(run, device, args.warmup, args.det_iters) if args.graph \
                            else float('nan')
                    rows.append([osp.basename(path), scope, f'{h}x{w}', precision, fused_label, ms, 1e3 / ms,
                                 ms_graph, 1e3 / ms_graph, mem])
                except Exception as e:
                    print(f'  {path} {precision}: failed ({type(e).__name__}: {str(e)[:160]})', flush=True)
        del model
    return table(f'Det/seg models: tensor-mode forward (backbone + neck + head, no post-processing), '
                 f'batch 1, scan {backend} for MobileMamba',
                 ['config', 'scope', 'input', 'precision', 'BN fused', 'ms', 'FPS', 'ms (graph)', 'FPS (graph)',
                  'peak MiB'], rows)


# ------------------------------------------------------------------------------------------ main
def section_cpu(args, device):
    return '### CPU latency: eager / deploy / ONNX Runtime\n\n' + benchmark_cpu.run(args) + '\n'


def environment(args, device):
    lines = [f'- date: {datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}',
             f'- device: {torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"}'
             + (f' ({torch.get_num_threads()} threads)' if device.type == 'cpu' else ''),
             f'- torch {torch.__version__}, python {platform.python_version()}']
    try:
        import triton
        lines[-1] += f', triton {triton.__version__}'
    except ImportError:
        pass
    lines.append(f'- command: `python tools/analysis_tools/benchmark.py {" ".join(sys.argv[1:])}`')
    lines.append(f'- timing: median of {args.iters} runs after {args.warmup} warm-up runs'
                 + (' (CUDA events)' if device.type == 'cuda' else ' (perf_counter)'))
    if args.compile:
        lines.append('- classifiers run through torch.compile (inductor, default mode)')
    if args.channels_last:
        lines.append('- classifiers and inputs in channels-last memory format')
    if device.type == 'cuda':
        lines.append(f'- cuDNN algorithm search (cudnn.benchmark): {"on" if args.cudnn_benchmark else "off"}')
    text = '\n'.join(lines) + '\n'
    print(text, flush=True)
    return text


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
    import mmmobilemamba  # noqa: F401  (registers the models)
    out = [environment(args, device)]
    sections = {'throughput': section_throughput, 'reference': section_reference,
                'scaling': section_scaling, 'scan': section_scan, 'det': section_det, 'cpu': section_cpu}
    for name in ('throughput', 'reference', 'scaling', 'scan', 'det', 'cpu'):
        if name not in args.sections:
            continue
        t0 = time.time()
        try:
            out.append(sections[name](args, device))
        except Exception as e:  # keep the other sections' numbers
            import traceback
            traceback.print_exc()
            out.append(f'### {name}: failed ({type(e).__name__}: {e})\n')
        print(f'[{name} took {time.time() - t0:.0f} s]\n', flush=True)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write('\n'.join(out))

