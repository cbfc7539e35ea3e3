"""Effective receptive field (ERF) of a backbone stage, as a heat map (the paper's Figure 1).

For every input image, the output feature map of the chosen stage is taken, its central
pixel is summed over channels, and the gradient of that scalar with respect to the input
image is computed. The absolute gradients, summed over the colour channels, are accumulated
over all images. The map is normalised to a maximum of 1 and drawn on a log scale
(``log10(1 + s * m) / log10(1 + s)`` with ``s = --log-scale``), so faint long-range
contributions stay visible.

Usage (from the repository root)::

    python tools/analysis_tools/visualize_erf.py --arch S6 --stage 2                       # toy images or noise
    python tools/analysis_tools/visualize_erf.py --arch S6 --stage 2 --checkpoint pretrained/mobilemamba_s6.pth
    python tools/analysis_tools/visualize_erf.py --config mmdet::retinanet/retinanet_r50_fpn_1x_coco.py --stage 3
    python tools/analysis_tools/visualize_erf.py --random 8 --out erf_compare.png \\
        --model S6@2 --model mmdet::retinanet/retinanet_r50_fpn_1x_coco.py@3   # side by side

Inputs: ``--images DIR`` (jpg/png files, resized on the short side and centre-cropped to
``--img-size``, normalised with the ImageNet mean/std that all configs use), ``--random N``
(N standard-normal images), else the toy COCO images (``tools/dataset_converters/make_toy_data.py``) when they
exist, else 8 random images. ``--num-images`` caps the number of images read.

Models: ``--arch`` builds ``MobileMamba(arch=...)``; ``--config`` builds
``cfg.model.backbone`` of an mmdet / mmseg config (``mmdet::`` / ``mmseg::`` paths to their
stock configs work) through that package's registry, with the config's ``init_cfg`` and
``pretrained`` dropped (weights are only loaded from ``--checkpoint``: a backbone state dict,
or a whole detector / segmentor checkpoint whose ``backbone.*`` entries are used; loaded strictly,
with ``torch.load(weights_only=True)``, by the package's loader). Without a
checkpoint the weights are random (the ERF of the architecture, not of a trained network;
see ``--init``).
``--stage`` is the backbone's stage index (MobileMamba 0/1/2 = strides 16/32/64, ResNet
0..3 = strides 4..32); by default the last output of the backbone. ``--model SPEC`` (repeat
for a comparison figure, one panel per model) takes ``SOURCE[@STAGE[@CHECKPOINT]]`` where
SOURCE is a MobileMamba arch name or a config path.

Printed summary per model (also written to ``--json``): for t in 20/50/90 %, ``area@t`` is
the smallest fraction of the input pixels (largest gradients first) that holds t of the total
gradient mass, and ``square@t`` the area fraction of the smallest square centred on the
output pixel's location that holds t of the mass. Larger = the stage sees more of the image.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp

import numpy as np
import torch

from .config import ROOT

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
THRESHOLDS = (0.2, 0.5, 0.9)
TOY_IMAGES = ('data/toy/coco/train2017', 'data/toy/coco/val2017')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
ARCHS = ('T2', 'T4', 'S6', 'B1', 'B2', 'B4')


# --------------------------------------------------------------------------------- model specs
def parse_spec(spec, stage=None, checkpoint=None):
    """``SOURCE[@STAGE[@CHECKPOINT]]`` -> dict(source, stage, checkpoint, label)."""
    parts = spec.split('@')
    source = parts[0]
    if len(parts) > 1 and parts[1] != '':
        stage = int(parts[1])
    if len(parts) > 2 and parts[2] != '':
        checkpoint = '@'.join(parts[2:])
    is_arch = source.upper() in ARCHS
    name = f'MobileMamba-{source.upper()}' if is_arch else osp.splitext(osp.basename(source.split('::')[-1]))[0]
    label = f'{name} ' + (f'stage {stage}' if stage is not None else 'last stage')
    return dict(source=source, stage=stage, checkpoint=checkpoint, label=label, is_arch=is_arch)


def _strip_weights(cfg_dict):
    cfg_dict = dict(cfg_dict)
    cfg_dict.pop('init_cfg', None)
    cfg_dict.pop('pretrained', None)
    return cfg_dict


def _build_config_backbone(path, stage):
    from mmengine.registry import MODELS

    from .config import load_config, register_modules
    cfg = load_config(path)
    scope = cfg.get('default_scope', 'mmdet')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f'{path}: default_scope {scope!r} is not mmdet or mmseg')
    register_modules(scope[2:])
    model_cfg = cfg.get('model', {})
    if 'backbone' not in model_cfg:
        raise ValueError(f'{path}: cfg.model has no backbone')
    bb_cfg = _strip_weights(model_cfg['backbone'].to_dict() if hasattr(model_cfg['backbone'], 'to_dict')
                            else model_cfg['backbone'])
    if stage is not None:
        try:  # most mmdet/mmseg backbones take out_indices: return only that stage
            return MODELS.build(dict(bb_cfg, out_indices=(stage,))), None
        except TypeError:  # no out_indices argument: pick the stage from the full output
            pass
    return MODELS.build(bb_cfg), stage


def build_backbone(source, stage=None):
    """Return (module, pick) where ``pick`` selects the stage's map from the module's output.

    ``pick`` is None when the module was built to return that stage only (or the last output
    is wanted); otherwise an index into the backbone's output tuple.
    """
    if source.upper() in ARCHS:
        from mmmobilemamba import MobileMamba
        return MobileMamba(arch=source, out_indices=(2 if stage is None else stage,)), None
    return _build_config_backbone(source, stage)


def load_checkpoint(model, path):
    """Load a backbone state dict, or the ``backbone.*`` part of a whole-model checkpoint, strictly
    and with ``torch.load(weights_only=True)`` (``mmmobilemamba.utils.checkpoint.load_pretrained``)."""
    from mmmobilemamba.utils.checkpoint import load_pretrained
    load_pretrained(model, path)


def random_init(model, mode='unit-norm'):
    """Initialise a backbone that gets no checkpoint.

    ``default``: the framework's own initialisation (``init_weights()``, as training from
    scratch starts), in which both MobileMamba and mmdet's ResNet zero the last norm layer of
    their residual branches, so at init every branch is switched off and only the shortcut
    path reaches the input. ``unit-norm``: the same, then every norm layer's weight set to 1
    and bias to 0, so all branches (the Mamba mixer included) contribute: the ERF of the
    architecture with random convolution weights.
    """
    import logging

    from mmengine.logging import MMLogger
    from torch.nn.modules.batchnorm import _BatchNorm
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    if mode == 'unit-norm':
        for m in model.modules():
            if isinstance(m, (_BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)) and m.weight is not None:
                with torch.no_grad():
                    m.weight.fill_(1.0)
                    m.bias.zero_()
    elif mode != 'default':
        raise ValueError(f'unknown init mode {mode!r}')
    return model


def stage_output(model, pick, x):
    out = model(x)
    if isinstance(out, torch.Tensor):
        return out
    out = list(out)
    return out[-1] if pick is None else out[pick]


# --------------------------------------------------------------------------------------- inputs
def _read_image(path, size):
    import mmcv
    img = mmcv.imread(path, channel_order='rgb')
    if img is None:
        raise ValueError(f'cannot read image {path}')
    h, w = img.shape[:2]
    scale = size / min(h, w)
    img = mmcv.imresize(img, (max(size, round(w * scale)), max(size, round(h * scale))))
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    img = img[top:top + size, left:left + size].astype(np.float32)
    img = (img - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(img.transpose(2, 0, 1).copy())


def list_images(folder, limit=None):
    files = sorted(f for f in glob.glob(osp.join(folder, '**', '*'), recursive=True)
                   if f.lower().endswith(IMAGE_EXTS))
    return files[:limit] if limit else files


def input_batches(size, batch_size, images=None, random=None, num_images=None, seed=0):
    """Yield (B, 3, size, size) tensors from an image folder, or standard-normal noise."""
    if random:
        gen = torch.Generator().manual_seed(seed)
        for start in range(0, random, batch_size):
            yield torch.randn(min(batch_size, random - start), 3, size, size, generator=gen)
        return
    files = list_images(images, num_images)
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTS)}) under {images}')
    for start in range(0, len(files), batch_size):
        yield torch.stack([_read_image(f, size) for f in files[start:start + batch_size]])


def default_images():
    for folder in TOY_IMAGES:
        if list_images(osp.join(ROOT, folder), 1):
            return osp.join(ROOT, folder)
    return None


# ------------------------------------------------------------------------------------------ ERF
def compute_erf(model, batches, pick=None):
    """Accumulated |d(centre pixel, summed over channels) / d(input)|, summed over RGB: (H, W)."""
    model.eval()
    total = None
    count = 0
    for x in batches:
        x = x.clone().requires_grad_(True)
        feat = stage_output(model, pick, x)
        h, w = feat.shape[-2:]
        target = feat[:, :, h // 2, w // 2].sum()
        (grad,) = torch.autograd.grad(target, x)
        g = grad.abs().sum(dim=(0, 1)).double()
        total = g if total is None else total + g
        count += x.shape[0]
    if total is None:
        raise ValueError('no input images')
    return total.numpy(), count


def centre_of(erf):
    """Input location of the output pixel (the gradient's centre of mass)."""
    ys, xs = np.indices(erf.shape)
    mass = erf.sum()
    if mass <= 0:
        return (erf.shape[0] - 1) / 2, (erf.shape[1] - 1) / 2
    return float((erf * ys).sum() / mass), float((erf * xs).sum() / mass)


def summarize(erf, thresholds=THRESHOLDS):
    """Area fractions of the input that hold each fraction of the gradient mass."""
    flat = np.sort(erf.ravel())[::-1]
    total = flat.sum()
    n = flat.size
    out = dict(pixels=n, total=float(total), nonzero=float((flat > 0).mean()))
    if total <= 0:
        for t in thresholds:
            out[f'area@{int(t * 100)}'] = 0.0
            out[f'square@{int(t * 100)}'] = 0.0
        return out
    cum = np.cumsum(flat) / total
    # centred squares: mass inside the square of half-side r around the centre, r = 0, 1, ...
    cy, cx = centre_of(erf)
    ys, xs = np.indices(erf.shape)
    cheb = np.maximum(np.abs(ys - round(cy)), np.abs(xs - round(cx)))
    max_r = int(cheb.max())
    ring_mass = np.bincount(cheb.ravel(), weights=erf.ravel(), minlength=max_r + 1)
    ring_area = np.bincount(cheb.ravel(), minlength=max_r + 1)
    sq_mass = np.cumsum(ring_mass) / total
    sq_area = np.cumsum(ring_area) / n
    for t in thresholds:
        k = int(np.searchsorted(cum, t - 1e-12)) + 1
        out[f'area@{int(t * 100)}'] = min(k, n) / n
        r = int(np.searchsorted(sq_mass, t - 1e-12))
        out[f'square@{int(t * 100)}'] = float(sq_area[min(r, max_r)])
    out['centre'] = (round(cy, 1), round(cx, 1))
    return out


def display_map(erf, log_scale=1000.0):
    """Normalise to max 1, then log scale into [0, 1]."""
    m = erf / erf.max() if erf.max() > 0 else erf
    return np.log10(1 + log_scale * m) / math.log10(1 + log_scale)


def save_figure(maps, labels, out, log_scale=1000.0, cmap='RdYlGn_r', summaries=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.6), squeeze=False)
    im = None
    for ax, erf, label, summary in zip(axes[0], maps, labels, summaries or [None] * n):
        im = ax.imshow(display_map(erf, log_scale), cmap=cmap, vmin=0, vmax=1, interpolation='nearest')
        title = label
        if summary:
            title += f'\n50% mass in {100 * summary["area@50"]:.1f}% of the area'
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.025, pad=0.02,
                 label=f'log10(1+{log_scale:g}·g/max g) (normalised)')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches='tight')
    plt.close(fig)


