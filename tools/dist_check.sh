#!/usr/bin/env bash
# Two-GPU data-parallel check (NCCL, mmcv's CUDA ops) of a detector and a segmentor, on generated
# data at the configs' own image sizes (--toy --toy-size 0):
#   1. RetinaNet-S6 on 1 GPU, batch 4, and on 2 GPUs, batch 2 each (the same total batch): loss curves;
#   2. images/s on 1 GPU and on 2 GPUs at the same per-GPU batch (2): scaling efficiency;
#   3. a 2-GPU run killed after its first checkpoint, then continued with --resume on 2 GPUs;
#   4. the 2-GPU checkpoint evaluated by tools/test.py on 1 GPU;
#   5. PSPNet-S6 on 2 GPUs with SyncBN (sync_bn=torch).
# Writes WORK/summary.md (loss means, images/s, efficiency, metrics) and prints it.
#
#   bash tools/dist_check.sh                 # ITERS=100 (per training run), WORK=work_dirs/dist_check
#   DRY_RUN=1 bash tools/dist_check.sh       # print the commands only
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS=${ITERS:-100}
WORK=${WORK:-work_dirs/dist_check}
DET=configs/det/retinanet_mobilemamba_s6.py
SEG=configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py
DATA=$WORK/data
TOY=(--toy --toy-size 0 --toy-iters "$ITERS")
LOADER=(train_dataloader.num_workers=4 train_dataloader.persistent_workers=False)

run() {
  echo "+ $*"
  if [ "${DRY_RUN:-0}" != 1 ]; then "$@"; fi
}

run python tools/dataset_converters/make_toy_data.py --out "$DATA" --train 64 --val 8 --min-size 640 --max-size 1024
# 1. same total batch (4): 1 GPU x 4 against 2 GPUs x 2
run python tools/train.py $DET "${TOY[@]}" --data-root "$DATA/coco" --work-dir "$WORK/det_1gpu_b4" \
  --cfg-options "${LOADER[@]}" train_dataloader.batch_size=4
run bash tools/dist_train.sh $DET 2 "${TOY[@]}" --data-root "$DATA/coco" --work-dir "$WORK/det_2gpu_b2" \
  --cfg-options "${LOADER[@]}" train_dataloader.batch_size=2
# 2. same per-GPU batch (2) on 1 GPU, for the efficiency against det_2gpu_b2
run python tools/train.py $DET "${TOY[@]}" --data-root "$DATA/coco" --work-dir "$WORK/det_1gpu_b2" \
  --cfg-options "${LOADER[@]}" train_dataloader.batch_size=2
# 3. kill after the first checkpoint (iteration ITERS/2), then --resume on 2 GPUs
RESUME_DIR=$WORK/det_2gpu_resume
HALF=$(( ITERS / 2 ))
if [ "${DRY_RUN:-0}" = 1 ]; then
  echo "+ (background) bash tools/dist_train.sh $DET 2 ... --work-dir $RESUME_DIR, killed once $RESUME_DIR/iter_$HALF.pth exists"
else
  rm -rf "$RESUME_DIR"
  setsid bash tools/dist_train.sh $DET 2 "${TOY[@]}" --data-root "$DATA/coco" --work-dir "$RESUME_DIR" \
    --cfg-options "${LOADER[@]}" train_dataloader.batch_size=2 default_hooks.checkpoint.interval=$HALF &
  pid=$!
  until [ -f "$RESUME_DIR/iter_$HALF.pth" ] && [ -f "$RESUME_DIR/last_checkpoint" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "dist_check: the run to kill ended early" >&2; exit 1; }
    sleep 2
  done
  sleep 5  # a few iterations past the checkpoint, then kill the whole process group
  kill -9 -- -"$pid" || true
  wait "$pid" || true
  echo "killed at: $(ls "$RESUME_DIR"/iter_*.pth)"
fi
run env PORT=29511 bash tools/dist_train.sh $DET 2 "${TOY[@]}" --data-root "$DATA/coco" --work-dir "$RESUME_DIR" \
  --resume --cfg-options "${LOADER[@]}" train_dataloader.batch_size=2 default_hooks.checkpoint.interval=$HALF
# 4. the 2-GPU checkpoint on 1 GPU
run python tools/test.py $DET "$WORK/det_2gpu_b2/iter_$ITERS.pth" --toy --toy-size 0 --data-root "$DATA/coco" \
  --work-dir "$WORK/det_2gpu_b2_test_1gpu"
# 5. segmentor on 2 GPUs with SyncBN
run env PORT=29512 bash tools/dist_train.sh $SEG 2 "${TOY[@]}" --data-root "$DATA/ade/ADEChallengeData2016" \
  --work-dir "$WORK/seg_2gpu_syncbn" --cfg-options "${LOADER[@]}" train_dataloader.batch_size=4 sync_bn=torch

[ "${DRY_RUN:-0}" = 1 ] && exit 0
python - "$WORK" "$ITERS" <<'EOF' | tee "$WORK/summary.md"
import glob, json, os, statistics, sys
work, iters = sys.argv[1], int(sys.argv[2])

def records(name):
    files = sorted(glob.glob(os.path.join(work, name, '*', 'vis_data', 'scalars.json')))
    out = []
    for path in files:  # a resumed run continues in a second timestamp folder
        with open(path) as f:
            out += [json.loads(line) for line in f if line.strip()]
    return out

def train(name):
    return {r['iter']: r for r in records(name) if 'loss' in r}

def window_means(name, parts=5):
    t = train(name)
    size = iters // parts
    return [statistics.mean(t[i]['loss'] for i in range(k * size + 1, (k + 1) * size + 1) if i in t)
            for k in range(parts)]

def images_per_s(name, batch):
    t = train(name)
    times = [t[i]['time'] for i in sorted(t) if i > 10]
    return batch / statistics.median(times)

print(f'# 2-GPU check, {iters} iterations per run\n')
print('| run | loss means over fifths of the run |\n|---|---|')
for name in ('det_1gpu_b4', 'det_2gpu_b2', 'det_2gpu_resume', 'seg_2gpu_syncbn'):
    print(f'| {name} | ' + ', '.join(f'{v:.3f}' for v in window_means(name)) + ' |')
one, two = images_per_s('det_1gpu_b2', 2), images_per_s('det_2gpu_b2', 4)
print(f'\nimages/s at batch 2 per GPU: 1 GPU {one:.1f}, 2 GPUs {two:.1f}: scaling efficiency {two / one:.2f}x '
      '(median iteration time after iteration 10, data loading included)')
resumed = sorted(train('det_2gpu_resume'))
print(f'resumed run: iterations {resumed[0]}..{resumed[-1]} logged, '
      f'final checkpoint present: {os.path.isfile(os.path.join(work, "det_2gpu_resume", f"iter_{iters}.pth"))}')
for name in ('det_2gpu_b2', 'det_2gpu_b2_test_1gpu', 'seg_2gpu_syncbn'):
    metrics = [r for r in records(name) if any(k.startswith(('coco/', 'mIoU')) for k in r)]
    if not metrics:
        for path in sorted(glob.glob(os.path.join(work, name, '*', '*.json'))):
            with open(path) as f:
                metrics.append(json.load(f))
    last = metrics[-1] if metrics else {}
    print(f'{name}: ' + ', '.join(f'{k} {v:.4f}' for k, v in last.items() if k.startswith(('coco/bbox_mAP', 'mIoU'))))
EOF
