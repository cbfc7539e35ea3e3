#!/usr/bin/env bash
# Distributed evaluation: GPUS processes on this machine (one per GPU; without a GPU, CPU
# processes with gloo), each running tools/test.py --launcher pytorch on a share of the images.
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options...]
#
# Environment: PORT (default 29500), NNODES / NODE_RANK / MASTER_ADDR as in dist_train.sh.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash $0 CONFIG CHECKPOINT GPUS [tools/test.py options...]" >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  tools/test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
