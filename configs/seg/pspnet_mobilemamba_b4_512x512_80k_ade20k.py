# PSPNet, MobileMamba-B4 backbone (no neck), ADE20K 512x512, 80k iterations.
# Reproduces the official release's `pspnet_mobilemamba_b4-80k_ade20k-512x512.py`
# (published result: configs/seg/metafile.yml): the recipe of deeplabv3_mobilemamba_b4
# (_base_/seg_release_recipe.py: backbone, auxiliary head, data, schedule) with a PSP head
# (pool scales 1/2/3/6, 256 channels) on the stride-64 map instead of ASPP.
_base_ = '../_base_/seg_release_recipe.py'

# PSPHead, logits upsampled by two GEMMs
model = dict(decode_head=dict(type='GemmResizePSPHead', pool_scales=(1, 2, 3, 6)))
