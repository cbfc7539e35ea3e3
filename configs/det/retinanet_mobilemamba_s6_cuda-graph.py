# RetinaNet-S6 (retinanet_mobilemamba_s6.py) with its backbone's training steps replayed as CUDA
# graphs: the backbone launches over a thousand small kernels per step, which at 2 images per GPU
# keeps the GPU waiting on the host. Each training batch is padded to one of two sizes (landscape or
# portrait: mmdet's AspectRatioBatchSampler never mixes them), so two graphs cover the whole run.
# Same model and weights as retinanet_mobilemamba_s6.py; speed: benchmarks/train_speed_h200.md.
#   python tools/train.py configs/det/retinanet_mobilemamba_s6_cuda-graph.py
_base_ = './retinanet_mobilemamba_s6.py'

custom_imports = dict(
    imports=['mmmobilemamba', 'mmmobilemamba.models.losses', 'mmmobilemamba.models.data_preprocessors'],
    allow_failed_imports=False)

model = dict(
    # check_finite=False: the NaN check of the input synchronises the host once per step
    backbone=dict(cuda_graph=True, check_finite=False),
    data_preprocessor=dict(batch_augments=[dict(type='BatchBucketPad', sizes=[(800, 1344), (1344, 800)])]))
