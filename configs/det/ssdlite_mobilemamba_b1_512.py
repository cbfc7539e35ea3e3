# SSDLite, MobileMamba-B1, 512x512 input: ssdlite_mobilemamba_b1.py with 512 px images.
# Reproduces the official release's `ssdlite_mobilemamba_b1_8gpu_2lr_512_coco.py`
# (published result: configs/det/metafile.yml). As released, the anchor
# generator keeps the 320-input strides and sizes (16, 32, 64, 107, 160, 320), although the
# feature maps of a 512 input have strides 16, 32, 64, 128, 256, 512; kept for reproduction.
_base_ = './ssdlite_mobilemamba_b1.py'

input_size = 512
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    {{_base_.ssd_expand}},
    {{_base_.ssd_crop}},
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    {{_base_.ssd_photometric}},
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
