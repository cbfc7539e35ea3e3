# RetinaNet, MobileMamba-B1 backbone, release FPN neck, COCO 1x (12 epochs), 1333x800 input.
# Reproduces the official release's `retinanet_mobilemamba_b1_fpn_1x_coco.py`
# (README: 39.6 box AP on COCO val2017, 27.1M params, 151G FLOPs) with its hyper-parameters:
# 16 images per iteration (4 GPUs x 4), AdamW 2e-4 / wd 0.05 / no decay on 'norm' params,
# grad clip 0.1, 500-iter warm-up, cosine from epoch 6, backbone BN frozen (norm_eval),
# drop path 0.03, ImageNet-pretrained B1 (pretrained/mobilemamba_b1.pth).
# Neck: FPN over strides 16/32/64 + one transposed-conv level (stride 8) + one stride-2 conv
# on the last backbone map (stride 128) -> strides 8..128 for the standard RetinaNet head.
_base_ = [
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/det_adamw_1x.py',
    '../_base_/det_runtime.py',
]

# Float32FocalLoss: mmdet's FocalLoss on float32 logits (mmcv's CUDA op has no bf16 kernel)
custom_imports = dict(imports=['mmmobilemamba', 'mmmobilemamba.models.losses'],
                      allow_failed_imports=False)

model = dict(
    type='RetinaNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='MobileMamba',
        arch='B1',
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=True,
        drop_path_rate=0.03,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mobilemamba_b1.pth')),
    neck=dict(
        type='MobileMambaFPN',
        in_channels=[200, 376, 448],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_input',
        num_extra_trans_convs=1,
        num_outs=5),
    bbox_head=dict(
        type='RetinaHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='Float32FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100))

# 4 images per GPU; the release trained on 4 GPUs (16 images per iteration)
train_dataloader = dict(batch_size=4, num_workers=4)
