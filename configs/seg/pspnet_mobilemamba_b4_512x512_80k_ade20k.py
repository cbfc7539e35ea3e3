# PSPNet, MobileMamba-B4 backbone (no neck), ADE20K 512x512, 80k iterations.
# Reproduces the official release's `pspnet_mobilemamba_b4-80k_ade20k-512x512.py`
# (published result: configs/seg/metafile.yml): deeplabv3_mobilemamba_b4's
# recipe (same backbone, auxiliary head, data and schedule) with a PSP head (pool scales
# 1/2/3/6, 256 channels) on the stride-64 map instead of ASPP.
_base_ = './deeplabv3_mobilemamba_b4_512x512_80k_ade20k.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='PSPHead',
        in_channels=448,
        in_index=2,
        channels=256,
        pool_scales=(1, 2, 3, 6),
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