def format_summary(label, s, images):
    keys = [f'{kind}@{int(t * 100)}' for kind in ('area', 'square') for t in THRESHOLDS]
    vals = '  '.join(f'{k}={100 * s[k]:5.1f}%' for k in keys)
    return f'{label:<40} ({images} images)  {vals}'


# ----------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    src = p.add_mutually_exclusive_group()
    src.add_argument('--arch', type=str.upper, choices=ARCHS, help='MobileMamba variant')
    src.add_argument('--config', help='mmdet / mmseg config whose model.backbone is used')
    p.add_argument('--model', action='append', default=[], metavar='SPEC',
                   help='SOURCE[@STAGE[@CHECKPOINT]] (repeatable; all go into one figure)')
    p.add_argument('--stage', type=int, help='stage index (default: the last output)')
    p.add_argument('--checkpoint', help='weights for --arch / --config')
    p.add_argument('--trust-checkpoint', action='append', default=[], metavar='FILE',
                   help='a checkpoint you trust: if it holds objects beyond weights (refused otherwise: '
                   'unpickling them can run code), it is unpickled in full')
    inp = p.add_mutually_exclusive_group()
    inp.add_argument('--images', help='folder of images (default: the toy COCO images if present)')
    inp.add_argument('--random', type=int, metavar='N', help='use N standard-normal images')
    p.add_argument('--num-images', type=int, default=50, help='at most this many images from --images')
    p.add_argument('--img-size', type=int, default=512, help='input size (the paper uses 1024)')
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--log-scale', type=float, default=1000.0, help='s in log10(1 + s*m)')
    p.add_argument('--cmap', default='RdYlGn_r', help='matplotlib colour map')
    p.add_argument('--init', choices=['unit-norm', 'default'], default='unit-norm',
                   help='weights without a checkpoint: unit-norm (all residual branches active, '
                   'default) or default (the framework init; zero-init residual branches are off)')
    p.add_argument('--seed', type=int, default=0, help='seed for random weights and noise inputs')
    p.add_argument('--out', default='work_dirs/erf/erf.png', help='output PNG')
    p.add_argument('--save-npy', action='store_true', help='also save each raw map as OUT_<i>.npy')
    p.add_argument('--json', help='write the summaries to this JSON file')
    args = p.parse_args(argv)
    if not (args.arch or args.config or args.model):
        p.error('give --arch, --config or --model')
    if (args.arch or args.config) and args.model:
        p.error('--model cannot be combined with --arch / --config (use --model for every panel)')
    return args


