"""Every config under configs/ builds its model and runs one loss step (with backward) and one
predict step on small toy inputs; stock mmdet/mmseg ResNet configs take MobileMamba by changing
only backbone and neck; tools/analysis_tools/get_flops.py counts a detector and a segmentor.

mmdet and mmseg are required: without them these tests fail (they are never skipped).
"""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import MODELS, init_default_scope

import mmdet  # noqa: F401  (hard requirement)
import mmseg  # noqa: F401  (hard requirement)
import mmmobilemamba  # noqa: F401  (registers MobileMamba and the necks)
from mmdet.testing import demo_mm_inputs
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from _random_weights import CPU_FP32, assert_every_branch_contributes, randomize_norms_and_scales, relative_error
from _toolrun import ROOT, load_tool

CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'configs', '*', '*.py'))
                 if os.sep + '_base_' + os.sep not in p)
DET_CONFIGS = [c for c in CONFIGS if c.startswith(os.path.join('configs', 'det'))]
SEG_CONFIGS = [c for c in CONFIGS if c.startswith(os.path.join('configs', 'seg'))]
TOY = 128  # px: the smallest multiple of 64 that every head here accepts


def load(path):
    if '::' in path:  # a stock config of an installed package, e.g. 'mmdet::retinanet/...'
        return get_config(path)
    return Config.fromfile(os.path.join(ROOT, path))


def build(cfg):
    """Build cfg.model without touching any checkpoint."""
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def det_batch(with_mask, batch=1):
    torch.manual_seed(0)
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, TOY, TOY)] * batch, num_items=[3] * batch,
                          num_classes=80, with_mask=with_mask)


def seg_batch(num_classes, batch=2):
    """Two images (PSP/ASPP pool to 1x1 under BatchNorm: one image is not enough in training)."""
    torch.manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, TOY, TOY), dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(TOY, TOY), ori_shape=(TOY, TOY), pad_shape=(TOY, TOY)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, TOY, TOY)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def loss_and_predict(model, data):
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model(**batch, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total), losses
    total.backward()
    assert any(p.grad is not None for p in model.backbone.parameters())
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(data, False)
        return model(**batch, mode='predict')


def assert_deploy_keeps_outputs(model, images, outputs):
    """``outputs()`` (tensors) agree before and after the backbone's switch_to_deploy(), with the
    backbone's norms and scales randomised so that every block of it computes something on ``images``."""
    if not hasattr(model.backbone, 'switch_to_deploy'):  # configs with a stock backbone
        return
    randomize_norms_and_scales(model.backbone)
    assert_every_branch_contributes(model.backbone, images)
    with torch.no_grad():
        before = outputs()
        model.backbone.switch_to_deploy()
        after = outputs()
    assert before and len(after) == len(before)
    for b, a in zip(before, after):
        assert relative_error(a, b) <= CPU_FP32


def test_config_list_is_complete():
    names = {os.path.basename(c) for c in CONFIGS}
    for expected in ('retinanet_mobilemamba_s6.py', 'retinanet_mobilemamba_b1.py', 'mask-rcnn_mobilemamba_s6.py',
                     'mask-rcnn_mobilemamba_b1.py', 'ssdlite_mobilemamba_s6.py', 'ssdlite_mobilemamba_b1.py',
                     'ssdlite_mobilemamba_b1_512.py', 'retinanet_r50-swap_mobilemamba_s6.py',
                     'deeplabv3_mobilemamba_s6_512x512_80k_ade20k.py', 'deeplabv3_mobilemamba_b4_512x512_80k_ade20k.py',
                     'pspnet_mobilemamba_s6_512x512_80k_ade20k.py', 'pspnet_mobilemamba_b4_512x512_80k_ade20k.py',
                     'fpn_mobilemamba_b4_512x512_160k_ade20k.py',
                     'pspnet_r50-swap_mobilemamba_s6_512x512_80k_ade20k.py'):
        assert expected in names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_paths_derive_from_data_root(path):
    """All dataset/evaluator paths sit under the config's single `data_root`, so tools can
    move a config to another data root (e.g. the toy data) by replacing that prefix."""
    cfg = load(path)
    root = cfg.data_root
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        while 'dataset' in dataset:  # RepeatDataset and other wrappers
            dataset = dataset.dataset
        assert dataset.data_root == root, (loader, dataset.data_root)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        ann_file = cfg[evaluator].get('ann_file')
        assert ann_file is None or ann_file.startswith(root), ann_file
    assert 'mmmobilemamba' in cfg.custom_imports['imports']


