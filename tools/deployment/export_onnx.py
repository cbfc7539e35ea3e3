#!/usr/bin/env python
"""Export a MobileMamba backbone or an mmdet / mmseg model to ONNX, BatchNorm folded.

    python tools/deployment/export_onnx.py S6 --out s6.onnx --dynamic --check
    python tools/deployment/export_onnx.py configs/det/retinanet_mobilemamba_s6.py \
        --out retinanet_s6.onnx --shape 512 512 --dynamic --check

A backbone graph returns the stage maps; a config's graph returns the raw head outputs
(post-processing stays outside, see mmmobilemamba/apis/onnx_export.py). ``--check`` runs ONNX
Runtime on the CPU at three input sizes (one not a multiple of 64; the export size only without
``--dynamic``) and prints ``max abs diff: X`` against PyTorch as its last line. Without
``--checkpoint`` the model has random weights and its norms are randomised (seeded): a fresh
MobileMamba block's residual branches add zero, which would make the check meaningless.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('target', help='a MobileMamba arch (T2, T4, S6, B1, B2, B4) or an mmdet/mmseg config')
    p.add_argument('--out', required=True, help='the .onnx file to write')
    p.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                   help='export (and first check) size; default: the arch\'s image size or the config\'s test size')
    p.add_argument('--dynamic', action='store_true', help='make the batch, H and W axes dynamic')
    p.add_argument('--check', action='store_true', help='compare ONNX Runtime (CPU) with PyTorch')
    p.add_argument('--checkpoint', help='weights to export (state_dict, loaded with weights_only=True)')
    p.add_argument('--seed', type=int, default=0, help='seed of the randomised norms (no --checkpoint)')
    p.add_argument('--opset', type=int, default=17)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmmobilemamba  # noqa: F401  (registers the modules)
    from mmmobilemamba.apis import onnx_export as ox

    try:
        target = ox.load_target(args.target, args.checkpoint,
                                randomize_seed=None if args.checkpoint else args.seed)
        shape = tuple(args.shape) if args.shape else target.default_shape
        ox.export_onnx(target, args.out, shape, dynamic=args.dynamic, opset=args.opset)
        print(f'wrote {args.out}: {target.name}, BN folded, input (batch, 3, H, W) '
              f'{"dynamic" if args.dynamic else "fixed at " + ox.describe_sizes(shape)}')
        for note in target.notes:
            print(note)
        if args.check:
            shapes = ox.check_shapes(shape) if args.dynamic else [shape]
            worst = ox.check_onnx(target, args.out, shapes)
            print(f'max abs diff: {worst:.3g}')
    except ox.ExportError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
