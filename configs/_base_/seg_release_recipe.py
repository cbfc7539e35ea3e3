# The release's ADE20K recipe for MobileMamba-B4 segmentors: the model base (backbone, auxiliary
# head, decode-head settings), mmseg's ADE20K data and runtime, the release's AdamW 80k schedule,
# and 8 images per GPU (the release trained on 4 GPUs: 32 images per iteration).
_base_ = [
    './models/seg_mobilemamba_b4.py',
    'mmseg::_base_/datasets/ade20k.py',
    './schedules/seg_adamw_80k.py',
    'mmseg::_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=8, num_workers=8)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader
