# Baseline for retinanet_mobilemamba_s6.py on the same data and schedule: mmdet's stock
# RetinaNet-R18-FPN (strides 8-128, 1333x800) trained with the MobileMamba release's detection
# recipe instead of mmdet's SGD: AdamW 2e-4 for 16 images, wd 0.05, no decay on 'norm' parameters,
# grad clip 0.1, 500-iteration warm-up, cosine from epoch 6 (configs/_base_/schedules/det_adamw_1x.py).
# Not a paper configuration; README "Learning on realistic data" compares the two from scratch.
_base_ = [
    'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    '../_base_/custom_imports.py',
]

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}),
    clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=max_epochs // 2, end=max_epochs,
         T_max=max_epochs // 2, by_epoch=True, eta_min=0),
]
train_dataloader = dict(batch_size=4, num_workers=4)
auto_scale_lr = dict(enable=False, base_batch_size=16)
