"""The MobileMamba-S6 trunk (stem + 3 stages) in training: ours against the official release.

One step is forward + backward of the trunk in training mode (BatchNorm batch statistics, weight
gradients, no optimizer), under autocast for bf16/fp16. Reported per shape and precision: wall ms
(synchronised per step), GPU ms (the summed durations of the step's kernels, so host launch gaps do
not count), and peak memory. Ours runs with ``check_finite=False`` (that check synchronises the host
once per forward; the release has none); the levers ``cuda-graph``, ``compile`` and ``compile+cuda-graph``
build it with MobileMamba's ``cuda_graph`` / ``compile`` options. The
release is read from a local copy given by ``--release-repo``: its detection backbone
(``downstream/det/backbones/mobilemamba.py``) or, without it, the classifier in
``model/mobilemamba/mobilemamba.py``. Its ``selective_scan_cuda_oflex`` kernel is imported when
it is on ``PYTHONPATH``, else built once from the copy's sources into ``~/.cache/mmmobilemamba`` (needs
nvcc; the sources are copied and the two CUB helpers that CUDA 13 removed are written out in the copy,
the user's tree is not changed). Nothing of the release is part of this package.
"""
import contextlib
import copy
import os
import shutil
import sys
import types
from typing import Callable, Tuple

import torch

from .benchmark_train import LEVERS, _failure
from .timing import (autocast, first_call_peak_mib, interleaved_wall_ms, kernel_ms, peak_mib, profile_cuda, reset_peak,
                     synchronize, table)

__all__ = ['build_release_trunk', 'cub13_compatible', 'load_release_kernel', 'section_trunk']

# S6 as the release defines it (model/mobilemamba/mobilemamba.py); ssm_ratio 2 as in its S6 config
RELEASE_S6 = dict(embed_dim=[192, 384, 448], depth=[1, 2, 2], global_ratio=[0.8, 0.7, 0.6],
                  local_ratio=[0.2, 0.2, 0.3], kernels=[7, 5, 3], ssm_ratio=2, drop_path=0.)


