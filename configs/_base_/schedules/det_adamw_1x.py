# Detection schedule of the MobileMamba release (RetinaNet / Mask R-CNN, 12 epochs):
# AdamW lr 2e-4 for 16 images (release: 4 GPUs x 4 images), weight decay 0.05, no decay on
# parameters whose name contains 'norm', gradient clipping at 0.1, 500-iteration linear
# warm-up, constant lr until epoch 6, then cosine to 0 at epoch 12.
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # one parameter group per distinct setting (mmengine's default makes one per parameter,
    # and fused AdamW launches per group); the same settings and updates
    constructor='MergedGroupsOptimWrapperConstructor',
    # fused: the AdamW update as fused multi-tensor kernels instead of a chain of foreach ops;
    # the same update to float rounding, RetinaNet-S6 training step -34% on an H200 (benchmarks/
    # train_speed_h200.md), the optimizer step 3.5x faster on a CPU. An optimizer type
    # without `fused` needs optimizer=dict(_delete_=True, type=...).
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05,
                   fused=True),
    # name-based like the release: matches every parameter whose name contains 'norm'
    # (in MobileMamba: the SS2D `out_norm` LayerNorms; BN layers inside Conv-BN pairs are named
    # `bn`, which the release also left decayed)
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}),
    clip_grad=dict(max_norm=0.1, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=max_epochs // 2, end=max_epochs,
         T_max=max_epochs // 2, by_epoch=True, eta_min=0),
]

# lr above is for 16 images per iteration; with `--auto-scale-lr` mmdet rescales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=16)
