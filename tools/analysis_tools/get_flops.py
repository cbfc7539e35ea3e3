#!/usr/bin/env python
"""Print parameters and FLOPs of MobileMamba classifiers or of whole detectors / segmentors.

Usage::

    python tools/analysis_tools/get_flops.py --arch S6             # ImageNet classifier at its resolution
    python tools/analysis_tools/get_flops.py --all-archs           # table of all variants vs. the paper
    python tools/analysis_tools/get_flops.py CONFIG [--shape H W]  # whole model of an mmdet/mmseg config

FLOPs follow the paper's (fvcore) convention: one multiply-add = one FLOP, element-wise ops
not counted, the selective scan added analytically as in the release, and for classifiers
BatchNorm folded into the convolutions. Default shapes (``mmmobilemamba.apis.config.input_shape``,
also the speed benchmark's): detectors 1280x800 (H=800, W=1280), SSD-style configs their
``input_size``, segmentors their ``crop_size`` (512x512).
"""
import argparse

from mmengine.config import DictAction

from mmmobilemamba.apis.flops import config_complexity
from mmmobilemamba.utils.complexity import PAPER_IMAGENET, classifier_complexity, format_count


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='mmdet / mmseg config file')
    parser.add_argument('--arch', help='classifier variant: ' + ', '.join(PAPER_IMAGENET))
    parser.add_argument('--all-archs', action='store_true', help='table of all classifier variants')
    parser.add_argument('--img-size', type=int, help='classifier resolution (default: the variant\'s)')
    parser.add_argument('--shape', type=int, nargs='+', metavar='N',
                        help='input H W (or one number for a square) for CONFIG')
    parser.add_argument('--no-fuse-bn', action='store_true',
                        help='count classifier BatchNorms instead of folding them (paper folds)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config settings, as in mmdet/mmseg tools')
    args = parser.parse_args(argv)
    if sum(bool(x) for x in (args.config, args.arch, args.all_archs)) != 1:
        parser.error('give exactly one of CONFIG, --arch or --all-archs')
    if args.shape and len(args.shape) not in (1, 2):
        parser.error('--shape takes H W or one size')
    return args


def _pct(ours, paper):
    return f'{100 * (ours - paper) / paper:+.1f}%'


def classifier_rows(archs, img_size=None, fuse_bn=True):
    header = (f'{"arch":<5}{"res":>5}{"FLOPs":>11}{"paper":>9}{"diff":>8}'
              f'{"params":>11}{"paper":>8}{"diff":>8}{"scan FLOPs":>12}')
    lines = [header, '-' * len(header)]
    for arch in archs:
        r = classifier_complexity(arch, img_size=img_size, fuse_bn=fuse_bn)
        pf, pp, _ = PAPER_IMAGENET[r['arch']]
        same_res = img_size in (None, PAPER_IMAGENET[r['arch']][2])
        lines.append(f'{r["arch"]:<5}{r["img_size"]:>5}{format_count(r["flops"]):>11}'
                     f'{format_count(pf):>9}{_pct(r["flops"], pf) if same_res else "":>8}'
                     f'{format_count(r["params"]):>11}{format_count(pp):>8}{_pct(r["params"], pp):>8}'
                     f'{format_count(r["scan_flops"]):>12}')
    return lines


def main(argv=None):
    args = parse_args(argv)
    if args.config:
        shape = None
        if args.shape:
            shape = (args.shape[0], args.shape[-1])
        r = config_complexity(args.config, shape=shape, cfg_options=args.cfg_options)
        h, w = r['shape']
        print(f'config:   {args.config}')
        print(f'model:    {r["model_type"]}')
        print(f'input:    1x3x{h}x{w} (H x W)')
        print(f'FLOPs:    {format_count(r["flops"])} (selective scan {format_count(r["scan_flops"])})')
        print(f'params:   {format_count(r["params"])} (backbone {format_count(r["backbone_params"])}, '
              f'neck {format_count(r["neck_params"])})')
        return r
    archs = list(PAPER_IMAGENET) if args.all_archs else [args.arch]
    for line in classifier_rows(archs, args.img_size, fuse_bn=not args.no_fuse_bn):
        print(line)
    print('FLOPs: multiply-adds, fvcore convention, BN folded' + (' (not folded)' if args.no_fuse_bn else '')
          + '; params: as trained (BN not folded).')


if __name__ == '__main__':
    main()
