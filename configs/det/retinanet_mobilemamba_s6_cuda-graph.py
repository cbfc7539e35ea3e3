# RetinaNet-S6 (retinanet_mobilemamba_s6.py) with its backbone replayed as CUDA graphs: the backbone
# launches over a thousand small kernels per training step and some 700 aten calls per test forward,
# which at 1-2 images per GPU keeps the GPU waiting on the host. Every batch, in training and in
# testing, is padded to one of two sizes (landscape or portrait: mmdet's AspectRatioBatchSampler
# never mixes them), so two graphs cover training and two more cover validation and testing.
# Same model and weights as retinanet_mobilemamba_s6.py; speed: benchmarks/train_speed_h200.md.
# Less GPU time per step: --cfg-options model.backbone.compile=True (the graphs replay inductor's
# kernels; about a minute of compiling per input size; faster in 4 of the 5 H200 comparisons there).
#   python tools/train.py configs/det/retinanet_mobilemamba_s6_cuda-graph.py
_base_ = './retinanet_mobilemamba_s6.py'

custom_imports = dict(
    imports=['mmmobilemamba', 'mmmobilemamba.models.losses', 'mmmobilemamba.models.data_preprocessors'],
    allow_failed_imports=False)

model = dict(
    # check_finite=False: the NaN check of the input synchronises the host once per step
    backbone=dict(cuda_graph=True, cuda_graph_inference=True, check_finite=False),
    data_preprocessor=dict(type='BucketPadDetDataPreprocessor', bucket_sizes=[(800, 1344), (1344, 800)]))
