"""The --toy preset's options for GPU runs (``--toy-size 0`` keeps the config's image sizes) and the
``--realistic`` toy data: many overlapping objects of several sizes, annotated by their visible part."""
import json

import numpy as np
import pytest

from _toolrun import DET_CONFIG, ROOT, SEG_CONFIG, run


@pytest.fixture(scope='module')
def rs():
    from mmmobilemamba.apis import runner_setup
    return runner_setup


def test_toy_size_zero_keeps_the_config_sizes(rs, monkeypatch):
    monkeypatch.chdir(ROOT)
    for config in (DET_CONFIG, SEG_CONFIG):
        original = rs.load_config(config)
        cfg = rs.load_config(config)
        rs.apply_toy(cfg, 'det' if config == DET_CONFIG else 'seg', iters=5, size=0, log=lambda *_: None)
        assert cfg.test_dataloader.dataset.pipeline == original.test_dataloader.dataset.pipeline
        assert cfg.train_dataloader.dataset.pipeline == original.train_dataloader.dataset.pipeline
        assert cfg.train_cfg.max_iters == 5 and cfg.train_dataloader.batch_size == 2  # the rest of --toy


def test_toy_sizes_keep_bucket_padding_holding_every_batch(rs, monkeypatch):
    """The cuda-graph config's bucket sizes shrink with the images and stay multiples of the pad
    divisor at least as large as the padded resize scale, so every toy batch fits one bucket."""
    monkeypatch.chdir(ROOT)
    cfg = rs.load_config('configs/det/retinanet_mobilemamba_s6_cuda-graph.py')
    rs.apply_toy(cfg, 'det', iters=5, size=160, log=lambda *_: None)
    divisor = cfg.model.data_preprocessor.pad_size_divisor
    long_side, short_side = next(t['scale'] for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'Resize')
    padded = [-(-v // divisor) * divisor for v in (short_side, long_side)]
    sizes = cfg.model.data_preprocessor.bucket_sizes
    assert sorted(sizes) == sorted([tuple(padded), tuple(padded[::-1])]), (sizes, padded)


@pytest.fixture(scope='module')
def realistic(tmp_path_factory):
    out = tmp_path_factory.mktemp('realistic')
    run(['tools/dataset_converters/make_toy_data.py', '--realistic', '--out', out, '--train', '6', '--val', '2',
         '--min-size', '320', '--max-size', '400', '--workers', '2'], timeout=300)
    return out


def _iou(a, b):
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def test_realistic_set_is_crowded_overlapping_and_of_several_sizes(realistic):
    from pycocotools.coco import COCO
    coco = COCO(str(realistic / 'coco' / 'annotations' / 'instances_train2017.json'))
    per_image = [coco.loadAnns(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()]
    assert len(per_image) == 6 and np.mean([len(a) for a in per_image]) >= 5
    overlapping = sum(_iou(a['bbox'], b['bbox']) > 0 for anns in per_image for i, a in enumerate(anns)
                      for b in anns[i + 1:])
    assert overlapping >= 3
    areas = np.array([a['area'] for anns in per_image for a in anns])
    assert (areas < 32 ** 2).any() and (areas >= 96 ** 2).any()  # COCO's small and large objects
    for anns in per_image:  # each annotation is the visible part: its mask has its area and box
        for a in anns:
            mask = coco.annToMask(a)
            ys, xs = np.nonzero(mask)
            assert abs(mask.sum() - a['area']) <= 0.25 * a['area'] + 20, a
            x, y, w, h = a['bbox']
            assert x <= xs.min() + 1 and y <= ys.min() + 1 and xs.max() <= x + w and ys.max() <= y + h


def test_realistic_label_maps_follow_the_drawing_order(realistic):
    import cv2
    labels = sorted((realistic / 'ade' / 'ADEChallengeData2016' / 'annotations' / 'training').glob('*.png'))
    assert len(labels) == 6
    values = set()
    for path in labels:
        values |= set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)).tolist())
    assert {0, 4} <= values and len(values & {90, 115, 120}) >= 2
    meta = json.loads((realistic / 'coco' / 'annotations' / 'instances_val2017.json').read_text())
    assert all(320 <= min(i['height'], i['width']) and max(i['height'], i['width']) <= 400 for i in meta['images'])
