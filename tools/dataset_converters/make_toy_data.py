#!/usr/bin/env python
"""Write a tiny, deterministic detection + segmentation dataset of drawn shapes (no download).

Layout (the same as real COCO 2017 / ADE20K, so the stock configs read it with only
``data_root`` changed)::

    OUT/coco/annotations/instances_train2017.json, instances_val2017.json
    OUT/coco/train2017/*.jpg, OUT/coco/val2017/*.jpg
    OUT/ade/ADEChallengeData2016/images/{training,validation}/*.jpg
    OUT/ade/ADEChallengeData2016/annotations/{training,validation}/*.png

Each image shows 2-4 non-overlapping shapes on a noisy gradient background:

=========  ====================  ==============================  ============================
shape      COCO category (id)    ADE20K class (value in PNG)     colour family
=========  ====================  ==============================  ============================
circle     'sports ball' (37)    'ball' (120)                    red-ish
rectangle  'tv' (72)             'television receiver' (90)      blue-ish
triangle   'kite' (38)           'tent' (115)                    green-ish
=========  ====================  ==============================  ============================

COCO annotations carry boxes *and* polygon masks (Mask R-CNN trains on them); the annotation
files list all 80 COCO categories with their official ids, so 80-class COCO configs and
mmdet's CocoMetric work unchanged. ADE20K label maps use 0 for unlabelled pixels (ignored
with ``reduce_zero_label=True``, as in the real dataset), 4 ('floor') for a band at the
bottom of every image and the class values above for the shapes.

    python tools/dataset_converters/make_toy_data.py                     # -> data/toy/{coco,ade}
    python tools/dataset_converters/make_toy_data.py --out /tmp/toy --train 8 --val 4 --min-size 128 --max-size 160
    python tools/dataset_converters/make_toy_data.py --realistic         # -> data/toy/realistic/{coco,ade}

``--realistic`` is a set to learn from rather than to smoke-test with: 2000 training and 200
validation images of 640-1333 px, each with 4-16 shapes whose sizes spread from about 16 px to
60% of the short side (COCO's small, medium and large objects) and which overlap: later shapes
occlude earlier ones, and each object's box, area and polygons are those of its visible part
(objects hidden down to fewer than 16 visible pixels are left out of the annotations).
"""
import argparse
import functools
import json
import math
import multiprocessing
import os
import sys
import time

import cv2
import numpy as np

# The 80 COCO categories with their official (non-contiguous) ids, in mmdet's class order.
COCO_NAMES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich',
    'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
    'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush')
COCO_IDS = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
assert len(COCO_NAMES) == len(COCO_IDS) == 80

# shape -> (COCO name, ADE20K value (1-based class index), base BGR colour)
SHAPES = {
    'circle': ('sports ball', 120, (40, 40, 210)),
    'rectangle': ('tv', 90, (200, 60, 30)),
    'triangle': ('kite', 115, (40, 180, 40)),
}
ADE_FLOOR = 4  # 'floor'
COCO_ID = dict(zip(COCO_NAMES, COCO_IDS))

TOY_DEFAULTS = dict(out='data/toy', train=16, val=8, min_size=256, max_size=320)
REALISTIC_DEFAULTS = dict(out='data/toy/realistic', train=2000, val=200, min_size=640, max_size=1333)
# Shapes per image: how many (randint bounds), their 'radius' as a fraction of the short side
# (uniform, or log-uniform to spread the sizes), and whether they may overlap.
SPARSE = dict(count=(2, 5), radius=(0.09, 0.2), log_radius=False, overlap=False)
CROWDED = dict(count=(4, 17), radius=(0.012, 0.3), log_radius=True, overlap=True)
MIN_VISIBLE_PIXELS = 16


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--realistic', action='store_true',
                   help='many overlapping objects of several sizes (and the --realistic defaults below)')

    def option(flag, key, text, **kw):
        p.add_argument(flag, help=f'{text} (default {TOY_DEFAULTS[key]}; --realistic: {REALISTIC_DEFAULTS[key]})',
                       default=argparse.SUPPRESS, **kw)
    option('--out', 'out', 'output directory (gets coco/ and ade/)')
    option('--train', 'train', 'training images per dataset', type=int)
    option('--val', 'val', 'validation images per dataset', type=int)
    option('--min-size', 'min_size', 'smallest image side (px)', type=int)
    option('--max-size', 'max_size', 'largest image side (px)', type=int)
    p.add_argument('--seed', type=int, default=0, help='random seed (same seed -> same files; default 0)')
    p.add_argument('--only', choices=['coco', 'ade'], help='write only one of the two datasets')
    p.add_argument('--workers', type=int, default=os.cpu_count(),
                   help='--realistic: processes drawing the images (default: all cores)')
    args = p.parse_args(argv)
    for key, value in (REALISTIC_DEFAULTS if args.realistic else TOY_DEFAULTS).items():
        if not hasattr(args, key):
            setattr(args, key, value)
    args.layout = CROWDED if args.realistic else SPARSE
    if args.train < 1 or args.val < 1:
        p.error('--train and --val must be >= 1')
    if not 64 <= args.min_size <= args.max_size:
        p.error('need 64 <= --min-size <= --max-size (MobileMamba needs images of at least 64 px)')
    return args


