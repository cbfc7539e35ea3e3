#!/usr/bin/env bash
# Training speed on one GPU, in parts that each fit one 10-minute device call:
#   bash benchmarks/run_gpu_speed.sh train    # train_step table (fp32/fp16/bf16) + test_step with NMS:
#                                             # train-seg (segmentors) then train-det (detectors)
#   bash benchmarks/run_gpu_speed.sh levers   # RetinaNet-S6 levers one at a time, fp32 and bf16
#   bash benchmarks/run_gpu_speed.sh compile  # the torch.compile lever alone (not in 'all': compiling takes minutes)
#   bash benchmarks/run_gpu_speed.sh trunk    # S6 trunk, ours vs the release's kernel (RELEASE=path)
#   bash benchmarks/run_gpu_speed.sh trunk-compiled 4x768x1280   # the trunk compiled (compile=..., one shape:
#                                             # each shape and precision compiles for a minute or two)
#   bash benchmarks/run_gpu_speed.sh all      # train, levers, trunk: one process each, one after the other
# Tables go to stdout and to train_speed_<part>.md in $OUT (the device tool's result folder) or
# benchmarks/. Needs mmcv with its CUDA ops, mmdet and mmseg; for the trunk, a copy of the official
# release at $RELEASE (its selective_scan_cuda_oflex is built on first use when not on PYTHONPATH).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
part=${1:-all}
shift $(( $# > 0 ? 1 : 0 ))  # further arguments go to every part, e.g. --iters 5
RELEASE=${RELEASE:-.gpu/release}
dir=${OUT:-benchmarks}
extra=("$@")
bench() { python -m mmmobilemamba.apis.benchmark_train "$@" "${extra[@]}"; }

if [ "$part" = train-seg ] || [ "$part" = train ] || [ "$part" = all ]; then
  bench --models pspnet-S6 pspnet-S6-stock-heads pspnet-R50 pspnet-R18 deeplabv3-S6 deeplabv3-B4 pspnet-B4 \
        --out "$dir/train_speed_train_seg.md"
fi
if [ "$part" = train-det ] || [ "$part" = train ] || [ "$part" = all ]; then
  bench --models retinanet-S6 retinanet-S6-cuda-graph retinanet-S6-compiled-cuda-graph retinanet-R18 retinanet-R50 retinanet-B1 mask-rcnn-S6 mask-rcnn-R50 \
        --out "$dir/train_speed_train_det.md"
fi
if [ "$part" = levers ] || [ "$part" = all ]; then
  bench --models --levers tf32 conv-proj channels-last no-finite-check cuda-graph \
        conv-proj+no-finite-check conv-proj+cuda-graph no-finite-check+cuda-graph \
        --lever-models retinanet-S6 --out "$dir/train_speed_levers.md"
fi
if [ "$part" = compile ]; then
  bench --models --levers compile --lever-models retinanet-S6 --out "$dir/train_speed_compile.md"
fi
if [ "$part" = trunk-compiled ]; then
  shape=128x224x224
  if [[ ${extra[0]:-} =~ ^[0-9]+x[0-9]+x[0-9]+$ ]]; then shape=${extra[0]}; extra=("${extra[@]:1}"); fi
  release_args=()
  [ -d "$RELEASE" ] && release_args=(--release-repo "$RELEASE")
  bench --models --trunk --trunk-shapes "$shape" --trunk-levers compile compile+cuda-graph "${release_args[@]}" \
        --out "$dir/train_speed_trunk_compiled_$shape.md"
fi
if [ "$part" = trunk ] || [ "$part" = all ]; then
  release_args=()
  [ -d "$RELEASE" ] && release_args=(--release-repo "$RELEASE")
  bench --models --trunk --trunk-levers conv-proj tf32 cuda-graph --trunk-profile "${release_args[@]}" --out "$dir/train_speed_trunk.md"
fi
