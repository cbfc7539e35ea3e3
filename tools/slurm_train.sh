#!/usr/bin/env bash
# Distributed training under Slurm: srun starts one task per GPU, each running
# tools/train.py --launcher slurm (mmengine reads the rank, world size and master node from
# Slurm's variables).
#
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options...]
#   GPUS=16 bash tools/slurm_train.sh gpu r_s6 configs/det/retinanet_mobilemamba_s6.py work_dirs/r_s6
#   DRY_RUN=1 bash tools/slurm_train.sh gpu r_s6 CONFIG WORK_DIR     # print the srun command only
#
# Environment:
#   GPUS           total GPUs = tasks (default 8)
#   GPUS_PER_NODE  GPUs per node (default 8, at most GPUS)
#   CPUS_PER_TASK  CPU cores per task, for data loading (default 5)
#   PORT           master port (default 29500; another for a second job on the same nodes)
#   SRUN_ARGS      more srun options, e.g. "--quotatype=auto" or "--time=24:00:00"
#   DRY_RUN=1      print the command instead of running it
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  usage
  exit 0
fi
if [ $# -lt 4 ]; then
  echo "error: expected PARTITION JOB_NAME CONFIG WORK_DIR, got $# argument(s)" >&2
  usage >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
if [ "$GPUS_PER_NODE" -gt "$GPUS" ]; then
  GPUS_PER_NODE=$GPUS
fi
cd "$(dirname "$0")/.."

# SRUN_ARGS is split on spaces on purpose (several srun options in one variable)
# shellcheck disable=SC2206
cmd=(srun -p "$PARTITION" --job-name="$JOB_NAME" --gres="gpu:$GPUS_PER_NODE" --ntasks="$GPUS"
     --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1
     ${SRUN_ARGS:-}
     python -u tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --launcher slurm "$@")
if [ "${DRY_RUN:-0}" = 1 ]; then
  echo "MASTER_PORT=${PORT:-29500} ${cmd[*]}"
  exit 0
fi
MASTER_PORT=${PORT:-29500} exec "${cmd[@]}"
