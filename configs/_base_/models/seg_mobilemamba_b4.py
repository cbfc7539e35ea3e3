# mmseg EncoderDecoder with the MobileMamba-B4 backbone as the release sets it up for ADE20K
# (no neck; stage maps: 0 -> stride 16 / 200 ch, 1 -> stride 32 / 376 ch, 2 -> stride 64 / 448 ch)
# and the release's auxiliary FCN head on stage 1. The decode head reads stage 2 (448 ch) with the
# release's settings; its type (and the type's own options) comes from the leaf config.
_base_ = '../mobilemamba.py'

# the GemmResize* heads (mmseg heads whose logit upsampling runs as two GEMMs)
custom_imports = dict(imports=['mmmobilemamba', 'mmmobilemamba.models.decode_heads'],
                      allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512)),
    # as _base_/mobilemamba.py's B1 but B4, with BN statistics trained (norm_eval=False) as released
    backbone=dict(type='MobileMamba', arch='B4', out_indices=(0, 1, 2), frozen_stages=-1, norm_eval=False,
                  drop_path_rate=0.03, init_cfg=dict(type='Pretrained', checkpoint='pretrained/mobilemamba_b4.pth')),
    auxiliary_head=dict(
        type='GemmResizeFCNHead',  # FCNHead, logits upsampled by two GEMMs
        in_channels=376,
        in_index=1,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    decode_head=dict(
        in_channels=448,
        in_index=2,
        channels=256,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