class _ClassifierTrunk(torch.nn.Module):
    """The stem and three stages of the release's classifier (its head is not run)."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        net = self.classifier
        x = net.patch_embed(x)
        outs = []
        for stage in (net.blocks1, net.blocks2, net.blocks3):
            x = stage(x)
            outs.append(x)
        return tuple(outs)


# CUDA 13's CUB no longer has these device helpers; the release's reverse scan calls them
_CUB13_REPLACEMENTS = (('cub::LaneId()', 'threadIdx.x % 32'), ('cub::CTA_SYNC()', '__syncthreads()'))
_KERNEL_SOURCES = ('cusoflex/selective_scan_oflex.cpp', 'cusoflex/selective_scan_core_fwd.cu',
                   'cusoflex/selective_scan_core_bwd.cu')
# the release's own nvcc flags (its kernels/selective_scan/setup.py), less the architecture list
_NVCC_FLAGS = ['-O3', '-U__CUDA_NO_HALF_OPERATORS__', '-U__CUDA_NO_HALF_CONVERSIONS__',
               '-U__CUDA_NO_BFLOAT16_OPERATORS__', '-U__CUDA_NO_BFLOAT16_CONVERSIONS__',
               '-U__CUDA_NO_BFLOAT162_OPERATORS__', '-U__CUDA_NO_BFLOAT162_CONVERSIONS__',
               '--expt-relaxed-constexpr', '--expt-extended-lambda', '--use_fast_math']


def cub13_compatible(source: str) -> str:
    """CUDA source with the CUB helpers that CUDA 13 removed written out: the lane index of a
    one-dimensional block and a block-wide barrier."""
    for old, new in _CUB13_REPLACEMENTS:
        source = source.replace(old, new)
    return source


def load_release_kernel(kernel_dir: str, build_dir: str):
    """The release's ``selective_scan_cuda_oflex`` module: imported if importable, else built from
    ``kernel_dir`` (the release's ``lib_mamba/kernels/selective_scan``) for the visible GPU into
    ``build_dir``, from a copy of its sources made CUDA-13 compatible."""
    try:
        import selective_scan_cuda_oflex
        return selective_scan_cuda_oflex
    except ImportError:
        pass
    from torch.utils.cpp_extension import CUDA_HOME, load
    if not torch.cuda.is_available() or CUDA_HOME is None:
        raise ImportError('the release kernel selective_scan_cuda_oflex is not importable and cannot be built '
                          'here (building needs a GPU and nvcc): build lib_mamba/kernels/selective_scan '
                          '(mode oflex) and put the .so on PYTHONPATH')
    source_dir = os.path.join(kernel_dir, 'csrc', 'selective_scan')
    if not os.path.isdir(source_dir):
        raise FileNotFoundError(f'{source_dir} does not exist: the release copy lacks its kernel sources')
    copy_dir = os.path.join(build_dir, 'csrc')
    if not os.path.isdir(copy_dir):  # copied and edited once: unchanged sources let load() reuse the build
        shutil.copytree(source_dir, copy_dir)
        header = os.path.join(copy_dir, 'reverse_scan.cuh')
        with open(header) as f:
            text = f.read()
        with open(header, 'w') as f:
            f.write(cub13_compatible(text))
    major, minor = torch.cuda.get_device_capability()
    arch = f'{major}{minor}'
    print(f'building (or reusing) the release kernel selective_scan_cuda_oflex for sm_{arch} in {build_dir} '
          '(a build takes about a minute)', flush=True)
    module = load(name='selective_scan_cuda_oflex', sources=[os.path.join(copy_dir, name) for name in _KERNEL_SOURCES],
                  extra_cflags=['-O3'], extra_include_paths=[copy_dir], build_directory=build_dir,
                  extra_cuda_cflags=_NVCC_FLAGS + ['-gencode', f'arch=compute_{arch},code=sm_{arch}'])
    sys.modules['selective_scan_cuda_oflex'] = module
    return module


def build_release_trunk(repo: str) -> torch.nn.Module:
    """The release's S6 trunk from a local copy of the release, its kernel found or built (see
    :func:`load_release_kernel`); raises with the fix when the kernel can be neither, or when the
    release's Triton code switched Triton to its interpreter."""
    repo = os.path.abspath(repo)
    det_root = os.path.join(repo, 'downstream', 'det')
    if os.path.isdir(os.path.join(det_root, 'backbones')):
        import_root, lib_mamba = det_root, os.path.join(det_root, 'backbones', 'lib_mamba')
    elif os.path.isdir(os.path.join(repo, 'model', 'mobilemamba')):
        import_root, lib_mamba = repo, os.path.join(repo, 'model', 'lib_mamba')
    else:
        raise FileNotFoundError(f'{repo} has neither downstream/det/backbones nor model/mobilemamba: '
                                'pass the root of a copy of the MobileMamba release')
    load_release_kernel(os.path.join(lib_mamba, 'kernels', 'selective_scan'),
                        os.path.join(os.path.expanduser('~'), '.cache', 'mmmobilemamba', 'release_kernel'))
    interpret_before = os.environ.get('TRITON_INTERPRET')
    sys.path.insert(0, import_root)
    if import_root == det_root:
        from backbones.lib_mamba import csms6s
        from backbones.mobilemamba import MobileMamba as ReleaseMobileMamba
        trunk = ReleaseMobileMamba(out_indices=(1, 2, 3), **RELEASE_S6)
    else:
        from model.lib_mamba import csms6s
        from model.mobilemamba.mobilemamba import MobileMamba as ReleaseMobileMamba
        trunk = _ClassifierTrunk(ReleaseMobileMamba(**RELEASE_S6))
    if os.environ.get('TRITON_INTERPRET') != interpret_before:
        os.environ.pop('TRITON_INTERPRET', None)
        raise RuntimeError('the release set TRITON_INTERPRET=1 on import (lib_mamba/csm_tritonk2.py), which '
                           'runs Triton kernels in the CPU interpreter: delete that line in your copy')
    if not csms6s.WITH_SELECTIVESCAN_OFLEX:
        raise ImportError('the release kernel selective_scan_cuda_oflex is not importable: build '
                          'lib_mamba/kernels/selective_scan (mode oflex) and put the .so on PYTHONPATH')
    return trunk


def _parse_shape(text: str) -> Tuple[int, int, int]:
    batch, height, width = (int(v) for v in text.lower().split('x'))
    return batch, height, width


def train_step_fn(trunk: torch.nn.Module, x: torch.Tensor, precision: str, device) -> Callable:
    """A closure running forward + backward of ``trunk`` on ``x`` (grads set to None first)."""
    trunk.train()

    def step():
        trunk.zero_grad(set_to_none=True)
        with autocast(device, precision):
            outs = trunk(x)
        sum(out.float().mean() for out in outs).backward()

    return step


