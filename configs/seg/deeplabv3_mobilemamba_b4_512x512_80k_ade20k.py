# DeepLabv3, MobileMamba-B4 backbone (no neck), ADE20K 512x512, 80k iterations.
# Reproduces the official release's `deeplabv3_mobilemamba_b4-80k_ade20k-512x512.py`
# (published result: configs/seg/metafile.yml) with its hyper-parameters:
# 32 images per iteration (4 GPUs x 8), AdamW 1.2e-4 / wd 0.05 / no decay on 'norm' params,
# grad clip 0.1, 500-iter warm-up, cosine from 40k, BN not frozen, drop path 0.03,
# ImageNet-pretrained B4 (pretrained/mobilemamba_b4.pth). ASPP head on the stride-64 map
# (stage 2, 448 ch, 256 channels, dilations 1/12/24/36), FCN auxiliary head on stride 32.
_base_ = [
    '../_base_/models/seg_mobilemamba_b4.py',
    'mmseg::_base_/datasets/ade20k.py',
    '../_base_/schedules/seg_adamw_80k.py',
    'mmseg::_base_/default_runtime.py',
]

model = dict(
    decode_head=dict(
        type='ASPPHead',
        in_channels=448,
        in_index=2,
        channels=256,
        dilations=(1, 12, 24, 36),
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

# 8 images per GPU; the release trained on 4 GPUs (32 images per iteration)
train_dataloader = dict(batch_size=8, num_workers=8)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader
