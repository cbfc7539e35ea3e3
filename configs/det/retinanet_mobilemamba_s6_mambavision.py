# Ablation: RetinaNet MobileMamba-S6 with the MambaVision mixer as the global branch of
# WTE-Mamba instead of the release's bidirectional SS2D scan. Everything else (release FPN
# neck, head, data, AdamW schedule, 1333x800) is retinanet_mobilemamba_s6.py.
# The release's ImageNet weights do not fit this backbone (the mixer's parameters differ: the
# strict loader reports missing/mis-shaped global_atten.* tensors), so it starts from random
# weights, and its BatchNorm statistics are trained (norm_eval=False: the baseline freezes them
# because they come from ImageNet). For a like-for-like comparison train the baseline the same way:
#   python tools/train.py configs/det/retinanet_mobilemamba_s6_mambavision.py
#   python tools/train.py configs/det/retinanet_mobilemamba_s6.py \
#       --cfg-options model.backbone.init_cfg=None model.backbone.norm_eval=False
# or give both ImageNet weights of their own mixer (a config inheriting this one with
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...) and norm_eval=True).
# No published number.
_base_ = './retinanet_mobilemamba_s6.py'

model = dict(backbone=dict(global_mixer='mambavision', init_cfg=None, norm_eval=False))
