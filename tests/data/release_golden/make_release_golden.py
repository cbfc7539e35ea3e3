"""Regenerate the golden fixtures of ``tests/test_release_equivalence.py`` from the official release.

Builds the release's detection backbone (``downstream/det/backbones/mobilemamba.py``, with the
keyword arguments of its RetinaNet B1 config; S6 with the values of its ``CFG_MobileMamba_S6``)
from a local copy of the release, fills it with the weights of ``tests/_golden.py``, runs it on
CUDA with the release's own selective-scan kernel (``selective_scan_cuda_oflex``) and Triton
cross-scan in float32 without TF32, and writes one ``ARCH_HxW.npz`` per case of
``GOLDEN_CASES``: the input, the three stage maps (strides 16/32/64) and the SHA-256 of the
weights. Our backbone runs on the same weights on the GPU and on the CPU as a side check.

Run from the repository root on a CUDA machine; KERNEL_DIR holds the built
``selective_scan_cuda_oflex`` module (or pass ``--kernel-dir``). The release's copy needs its
nvcc-13 kernel fix and no ``TRITON_INTERPRET`` line; it imports torch, triton, timm (and so
torchvision), pywt and mmdet; fvcore may be absent::

    PYTHONPATH=.:KERNEL_DIR python tests/data/release_golden/make_release_golden.py \\
        --release-repo .gpu/release

It prints, per case and stage, the relative difference of our backbone on the GPU and on the CPU
(what the test checks) from the release. ``--release-lib model --no-write`` repeats the run with
the classification model's copy of the scan code, to see that the release agrees with itself.

Nothing of the release is copied into this repository: it is imported from ``--release-repo``.
"""
import argparse
import copy
import importlib.util
import os
import sys
import time
import types

import numpy as np
import torch

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TESTS_DIR)
from _golden import GOLDEN_CASES, golden_input, golden_path, randomise_golden  # noqa: E402

# the release's det configs build the backbone with these arguments (B1: retinanet_mobilemamba_b1_fpn_1x_coco.py)
RELEASE_COMMON = dict(img_size=224, in_chans=3, num_classes=80, stages=['s', 's', 's'],
                      global_ratio=[0.8, 0.7, 0.6], local_ratio=[0.2, 0.2, 0.3], kernels=[7, 5, 3],
                      down_ops=[['subsample', 2], ['subsample', 2], ['']], distillation=False,
                      ssm_ratio=2, forward_type='v052d', sync_bn=False, out_indices=(1, 2, 3),
                      pretrained=None, frozen_stages=-1, norm_eval=True)
RELEASE_ARCHS = {
    'S6': dict(embed_dim=[192, 384, 448], depth=[1, 2, 2], drop_path=0.0),
    'B1': dict(embed_dim=[200, 376, 448], depth=[2, 3, 2], drop_path=0.03),
}


def import_release_backbone(release_repo: str, lib: str):
    """The release's ``MobileMamba`` detection backbone class and its scan modules.

    ``lib='det'`` imports the backbone's own ``downstream/det/backbones/lib_mamba``; ``'model'``
    gives it the classification model's ``model/lib_mamba`` (which also has a CPU path).
    """
    release_repo = os.path.abspath(release_repo)
    det_dir = os.path.join(release_repo, 'downstream', 'det')
    lib_dir = os.path.join(det_dir, 'backbones', 'lib_mamba') if lib == 'det' else \
        os.path.join(release_repo, 'model', 'lib_mamba')
    # the package's __init__ also imports the FPN neck (mmcv ops); the backbone does not need it
    package = types.ModuleType('backbones')
    package.__path__ = [os.path.join(det_dir, 'backbones')]
    sys.modules['backbones'] = package
    spec = importlib.util.spec_from_file_location('backbones.lib_mamba', os.path.join(lib_dir, '__init__.py'),
                                                  submodule_search_locations=[lib_dir])
    sys.modules['backbones.lib_mamba'] = importlib.util.module_from_spec(spec)
    sys.path.insert(0, lib_dir)  # vmamba.py falls back to top-level imports of its siblings
    try:
        import fvcore.nn  # noqa: F401  (the release imports it for FLOP counting only)
    except ImportError:
        fvcore = types.ModuleType('fvcore')
        fvcore.nn = types.ModuleType('fvcore.nn')
        for name in ('FlopCountAnalysis', 'flop_count_str', 'flop_count', 'parameter_count'):
            setattr(fvcore.nn, name, None)
        sys.modules.update({'fvcore': fvcore, 'fvcore.nn': fvcore.nn})
        print('fvcore not installed: the release\'s FLOP-counting imports get placeholders')
    spec.loader.exec_module(sys.modules['backbones.lib_mamba'])
    from backbones.lib_mamba import csm_tritonk2, csms6s
    from backbones.mobilemamba import MobileMamba
    return MobileMamba, csms6s, csm_tritonk2


