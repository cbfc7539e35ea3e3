# Mask R-CNN, MobileMamba-S6 backbone: mask-rcnn_mobilemamba_b1.py (the release's recipe) with
# the S6 backbone (channels 192/384/448, pretrained/mobilemamba_s6.pth). No published number.
_base_ = './mask-rcnn_mobilemamba_b1.py'

model = dict(
    backbone={{_base_.mobilemamba_s6}},
    neck=dict(in_channels=[192, 384, 448]))
