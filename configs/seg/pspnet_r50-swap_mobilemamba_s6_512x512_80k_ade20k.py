# Example: mmseg's stock PSPNet-R50-D8 ADE20K 512x512 80k config with the backbone swapped
# (ResNet-50-D8 -> MobileMamba-S6) and MobileMambaAdapter as the neck; heads, data, schedule
# (SGD 0.01, poly) and runtime stay mmseg's own. The adapter's default pyramid gives the
# ResNet-50 channels (index 2: 1024 ch, index 3: 2048 ch) that the stock heads read, at strides
# 16 and 32 (the dilated ResNet has 8 and 8; out_strides=(4, 8, 8, 8) would mimic it, at a much
# higher head cost). `pretrained=None` removes the stock ResNet weights pointer, which mmseg
# passes to the backbone. Not a paper configuration (see pspnet_mobilemamba_s6_*.py).
_base_ = [
    'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py',
    '../_base_/mobilemamba.py',
]

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MobileMamba',
        arch='S6',
        out_indices=(0, 1, 2),
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mobilemamba_s6.pth')),
    neck=dict(type='MobileMambaAdapter', in_channels=[192, 384, 448]))

# the heads read adapter outputs 2 and 3 only; multi-GPU (DDP) training then needs this
find_unused_parameters = True
