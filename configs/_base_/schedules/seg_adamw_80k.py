# Segmentation schedule of the MobileMamba release (DeepLabv3 / PSPNet, 80k iterations):
# AdamW lr 1.2e-4 for 32 images (release: 4 GPUs x 8 images), weight decay 0.05, no decay on
# parameters whose name contains 'norm', gradient clipping at 0.1, 500-iteration linear
# warm-up, constant lr until 40k, then cosine to 0 at 80k.
max_iters = 80000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))

optim_wrapper = dict(
    type='OptimWrapper',
    # one parameter group per distinct setting (mmengine's default makes one per parameter,
    # and fused AdamW launches per group); the same settings and updates
    constructor='MergedGroupsOptimWrapperConstructor',
    # fused: the AdamW update as fused multi-tensor kernels instead of a chain of foreach ops;
    # the same update to float rounding, RetinaNet-S6 training step -34% on an H200 (benchmarks/
    # train_speed_h200.md), the optimizer step 3.5x faster on a CPU. An optimizer type
    # without `fused` needs optimizer=dict(_delete_=True, type=...).
    optimizer=dict(type='AdamW', lr=1.2e-4, betas=(0.9, 0.999), weight_decay=0.05,
                   fused=True),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}),  # name-based, as released
    clip_grad=dict(max_norm=0.1, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=max_iters // 2, end=max_iters,
         T_max=max_iters // 2, by_epoch=False, eta_min=0),
]

# lr above is for 32 images per iteration; `tools/train.py --auto-scale-lr` rescales it linearly
# to GPUs x batch_size of the run
auto_scale_lr = dict(enable=False, base_batch_size=32)