def measure_trunk(trunk, x, precision, device, args) -> Tuple[float, float, float]:
    """(GPU ms, wall ms, peak MiB) of one training step. The first step (compilation, cuDNN
    autotuning) stays out of the peak, except for ``cuda_graph=True``, whose first step captures the
    graphs: their memory pool stays in use but is not counted as allocated afterwards."""
    step = train_step_fn(trunk, x, precision, device)
    first = first_call_peak_mib(step, device)
    reset_peak(device)
    for _ in range(args.warmup):
        step()
    wall = interleaved_wall_ms({'step': step}, device, args.iters)['step']
    mem = max(peak_mib(device), first) if getattr(trunk, 'cuda_graph', False) else peak_mib(device)
    gpu = kernel_ms(step, device)
    return gpu, wall, mem


def kernel_profile(trunk, x, precision, device, steps: int = 3, top: int = 12) -> str:
    """torch.profiler's table of the ``top`` CUDA kernels by total GPU time over ``steps`` steps."""
    averages = profile_cuda(train_step_fn(trunk, x, precision, device), device, steps)
    return averages.table(sort_by='self_device_time_total', row_limit=top, max_name_column_width=70)


# levers that are MobileMamba options (what the configs use)
_OPTION_LEVERS = {'cuda-graph': dict(cuda_graph=True), 'compile': dict(compile=True),
                  'compile+cuda-graph': dict(compile=True, cuda_graph=True)}


def lever_variant(ours: torch.nn.Module, lever: str) -> Tuple[str, torch.nn.Module, Callable]:
    """(row label, trunk, context factory) of our trunk with ``lever``: a context lever runs ``ours``
    inside its context; option levers build the same trunk with that MobileMamba option and ``ours``'s
    weights; channels-last transforms a copy of ``ours``."""
    if lever in _OPTION_LEVERS:
        from mmmobilemamba import MobileMamba
        trunk = MobileMamba(arch=ours.arch, out_indices=ours.out_indices, check_finite=False,
                            **_OPTION_LEVERS[lever])
        trunk.load_state_dict(ours.state_dict())
        return f'ours + {lever}', trunk.to(next(ours.parameters()).device), contextlib.nullcontext
    _, transform, context = LEVERS[lever]
    trunk = ours
    if transform is not None:
        holder = types.SimpleNamespace(backbone=copy.deepcopy(ours))
        transform(holder, None, None)
        trunk = holder.backbone
    return f'ours + {lever}', trunk, context or contextlib.nullcontext


def section_trunk(args, device) -> str:
    from mmmobilemamba import MobileMamba
    torch.backends.cudnn.benchmark = device.type == 'cuda'  # fixed shapes: autotuned convolutions

    # no finite-input check: it synchronises the host once per forward, and the release has none
    ours = MobileMamba(arch='S6', out_indices=(0, 1, 2), check_finite=False).to(device)
    variants = [('ours', ours, contextlib.nullcontext)]
    variants += [lever_variant(ours, lever) for lever in args.trunk_levers]
    if args.release_repo:
        try:
            variants.append(('release', build_release_trunk(args.release_repo).to(device), contextlib.nullcontext))
        except Exception as e:  # the table still gives ours
            _failure('release trunk', e)
    rows = []
    for text in args.trunk_shapes:
        batch, height, width = _parse_shape(text)
        x = torch.randn(batch, 3, height, width, device=device)
        for precision in args.trunk_precisions:
            results = {}
            for label, trunk, context in variants:
                try:
                    with context():
                        results[label] = measure_trunk(trunk, x, precision, device, args)
                except Exception as e:
                    _failure(f'{label} trunk {text} {precision}', e)
                    results[label] = (float('nan'),) * 3
                reset_peak(device)
            synchronize(device)
            release = results.get('release')
            for label, (gpu, wall, mem) in results.items():
                ratio = f'{release[0] / gpu:.2f}x / {release[1] / wall:.2f}x' if release else '-'
                rows.append([f'{height}x{width}, {batch}', precision, label, gpu, wall, mem, ratio])
                print(f'  trunk {text} {precision} {label}: GPU {gpu:.1f} ms, wall {wall:.1f} ms, peak {mem:,.0f} MiB',
                      flush=True)
    if args.trunk_profile and device.type == 'cuda':
        batch, height, width = _parse_shape(args.trunk_shapes[-1])
        x = torch.randn(batch, 3, height, width, device=device)
        for label, trunk, context in variants:
            with context():
                print(f'### kernels of {label}, {height}x{width} batch {batch} fp32, 3 steps\n'
                      f'{kernel_profile(trunk, x, "fp32", device)}', flush=True)
    return table('S6 trunk (stem + 3 stages), forward + backward in training mode; release = official code '
                 'with its CUDA kernel; GPU ms = summed kernel durations; speed-up = release ms / this ms '
                 '(GPU / wall)',
                 ['input, batch', 'precision', 'trunk', 'GPU ms', 'wall ms', 'peak MiB', 'speed-up vs release'],
                 rows)
