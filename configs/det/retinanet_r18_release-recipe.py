# Baseline for retinanet_mobilemamba_s6.py on the same data and schedule: mmdet's stock
# RetinaNet-R18-FPN (strides 8-128, 1333x800) trained with the MobileMamba release's detection
# recipe instead of mmdet's SGD: AdamW 2e-4 for 16 images, wd 0.05, no decay on 'norm' parameters,
# grad clip 0.1, 500-iteration warm-up, cosine from epoch 6 (configs/_base_/schedules/det_adamw_1x.py).
# Not a paper configuration; README "Learning on realistic data" compares the two from scratch.
# The bases are those of mmdet's retinanet_r18_fpn_1x_coco.py with the release's schedule instead of
# schedule_1x; the model lines below are that config's.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/schedules/det_adamw_1x.py',
    '../_base_/mobilemamba.py',
]

model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
train_dataloader = dict(batch_size=4, num_workers=4)