def check_release_paths(device: torch.device, csms6s, csm_tritonk2):
    if os.environ.get('TRITON_INTERPRET') == '1':
        sys.exit('TRITON_INTERPRET=1 is set (the release\'s csm_tritonk2.py sets it at import): '
                 'remove that line from the copy, or every Triton kernel runs in the interpreter')
    if device.type == 'cuda' and not (csms6s.WITH_SELECTIVESCAN_OFLEX and csm_tritonk2.WITH_TRITON):
        sys.exit('the release\'s CUDA path is not complete: selective_scan_cuda_oflex importable: '
                 f'{csms6s.WITH_SELECTIVESCAN_OFLEX}, triton: {csm_tritonk2.WITH_TRITON}; '
                 'build the kernel and pass its folder with --kernel-dir or PYTHONPATH')


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.double().cpu(), ref.double().cpu()
    return ((out - ref).norm() / ref.norm()).item()


def build_pair(arch: str, release_cls, device: torch.device):
    """Release and our backbone with the golden weights; returns (release, ours, sha256)."""
    from mmmobilemamba.models.backbones.mobilemamba import MobileMamba

    release = release_cls(**RELEASE_COMMON, **RELEASE_ARCHS[arch])
    release.eval()  # the release's train() override returns None
    ours = MobileMamba(arch, out_indices=(0, 1, 2)).eval()
    theirs_sd, ours_sd = release.state_dict(), ours.state_dict()
    shapes = {k: tuple(v.shape) for k, v in theirs_sd.items()}
    if shapes != {k: tuple(v.shape) for k, v in ours_sd.items()}:
        sys.exit(f'{arch}: state-dict names or shapes differ: only release '
                 f'{sorted(set(theirs_sd) - set(ours_sd))[:5]}, only ours {sorted(set(ours_sd) - set(theirs_sd))[:5]}')
    sha_release, sha_ours = randomise_golden(release), randomise_golden(ours)
    assert sha_release == sha_ours, 'same names and shapes must give the same weights'
    for name in theirs_sd:  # the Haar filters are not overwritten: they must agree by construction
        if not torch.equal(theirs_sd[name], ours_sd[name]):
            sys.exit(f'{arch}: {name} differs between the release and ours after the recipe')
    return release.to(device), ours, sha_release


def save_fixture(path: str, arch: str, x: torch.Tensor, outs, sha256: str, source: str):
    arrays = {f'stage{i}': out.detach().float().cpu().numpy() for i, out in enumerate(outs)}
    np.savez_compressed(path, input=x.numpy(), weights_sha256=np.array(sha256), arch=np.array(arch),
                        source=np.array(source), **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--release-repo', required=True, help='local copy of the official release')
    parser.add_argument('--kernel-dir', help='folder holding the built selective_scan_cuda_oflex module')
    parser.add_argument('--out-dir', default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument('--device', default='cuda', help='cuda writes fixtures; cpu only prints the diffs')
    parser.add_argument('--release-lib', choices=('det', 'model'), default='det',
                        help="SS2D from downstream/det/backbones/lib_mamba (det) or model/lib_mamba (model)")
    parser.add_argument('--no-write', action='store_true', help='print the diffs only')
    args = parser.parse_args()
    if args.kernel_dir:
        sys.path.insert(0, os.path.abspath(args.kernel_dir))
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')

    release_cls, csms6s, csm_tritonk2 = import_release_backbone(args.release_repo, args.release_lib)
    check_release_paths(device, csms6s, csm_tritonk2)
    write = device.type == 'cuda' and not args.no_write
    source = (f'official release (lib_mamba: {args.release_lib}) on {device.type}'
              f' ({torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}), torch {torch.__version__}')
    for arch in dict(GOLDEN_CASES):
        release, ours, sha256 = build_pair(arch, release_cls, device)
        ours_device = copy.deepcopy(ours).to(device) if device.type != 'cpu' else None  # ours: the test's CPU path
        for case_arch, size in GOLDEN_CASES:
            if case_arch != arch:
                continue
            x = golden_input(size)
            start = time.perf_counter()
            with torch.no_grad():
                ref = release(x.to(device))
                mine = {'cpu': ours(x)}
                if ours_device is not None:
                    mine[device.type] = ours_device(x.to(device))
            report = ' | '.join(f'stage{i} {tuple(r.shape[1:])}: ' + ', '.join(
                f'ours-{where} {relative_error(outs[i], r):.2e}' for where, outs in mine.items())
                for i, r in enumerate(ref))
            print(f'{arch} {size[0]}x{size[1]} ({time.perf_counter() - start:.1f} s): {report}', flush=True)
            if write:
                path = golden_path(arch, size, args.out_dir)
                save_fixture(path, arch, x, ref, sha256, source)
                print(f'  wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)')
    print(f'weights recipe: tests/_golden.py; device: {source}')


if __name__ == '__main__':
    main()
