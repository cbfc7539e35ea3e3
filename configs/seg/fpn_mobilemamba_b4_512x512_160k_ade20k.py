# Semantic FPN, MobileMamba-B4 backbone, ADE20K 512x512, 160k iterations.
# Reproduces the official release's `fpn_mobilemamba_b4-160k_ade20k-512x512.py`
# (published result: configs/seg/metafile.yml) with its hyper-parameters:
# 32 images per iteration (4 GPUs x 8), AdamW 1.2e-4 / wd 0.05, no decay on 'norm' params,
# 10x lr on 'head' params, no gradient clipping, 1500-iter warm-up, cosine from 80k,
# BN not frozen, drop path 0.03. mmseg FPN neck (256 ch) over the three stage maps and an
# FPNHead (128 ch) on strides 16/32/64; no auxiliary head.
_base_ = '../_base_/seg_release_recipe.py'

model = dict(
    neck=dict(type='FPN', in_channels=[200, 376, 448], out_channels=256, num_outs=3),
    decode_head=dict(
        _delete_=True,
        type='GemmResizeFPNHead',  # FPNHead, logits upsampled by two GEMMs
        in_channels=[256, 256, 256],
        in_index=[0, 1, 2],
        feature_strides=[16, 32, 64],
        channels=128,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)

max_iters = 160000
train_cfg = dict(max_iters=max_iters, val_interval=16000)
default_hooks = dict(checkpoint=dict(interval=16000))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='MergedGroupsOptimWrapperConstructor',  # as in _base_/schedules/seg_adamw_80k.py
    optimizer=dict(type='AdamW', lr=1.2e-4, betas=(0.9, 0.999), weight_decay=0.05,
                   fused=True),  # as in _base_/schedules/seg_adamw_80k.py
    paramwise_cfg=dict(custom_keys={
        'norm': dict(decay_mult=0.),
        'head': dict(lr_mult=10.),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='CosineAnnealingLR', begin=max_iters // 2, end=max_iters,
         T_max=max_iters // 2, by_epoch=False, eta_min=0),
]
