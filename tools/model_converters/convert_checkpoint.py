#!/usr/bin/env python
"""Convert an official MobileMamba checkpoint into a verified mmengine backbone checkpoint.

    python tools/model_converters/convert_checkpoint.py mobilemamba_s6.pth pretrained/mobilemamba_s6.pth --arch S6

Input: the release's ImageNet file ({'model': ...}, distilled or not), a release detector /
segmentor checkpoint (keys under ``backbone.``), or any state_dict. Output: ``{'state_dict':
backbone weights, 'meta': {...}}`` whose keys are checked against ``MobileMamba(arch)``, so the
result loads with ``init_cfg=dict(type='Pretrained', checkpoint=OUT)``. ``--prefix backbone.``
writes detector-style keys instead (for ``load_from``).

The input's SHA-256 is printed first: compare it with the one its publisher gives. The input is read
with ``torch.load(weights_only=True)``; a file holding other objects is refused unless named with
``--trust-checkpoint SRC``. The output holds tensors and strings only.
"""
import argparse
import os

import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.utils.checkpoint import (CheckpointError, check_state_dict, download_checkpoint,
                                            extract_state_dict, file_sha256, read_checkpoint, trust_checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output .pth path')
    parser.add_argument('--arch', required=True, choices=sorted(MobileMamba.arch_settings),
                        help='variant the weights belong to (checked)')
    parser.add_argument('--src-prefix', default=None,
                        help="key prefix of the backbone inside src (default: auto, 'backbone.' if present)")
    parser.add_argument('--prefix', default='', help="prefix to add to every output key, e.g. 'backbone.'")
    parser.add_argument('--trust-checkpoint', action='append', default=[], metavar='FILE',
                        help='a file you trust: if it holds objects beyond weights (refused otherwise: '
                        'unpickling them can run code), it is unpickled in full')
    return parser.parse_args(argv)


def convert(args):
    for path in args.trust_checkpoint:
        trust_checkpoint(path)
    src = download_checkpoint(args.src) if '://' in args.src else args.src
    if os.path.isfile(src):
        print(f'SHA-256 of {args.src}: {file_sha256(src)}', flush=True)
    state = extract_state_dict(read_checkpoint(src), args.src_prefix)
    check_state_dict(MobileMamba(args.arch), state, source=f'checkpoint {args.src!r}')
    out = {'state_dict': {args.prefix + k: v.clone() for k, v in state.items()},
           'meta': dict(arch=args.arch, source=os.path.basename(args.src), converter='mmmobilemamba')}
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    torch.save(out, args.dst)
    print(f'wrote {len(state)} backbone tensors of MobileMamba-{args.arch} to {args.dst}')


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from None


if __name__ == '__main__':
    main()
