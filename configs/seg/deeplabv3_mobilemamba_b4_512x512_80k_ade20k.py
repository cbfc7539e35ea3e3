# DeepLabv3, MobileMamba-B4 backbone (no neck), ADE20K 512x512, 80k iterations.
# Reproduces the official release's `deeplabv3_mobilemamba_b4-80k_ade20k-512x512.py`
# (published result: configs/seg/metafile.yml) with its hyper-parameters:
# 32 images per iteration (4 GPUs x 8), AdamW 1.2e-4 / wd 0.05 / no decay on 'norm' params,
# grad clip 0.1, 500-iter warm-up, cosine from 40k, BN not frozen, drop path 0.03,
# ImageNet-pretrained B4 (pretrained/mobilemamba_b4.pth). ASPP head on the stride-64 map
# (stage 2, 448 ch, 256 channels, dilations 1/12/24/36), FCN auxiliary head on stride 32.
_base_ = '../_base_/seg_release_recipe.py'

# ASPPHead, logits upsampled by two GEMMs
model = dict(decode_head=dict(type='GemmResizeASPPHead', dilations=(1, 12, 24, 36)))