@pytest.mark.parametrize('path', DET_CONFIGS)
def test_det_config_trains_and_predicts(path):
    cfg = load(path)
    model = build(cfg)
    with_mask = 'roi_head' in cfg.model and 'mask_head' in cfg.model.roi_head
    # SSDNeck's last levels are 1x1 at this size: BatchNorm needs two images in training
    batch = 2 if isinstance(cfg.model.neck, dict) and cfg.model.neck.type == 'SSDNeck' else 1
    data = det_batch(with_mask, batch)
    results = loss_and_predict(model, data)
    assert len(results) == batch and 'bboxes' in results[0].pred_instances
    if with_mask:
        assert 'masks' in results[0].pred_instances
    images = model.data_preprocessor(data, False)['inputs']
    assert_deploy_keeps_outputs(model, images, lambda: model.extract_feat(images))


@pytest.mark.parametrize('path', SEG_CONFIGS)
def test_seg_config_trains_and_predicts(path):
    cfg = load(path)
    cfg.model.data_preprocessor.size = (TOY, TOY)  # the configs pad to 512x512 crops
    model = build(cfg)
    data = seg_batch(cfg.model.decode_head.num_classes)
    results = loss_and_predict(model, data)
    assert len(results) == 2 and results[0].pred_sem_seg.data.shape[-2:] == (TOY, TOY)
    batch = model.data_preprocessor(data, False)
    assert_deploy_keeps_outputs(model, batch['inputs'], lambda: [r.seg_logits.data for r in model(
        **batch, mode='predict')])


@pytest.mark.parametrize('stock', ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                                   'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'])
def test_stock_mmdet_resnet_config_takes_mobilemamba(stock):
    """Single-stage and two-stage: replace only backbone and neck (adapter + the stock FPN)."""
    cfg = load(stock)
    cfg.custom_imports = dict(imports=['mmmobilemamba'], allow_failed_imports=False)
    cfg.model.backbone = dict(type='MobileMamba', arch='T2', out_indices=(0, 1, 2))
    cfg.model.neck = [dict(type='MobileMambaAdapter', in_channels=[144, 272, 368]), cfg.model.neck]
    model = build(cfg)
    assert type(model.neck).__name__ == 'Sequential'
    feats = model.extract_feat(torch.randn(1, 3, TOY, TOY))
    # the stock FPNs: RetinaNet starts at the stride-8 input (8..128), Faster R-CNN at stride 4 (4..64)
    first = 8 if 'retinanet' in stock else 4
    assert [f.shape[-1] for f in feats] == [TOY // (first * 2 ** i) for i in range(5)]
    assert all(f.shape[1] == 256 for f in feats)
    results = loss_and_predict(model, det_batch(False))
    assert 'bboxes' in results[0].pred_instances


@pytest.mark.parametrize('path,shape,expect', [
    ('configs/det/retinanet_mobilemamba_s6.py', None, dict(shape=(800, 1280), model_type='RetinaNet')),
    ('configs/seg/pspnet_mobilemamba_b4_512x512_80k_ade20k.py', None,
     dict(shape=(512, 512), model_type='EncoderDecoder')),
    ('configs/det/ssdlite_mobilemamba_b1.py', None, dict(shape=(320, 320), model_type='SingleStageDetector')),
])
def test_get_flops_on_configs(path, shape, expect, capsys):
    tool = load_tool('analysis_tools/get_flops')
    result = tool.main([os.path.join(ROOT, path)] + (['--shape', *map(str, shape)] if shape else []))
    out = capsys.readouterr().out
    assert 'FLOPs:' in out and 'params:' in out
    for key, value in expect.items():
        assert result[key] == value
    assert result['scan_flops'] > 0 and result['flops'] > result['scan_flops']
    if 'pspnet_mobilemamba_b4' in path:
        # release README: 4.5G FLOPs at 512x512 (mmseg counting of the same structure)
        assert 4.3e9 < result['flops'] < 4.8e9
    if 'ssdlite_mobilemamba_b1' in path:
        assert 1.5e9 < result['flops'] < 1.9e9  # release README: 1.7G at 320x320


@pytest.mark.parametrize('path', ['configs/det/retinanet_mobilemamba_s6.py',
                                  'configs/det/ssdlite_mobilemamba_s6.py',
                                  'configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py',
                                  'configs/seg/fpn_mobilemamba_b4_512x512_160k_ade20k.py'])
def test_release_recipe_steps_a_fused_adamw(path):
    """The release's AdamW recipe builds torch's fused AdamW over merged parameter groups; one
    clipped step moves the weights."""
    from mmengine.optim import build_optim_wrapper
    cfg = load(path)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrapper.optimizer, torch.optim.AdamW) and wrapper.optimizer.defaults['fused'] is True
    assert len(wrapper.optimizer.param_groups) == 1  # one group per distinct setting (MergedGroups...)
    before = model[0].weight.detach().clone()
    wrapper.update_params(model(torch.randn(2, 3, 8, 8)).square().mean())
    assert not torch.equal(model[0].weight, before)
