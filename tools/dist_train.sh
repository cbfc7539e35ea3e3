#!/usr/bin/env bash
# Distributed training: GPUS processes on this machine (one per GPU; on a machine without a GPU,
# CPU processes talking through gloo), each running tools/train.py --launcher pytorch.
#
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py options...]
#   bash tools/dist_train.sh configs/det/retinanet_mobilemamba_s6.py 8 --work-dir work_dirs/r_s6
#
# Environment: PORT (default 29500; pick another for a second job on the same machine),
# NNODES / NODE_RANK / MASTER_ADDR for several machines (run the script on each).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash $0 CONFIG GPUS [tools/train.py options...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  tools/train.py "$CONFIG" --launcher pytorch "$@"
