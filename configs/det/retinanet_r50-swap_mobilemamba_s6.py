# Example: mmdet's stock RetinaNet-R50-FPN 1x COCO config with ONLY the backbone and neck
# changed: ResNet-50 -> MobileMamba-S6, and MobileMambaAdapter in front of the stock FPN. The
# adapter's default pyramid mimics ResNet-50 (strides 4/8/16/32, 256/512/1024/2048 channels),
# so the FPN, head, data, schedule (SGD 0.01 for 16 images) and runtime stay mmdet's own.
# Not a paper configuration (the paper's recipe is retinanet_mobilemamba_s6.py); it shows how
# to put MobileMamba into any ResNet-based mmdet config.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    '../_base_/mobilemamba.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileMamba',
        arch='S6',
        out_indices=(0, 1, 2),
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mobilemamba_s6.pth')),
    # a list of modules is built as nn.Sequential: adapter first, then mmdet's FPN unchanged
    neck=[
        dict(type='MobileMambaAdapter', in_channels=[192, 384, 448]),
        {{_base_.model.neck}},
    ])

# The stock FPN starts at level 1 (start_level=1), so the adapter's stride-4 output is unused;
# multi-GPU (DDP) training then needs this.
find_unused_parameters = True
