#!/usr/bin/env bash
# The main job end to end on generated data, on CPU, in a few minutes:
#   1. tools/dataset_converters/make_toy_data.py writes data/toy/ (COCO-format shapes, no download);
#   2. tools/train.py trains RetinaNet + MobileMamba-S6 (configs/det/retinanet_mobilemamba_s6.py,
#      --toy preset) for ITERS iterations, logging loss / lr / ETA every iteration, then
#      evaluates on the toy val set (COCO box mAP from mmdet's CocoMetric) and saves a checkpoint;
#   3. tools/test.py loads that checkpoint into a fresh runner and evaluates it again.
#
#   bash tools/quickstart.sh                  # ITERS=200 by default
#   ITERS=20 WORK_DIR=/tmp/qs bash tools/quickstart.sh
#   VERBOSE=1 bash tools/quickstart.sh        # also print the config dump and per-parameter lr/decay lines
#
# Without pretrained/mobilemamba_s6.pth the backbone starts from scratch (with it, from ImageNet).
# The full logs are in $WORK_DIR/<timestamp>/<timestamp>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=configs/det/retinanet_mobilemamba_s6.py
ITERS=${ITERS:-200}
WORK_DIR=${WORK_DIR:-work_dirs/quickstart}
start=$(date +%s)

# mmengine prints the whole config and one line per parameter group at start-up; hide those here
# (they stay in the log file) unless VERBOSE=1.
quiet() {
  if [ "${VERBOSE:-0}" = 1 ]; then cat; return; fi
  awk '
    /^[0-9][0-9]\/[0-9][0-9] [0-9:]+ - mmengine - / { skip = 0 }
    / - mmengine - INFO - (Config:|Hooks will be executed|$)/ { skip = 1 }
    /paramwise_options --/ { next }
    !skip { print; fflush() }'
}
step() { printf '\n=== [%ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

step "1/3 toy data: python tools/dataset_converters/make_toy_data.py"
python tools/dataset_converters/make_toy_data.py

step "2/3 train $CONFIG for $ITERS iterations on CPU (--toy), then evaluate"
python tools/train.py "$CONFIG" --toy --toy-iters "$ITERS" --work-dir "$WORK_DIR" 2>&1 | quiet
CKPT="$WORK_DIR/iter_$ITERS.pth"
[ -f "$CKPT" ] || { echo "quickstart: expected checkpoint $CKPT was not written" >&2; exit 1; }

step "3/3 evaluate the saved checkpoint: python tools/test.py $CONFIG $CKPT --toy"
python tools/test.py "$CONFIG" "$CKPT" --toy --work-dir "$WORK_DIR" 2>&1 | quiet

step "done in $(( $(date +%s) - start )) s"
echo "checkpoint: $CKPT"
echo "logs:       $WORK_DIR/*/*.log (training + test), metrics: $WORK_DIR/*/*.json"
echo "next:       README section 'Use MobileMamba in your own configs'; real data: tools/train.py CONFIG --data-root DIR"