def shape_polygon(kind, cx, cy, r, rng):
    """Polygon (N x 2 float array, image coordinates) of a shape of 'radius' r around (cx, cy)."""
    if kind == 'circle':
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
    if kind == 'rectangle':
        w, h = r * rng.uniform(0.7, 1.0), r * rng.uniform(0.5, 0.9)
        return np.array([[cx - w, cy - h], [cx + w, cy - h], [cx + w, cy + h], [cx - w, cy + h]])
    a = rng.uniform(0, 2 * math.pi)  # triangle: equilateral, random rotation
    t = a + np.array([0, 2 * math.pi / 3, 4 * math.pi / 3])
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _radius(rng, h, w, layout):
    low, high = layout['radius']
    if layout['log_radius']:
        return math.exp(rng.uniform(math.log(low), math.log(high))) * min(h, w)
    return rng.uniform(low, high) * min(h, w)


def draw_image(rng, h, w, layout=SPARSE):
    """Return (BGR image, list of (kind, polygon as int32 N x 2 array)); shapes drawn in list order.

    ``layout`` (SPARSE or CROWDED): how many shapes, their sizes, and whether they may overlap.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(90, 170, size=3)
    slope = rng.uniform(-0.15, 0.15, size=(3, 2))
    img = np.stack([base[c] + slope[c, 0] * xx + slope[c, 1] * yy for c in range(3)], -1)
    img += rng.normal(0, 8, size=img.shape)
    shapes, boxes = [], []
    for _ in range(rng.randint(*layout['count'])):
        for _attempt in range(20):  # rejection sampling, unless overlaps are allowed
            kind = list(SHAPES)[rng.randint(len(SHAPES))]
            r = _radius(rng, h, w, layout)
            r = max(r, 18.0 if not layout['overlap'] else 8.0)  # SPARSE: boxes of at least ~32 px
            r = min(r, (h * 0.8 - 4) / 2, (w - 4) / 2)
            cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h * 0.8 - r)
            box = (cx - r - 3, cy - r - 3, cx + r + 3, cy + r + 3)
            if layout['overlap'] or all(box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1]
                                        for b in boxes):
                break
        else:
            continue
        boxes.append(box)
        poly = np.round(shape_polygon(kind, cx, cy, r, rng)).astype(np.int32)
        poly[:, 0] = poly[:, 0].clip(0, w - 1)
        poly[:, 1] = poly[:, 1].clip(0, h - 1)
        colour = np.clip(np.array(SHAPES[kind][2]) + rng.randint(-30, 31, size=3), 0, 255)
        cv2.fillPoly(img, [poly], colour.tolist())
        shapes.append((kind, poly))
    img = np.clip(img + rng.normal(0, 4, size=img.shape), 0, 255).astype(np.uint8)
    return img, shapes


def image_size(rng, args):
    return rng.randint(args.min_size, args.max_size + 1), rng.randint(args.min_size, args.max_size + 1)


def whole_objects(shapes):
    """(kind, COCO bbox, area, [polygon]) of shapes that do not overlap."""
    out = []
    for kind, poly in shapes:
        x0, y0 = poly.min(0)
        x1, y1 = poly.max(0)
        out.append((kind, [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)],
                    float(abs(cv2.contourArea(poly.astype(np.float32)))), [poly]))
    return out


def visible_objects(shapes, h, w):
    """(kind, COCO bbox, area, polygons) of the visible part of each shape, later shapes on top;
    shapes with fewer than MIN_VISIBLE_PIXELS visible pixels are left out."""
    owner = np.zeros((h, w), np.int32)  # index + 1 of the shape that shows at each pixel
    for index, (_, poly) in enumerate(shapes):
        cv2.fillPoly(owner, [poly], index + 1)
    out = []
    for index, (kind, _) in enumerate(shapes):
        mask = (owner == index + 1).astype(np.uint8)
        area = int(mask.sum())
        if area < MIN_VISIBLE_PIXELS:
            continue
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        polygons = [c.reshape(-1, 2) for c in contours if len(c) >= 3]
        if not polygons:
            continue
        ys, xs = np.nonzero(mask)
        bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
        out.append((kind, bbox, float(area), polygons))
    return out


def map_images(args, count, salt, draw):
    """[draw(rng, k) for k in range(count)]: one random stream per split, in order (the default set),
    or, with --realistic, one stream per image and the images drawn by --workers processes."""
    if not args.realistic:
        rng = np.random.RandomState(args.seed * 1000 + salt)
        return [draw(rng, k) for k in range(count)]
    with multiprocessing.Pool(args.workers) as pool:
        return pool.map(functools.partial(_seeded, draw, args.seed, salt), range(count), chunksize=4)


def _seeded(draw, seed, salt, k):
    return draw(np.random.RandomState([seed, salt, k]), k)


def _coco_image(args, img_dir, offset, rng, k):
    """Write one COCO image; return (image record, objects)."""
    h, w = image_size(rng, args)
    img, shapes = draw_image(rng, h, w, args.layout)
    img_id = offset + k + 1
    name = f'{img_id:012d}.jpg'
    cv2.imwrite(os.path.join(img_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    objects = visible_objects(shapes, h, w) if args.layout['overlap'] else whole_objects(shapes)
    return dict(id=img_id, file_name=name, height=h, width=w), objects


def write_coco(root, args):
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    categories = [dict(id=i, name=n, supercategory='toy') for n, i in zip(COCO_NAMES, COCO_IDS)]
    ann_id = 1
    for split, count, offset in (('train2017', args.train, 0), ('val2017', args.val, 100000)):
        img_dir = os.path.join(root, split)
        os.makedirs(img_dir, exist_ok=True)
        drawn = map_images(args, count, offset // 1000 + 1,
                           functools.partial(_coco_image, args, img_dir, offset))
        images, annotations = [], []
        for image, objects in drawn:
            images.append(image)
            for kind, bbox, area, polygons in objects:
                annotations.append(dict(
                    id=ann_id, image_id=image['id'], category_id=COCO_ID[SHAPES[kind][0]], bbox=bbox,
                    area=area, segmentation=[p.astype(float).flatten().tolist() for p in polygons],
                    iscrowd=0))
                ann_id += 1
        with open(os.path.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(info=dict(description='mmmobilemamba toy COCO (drawn shapes)'),
                           licenses=[], images=images, annotations=annotations,
                           categories=categories), f)
        print(f'  {root}/{split}: {count} images, {len(annotations)} objects')


def _ade_image(args, img_dir, ann_dir, split, rng, k):
    """Write one ADE20K image and its label map."""
    h, w = image_size(rng, args)
    img, shapes = draw_image(rng, h, w, args.layout)
    label = np.zeros((h, w), np.uint8)  # 0: unlabelled (ignored by reduce_zero_label)
    floor = int(h * 0.85)
    img[floor:] = np.clip(img[floor:].astype(np.int16) // 2 + 60, 0, 255).astype(np.uint8)
    label[floor:] = ADE_FLOOR
    for kind, poly in shapes:  # in drawing order: occluded parts get the occluder's class
        cv2.fillPoly(label, [poly], int(SHAPES[kind][1]))
    stem = f'ADE_{"train" if split == "training" else "val"}_{k + 1:08d}'
    cv2.imwrite(os.path.join(img_dir, stem + '.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(os.path.join(ann_dir, stem + '.png'), label)


def write_ade(root, args):
    for split, count, salt in (('training', args.train, 7), ('validation', args.val, 8)):
        img_dir = os.path.join(root, 'images', split)
        ann_dir = os.path.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        map_images(args, count, salt, functools.partial(_ade_image, args, img_dir, ann_dir, split))
        print(f'  {root}/images/{split}: {count} images (+ label maps in annotations/{split})')


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    print(f'writing toy data to {args.out}/ (seed {args.seed})')
    if args.only in (None, 'coco'):
        write_coco(os.path.join(args.out, 'coco'), args)
    if args.only in (None, 'ade'):
        write_ade(os.path.join(args.out, 'ade', 'ADEChallengeData2016'), args)
    print(f'done in {time.time() - start:.1f} s')


if __name__ == '__main__':
    sys.exit(main())
