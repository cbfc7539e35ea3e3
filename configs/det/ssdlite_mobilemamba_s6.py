# SSDLite, MobileMamba-S6, 320x320: ssdlite_mobilemamba_b1.py (the release's recipe) with the
# S6 backbone (stages 0/1: 192/384 channels, pretrained/mobilemamba_s6.pth). No published number.
_base_ = './ssdlite_mobilemamba_b1.py'

model = dict(
    backbone={{_base_.mobilemamba_s6}},
    neck=dict(in_channels=(192, 384), out_channels=(192, 384, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(192, 384, 512, 256, 256, 128)))
