# Mask R-CNN, MobileMamba-B1 backbone, release FPN neck, COCO 1x (12 epochs), 1333x800 input:
# mmdet's Mask R-CNN-R50 (heads, data, runtime) with the release's backbone, neck and schedule.
# Reproduces the official release's `mask-rcnn_mobilemamba_b1_fpn_1x_coco.py` (published
# result: configs/det/metafile.yml) with its hyper-parameters: 16 images per iteration (4 GPUs
# x 4), the AdamW schedule of _base_/schedules/det_adamw_1x.py, backbone BN frozen, drop path
# 0.03, ImageNet-pretrained B1 (pretrained/mobilemamba_b1.pth).
# Neck: FPN over strides 16/32/64 + two transposed-conv levels (strides 8 and 4) -> 4..64.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/det_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/mobilemamba.py',
]

model = dict(
    backbone={{_base_.mobilemamba_b1}},
    neck=dict(
        _delete_=True,
        type='MobileMambaFPN',
        in_channels=[200, 376, 448],
        out_channels=256,
        start_level=0,
        num_extra_trans_convs=2,
        num_outs=5))

# 4 images per GPU; the release trained on 4 GPUs (16 images per iteration)
train_dataloader = dict(batch_size=4, num_workers=4)
