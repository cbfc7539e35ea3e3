# RetinaNet-S6 (retinanet_mobilemamba_s6.py) with its backbone's training steps compiled by
# torch.compile and replayed as CUDA graphs (mode='reduce-overhead'): inductor fuses BatchNorm,
# activations and residual additions around the convolutions, and the replay removes the host's
# launch time. Each training batch is padded to one of two sizes (landscape or portrait: mmdet's
# AspectRatioBatchSampler never mixes them), so the run compiles two graphs, a minute or two each,
# in its first iterations. Validation and testing run the backbone eagerly.
# Same model and weights as retinanet_mobilemamba_s6.py; speed: benchmarks/train_speed_h200.md.
#   python tools/train.py configs/det/retinanet_mobilemamba_s6_compiled.py
_base_ = './retinanet_mobilemamba_s6.py'

custom_imports = dict(
    imports=['mmmobilemamba', 'mmmobilemamba.models.losses', 'mmmobilemamba.models.data_preprocessors'],
    allow_failed_imports=False)

model = dict(
    # check_finite=False: the NaN check of the input synchronises the host once per step
    backbone=dict(compile=dict(mode='reduce-overhead'), check_finite=False),
    data_preprocessor=dict(batch_augments=[dict(type='BatchBucketPad', sizes=[(800, 1344), (1344, 800)])]))
