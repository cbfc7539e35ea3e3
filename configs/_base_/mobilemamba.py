# Registers MobileMamba, MobileMambaAdapter and MobileMambaFPN (mmmobilemamba must be importable:
# `pip install -e .` in the repository root, or run the tools from the repository root).
custom_imports = dict(imports=['mmmobilemamba'], allow_failed_imports=False)

# ImageNet weights of the official release go to pretrained/ in the repository root
# (pretrained/mobilemamba_{t2,t4,s6,b1,b2,b4}.pth); configs refer to them by that relative
# path, so run the tools from the repository root or override
# model.backbone.init_cfg.checkpoint. Without them, set model.backbone.init_cfg=None
# (training from scratch).

# The backbones of the release's downstream recipes, used as `model.backbone={{_base_.NAME}}`.
# B1 for detection, replacing a stock config's ResNet: frozen BN statistics, drop path 0.03.
mobilemamba_b1 = dict(
    _delete_=True,
    type='MobileMamba',
    arch='B1',
    out_indices=(0, 1, 2),
    frozen_stages=-1,
    norm_eval=True,
    drop_path_rate=0.03,
    init_cfg=dict(type='Pretrained', checkpoint='pretrained/mobilemamba_b1.pth'))
# S6 in a config of a B1 / B4 recipe: only the variant and its weights change
# (stage channels 192/384/448 instead of 200/376/448).
mobilemamba_s6 = dict(arch='S6', init_cfg=dict(type='Pretrained', checkpoint='pretrained/mobilemamba_s6.pth'))
