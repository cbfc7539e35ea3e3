# RetinaNet, MobileMamba-S6 backbone: retinanet_mobilemamba_b1.py (the release's recipe:
# release FPN neck, AdamW 2e-4 for 16 images, 12 epochs, 1333x800) with the S6 backbone
# (channels 192/384/448, ImageNet weights pretrained/mobilemamba_s6.pth). The release has no
# S6 detector, so there is no published number to compare with.
#   python tools/train.py configs/det/retinanet_mobilemamba_s6.py
_base_ = './retinanet_mobilemamba_b1.py'

model = dict(
    backbone={{_base_.mobilemamba_s6}},
    neck=dict(in_channels=[192, 384, 448]))
