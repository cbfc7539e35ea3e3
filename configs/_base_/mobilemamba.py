# Registers MobileMamba, MobileMambaAdapter and MobileMambaFPN (mmmobilemamba must be importable:
# `pip install -e .` in the repository root, or run the tools from the repository root).
custom_imports = dict(imports=['mmmobilemamba'], allow_failed_imports=False)

# ImageNet weights of the official release go to pretrained/ in the repository root
# (pretrained/mobilemamba_{t2,t4,s6,b1,b2,b4}.pth); configs refer to them by that relative
# path, so run the tools from the repository root or override
# model.backbone.init_cfg.checkpoint. Without them, set model.backbone.init_cfg=None
# (training from scratch).