def main(argv=None):
    from mmmobilemamba.utils.checkpoint import CheckpointError, trust_checkpoint
    args = parse_args(argv)
    for path in args.trust_checkpoint:
        trust_checkpoint(path)
    try:
        return run(args)
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from None


def run(args):
    if args.arch or args.config:
        specs = [parse_spec(args.arch or args.config, args.stage, args.checkpoint)]
    else:
        specs = [parse_spec(s, args.stage) for s in args.model]

    images = args.images
    random = args.random
    if not images and not random:
        images = default_images()
        if images is None:
            random = 8
            print('no --images and no toy data (tools/dataset_converters/make_toy_data.py): using 8 random images', flush=True)
    source = f'{random} random images' if random else f'images in {images}'
    print(f'ERF at {args.img_size}x{args.img_size} px, {source}', flush=True)

    maps, labels, summaries = [], [], []
    for i, spec in enumerate(specs):
        torch.manual_seed(args.seed)
        model, pick = build_backbone(spec['source'], spec['stage'])
        if spec['checkpoint']:
            load_checkpoint(model, spec['checkpoint'])
        else:
            random_init(model, args.init)
        batches = input_batches(args.img_size, args.batch_size, images=images, random=random,
                                num_images=args.num_images, seed=args.seed)
        erf, n = compute_erf(model, batches, pick)
        summary = summarize(erf)
        weights = spec['checkpoint'] or f'random init ({args.init})'
        summary.update(label=spec['label'], images=n, img_size=args.img_size, weights=weights)
        print(format_summary(spec['label'], summary, n), flush=True)
        maps.append(erf)
        labels.append(spec['label'] + ('' if spec['checkpoint'] else f'\nrandom init, {args.init}'))
        summaries.append(summary)
        if args.save_npy:
            np.save(f'{osp.splitext(args.out)[0]}_{i}.npy', erf)
        del model

    save_figure(maps, labels, args.out, args.log_scale, args.cmap, summaries)
    print(f'heat map written to {args.out}', flush=True)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(summaries, f, indent=1)
    return summaries

