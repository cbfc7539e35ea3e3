# DeepLabv3, MobileMamba-S6: deeplabv3_mobilemamba_b4_512x512_80k_ade20k.py (the release's
# recipe) with the S6 backbone (192/384/448 ch, pretrained/mobilemamba_s6.pth). No published number.
_base_ = './deeplabv3_mobilemamba_b4_512x512_80k_ade20k.py'

model = dict(
    backbone={{_base_.mobilemamba_s6}},
    auxiliary_head=dict(in_channels=384))
