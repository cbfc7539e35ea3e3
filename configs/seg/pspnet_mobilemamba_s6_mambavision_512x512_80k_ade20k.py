# Ablation: PSPNet MobileMamba-S6 with the MambaVision mixer as the global branch of
# WTE-Mamba instead of the release's bidirectional SS2D scan. Everything else (PSP head, FCN
# auxiliary head, ADE20K 512x512, AdamW 80k schedule) is pspnet_mobilemamba_s6_512x512_80k_ade20k.py.
# The release's ImageNet weights do not fit this backbone (the mixer's parameters differ: the
# strict loader reports missing/mis-shaped global_atten.* tensors), so it starts from random
# weights. For a like-for-like comparison train the baseline from scratch as well:
#   python tools/train.py configs/seg/pspnet_mobilemamba_s6_mambavision_512x512_80k_ade20k.py
#   python tools/train.py configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py --cfg-options model.backbone.init_cfg=None
# or give both ImageNet weights of their own mixer (a config inheriting this one with
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...)). No published number.
_base_ = './pspnet_mobilemamba_s6_512x512_80k_ade20k.py'

model = dict(backbone=dict(global_mixer='mambavision', init_cfg=None))
