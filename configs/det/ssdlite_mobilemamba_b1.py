# SSDLite, MobileMamba-B1 backbone, 320x320 input, COCO, 120 epochs (dataset repeated 5x).
# Reproduces the official release's `ssdlite_mobilemamba_b1_8gpu_2lr_coco.py`
# (published result: configs/det/metafile.yml) with its hyper-parameters:
# 192 images per iteration (8 GPUs x 24), AdamW 2.4e-3 / wd 0.05 / no decay on 'norm' params,
# grad clip 0.1, 500-iter warm-up, cosine from epoch 60, backbone BN frozen, drop path 0.03.
# Backbone stages 0 and 1 (strides 16/32, 200/376 channels) feed mmdet's SSDNeck (4 extra
# depthwise levels, strides 64..512 -> anchors at strides 16, 32, 64, 107, 160, 320).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/det_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/mobilemamba.py',
]

# mmdet 3.3.0 cannot run SSD inference without this fix (mmmobilemamba/utils/compat.py, fix_mmdet_ssd_head)
custom_imports = dict(imports=['mmmobilemamba', 'mmmobilemamba.utils.mmdet_ssd_fix'], allow_failed_imports=False)

input_size = 320
data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=1)
model = dict(
    type='SingleStageDetector',
    data_preprocessor=data_preprocessor,
    # _base_/mobilemamba.py's B1, stages 0 and 1 only
    backbone=dict(type='MobileMamba', arch='B1', out_indices=(0, 1), frozen_stages=-1, norm_eval=True,
                  drop_path_rate=0.03, init_cfg=dict(type='Pretrained', checkpoint='pretrained/mobilemamba_b1.pth')),
    neck=dict(
        type='SSDNeck',
        in_channels=(200, 376),
        out_channels=(200, 376, 512, 256, 256, 128),
        level_strides=(2, 2, 2, 2),
        level_paddings=(1, 1, 1, 1),
        l2_norm_scale=None,
        use_depthwise=True,
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(type='TruncNormal', layer='Conv2d', std=0.03)),
    bbox_head=dict(
        type='SSDHead',
        in_channels=(200, 376, 512, 256, 256, 128),
        num_classes=80,
        use_depthwise=True,
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.001),
        anchor_generator=dict(
            type='SSDAnchorGenerator',
            scale_major=False,
            strides=[16, 32, 64, 107, 160, 320],
            ratios=[[2, 3], [2, 3], [2, 3], [2, 3], [2, 3], [2, 3]],
            min_sizes=[48, 100, 150, 202, 253, 304],
            max_sizes=[100, 150, 202, 253, 304, 320]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.0,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.0,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        score_thr=0.02,
        max_per_img=200))
env_cfg = dict(cudnn_benchmark=True)

# SSD augmentation; named so that the 512 config reuses them
ssd_expand = dict(
    type='Expand',
    mean=data_preprocessor['mean'],
    to_rgb=data_preprocessor['bgr_to_rgb'],
    ratio_range=(1, 4))
ssd_crop = dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3)
ssd_photometric = dict(
    type='PhotoMetricDistortion',
    brightness_delta=32,
    contrast_range=(0.5, 1.5),
    saturation_range=(0.5, 1.5),
    hue_delta=18)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    ssd_expand,
    ssd_crop,
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    ssd_photometric,
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=24,
    num_workers=12,
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=5,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline)))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 120
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=2.4e-3))  # 0.0002 * 6 * 2, for 192 images
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=max_epochs // 2, end=max_epochs,
         T_max=max_epochs // 2, by_epoch=True, eta_min=0),
]
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
]
auto_scale_lr = dict(base_batch_size=192)
# SSDLite reads backbone stages 0 and 1 only: MobileMamba then skips stage 2 and freezes its
# (checkpoint) weights, so DDP needs no find_unused_parameters.
