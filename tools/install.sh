#!/usr/bin/env bash
# Install mmmobilemamba and its OpenMMLab stack into the active Python environment, GPU or CPU.
#
#   python3 -m venv .venv && . .venv/bin/activate && bash tools/install.sh
#   DRY_RUN=1 bash tools/install.sh        # print what it would do, install nothing
#
# torch  An installed torch is kept as it is: a CUDA build is never swapped for a CPU wheel. With
#        no torch, a machine whose nvidia-smi lists a GPU gets PyPI's default torch==2.13.0 (the
#        CUDA build; install your own CUDA build first if your driver needs another one), any other
#        machine the CPU build, torch==2.13.0+cpu from the PyTorch CPU index (TORCH_CPU_INDEX):
#        PyPI's plain Linux wheel is the multi-GB CUDA build.
# mmcv   2.1.0 with compiled ops (mmdet 3.3.0 / mmseg 1.2.2 need mmcv < 2.2), built once from the
#        PyPI source distribution (or MMCV_SOURCE, e.g. a local mmcv-2.1.0.tar.gz):
#        - CUDA ops (NMS, RoIAlign, ... on the GPU) when torch is a CUDA build that sees a GPU and
#          nvcc is found: FORCE_CUDA=1 and TORCH_CUDA_ARCH_LIST = the compute capabilities of the
#          visible GPUs (e.g. "9.0"; set TORCH_CUDA_ARCH_LIST to build for others);
#        - CPU ops otherwise (-O1 -g0: half the compile time).
#        The wheel is built into MMCV_WHEEL_DIR (default: <pip cache dir>/mmmobilemamba-mmcv), in
#        a folder named after Python, torch, CUDA and the architectures, and installed from there
#        on the next run instead of compiling again. An installed mmcv 2.1.0 that already has the
#        ops this machine needs (e.g. OpenMMLab's prebuilt wheel: mim install mmcv==2.1.0) is kept.
# rest   mmdet, mmsegmentation and this package (editable); versions pinned in
#        requirements/constraints.txt. MAX_JOBS sets the compile jobs (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
CONSTRAINTS=requirements/constraints.txt
# An installed numpy is kept (e.g. numpy 2 beside a CUDA torch; mmcv 2.1.0, mmdet and mmseg ran on
# numpy 2.5.2 on a GPU): only a new install takes the pinned version (the one the CPU path is tested with).
if NUMPY_VERSION=$(python -c "import numpy; print(numpy.__version__)" 2>/dev/null); then
  echo "numpy $NUMPY_VERSION is installed: kept"
  CONSTRAINTS=$(mktemp)
  trap 'rm -f "$CONSTRAINTS"' EXIT
  grep -v '^numpy==' requirements/constraints.txt > "$CONSTRAINTS"
fi
PIP=(python -m pip install --disable-pip-version-check -c "$CONSTRAINTS")
TORCH_VERSION=2.13.0
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
MMCV_VERSION=2.1.0
MMCV_SOURCE=${MMCV_SOURCE:-mmcv==$MMCV_VERSION}
DRY_RUN=${DRY_RUN:-0}

run() {  # print a step; run it unless DRY_RUN=1
  echo "+ $*"
  if [ "$DRY_RUN" != 1 ]; then "$@"; fi
}
fail() { echo "install.sh: $*" >&2; exit 1; }

# 1. Build tooling, then torch. mmcv's setup.py imports pkg_resources (setuptools < 81) and must
#    see torch at build time (--no-build-isolation).
run "${PIP[@]}" -q setuptools wheel numpy
if ! python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "no torch installed and nvidia-smi lists a GPU: PyPI's default (CUDA) build of torch"
    run "${PIP[@]}" -q "torch==$TORCH_VERSION"
  else
    echo "no torch installed and no GPU: the CPU build of torch"
    # torch alone from the CPU index (one lookup there), then its dependencies from PyPI
    run "${PIP[@]}" -q --no-deps --extra-index-url "$TORCH_CPU_INDEX" "torch==$TORCH_VERSION+cpu"
    run "${PIP[@]}" -q "torch==$TORCH_VERSION+cpu"
  fi
fi

# 2. mmcv. Its ops are built for "cuda <version> <arch list>" or "cpu" (a dry run without torch
#    shows the CPU case). A suitable installed mmcv is kept, else the wheel built earlier is
#    installed, else it is built.
read -r TARGET CUDA_VERSION ARCHS < <(python - <<'EOF' 2>/dev/null || echo cpu
import os
import torch
archs = os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip()
if torch.version.cuda and torch.cuda.is_available() and not archs:
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    archs = ';'.join(f'{major}.{minor}' for major, minor in caps)
if torch.version.cuda and archs and os.environ.get('FORCE_CUDA', '1') != '0':
    print('cuda', torch.version.cuda, archs.replace(' ', ';'))
else:
    print('cpu')
EOF
)
TORCH_ID=$(python -c "import torch, sys; print(f'py{sys.version_info[0]}.{sys.version_info[1]}-torch{torch.__version__}')" 2>/dev/null || echo unknown)
if [ "$TARGET" = cuda ]; then
  NVCC=$(python -c "from torch.utils.cpp_extension import CUDA_HOME; print(CUDA_HOME or '')" 2>/dev/null)/bin/nvcc
  [ -x "$NVCC" ] || NVCC=$(command -v nvcc || true)
  [ -n "$NVCC" ] || fail "torch is a CUDA $CUDA_VERSION build and sees a GPU, but nvcc (the CUDA toolkit) was not found,
  so mmcv's CUDA ops (NMS, RoIAlign on the GPU) cannot be built. Fix one of:
  - install the CUDA $CUDA_VERSION toolkit (nvcc) and set CUDA_HOME to it (e.g. /usr/local/cuda), then rerun;
  - install OpenMMLab's prebuilt mmcv for your torch/CUDA pair (README 'GPU install'), then rerun;
  - FORCE_CUDA=0 bash tools/install.sh builds CPU ops only (detectors then cannot run NMS on the GPU)."
  KEY="$TORCH_ID-cuda$CUDA_VERSION-sm${ARCHS//;/_}"
  BUILD_ENV=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$ARCHS")
  echo "mmcv: CUDA $CUDA_VERSION ops for compute capability $ARCHS (nvcc: $NVCC)"
else
  KEY="$TORCH_ID-cpu"
  # mmcv's setup.py builds CUDA ops whenever torch sees a GPU: hide the GPUs from the CPU build
  BUILD_ENV=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES= "CFLAGS=${CFLAGS:--g0 -O1}")
  echo "mmcv: CPU ops"
fi

# Which ops the installed mmcv has: "cuda" where its NMS runs on the GPU (not
# get_compiling_cuda_version(): mmcv 2.1.0 built against CUDA 13 segfaults in it).
HAVE_OPS=$(MMCV_VERSION=$MMCV_VERSION python - <<'EOF' 2>/dev/null || echo none
import os
import mmcv
import torch
from mmcv.ops import nms
assert mmcv.__version__ == os.environ['MMCV_VERSION']
ops = 'cpu'
if torch.cuda.is_available():
    try:
        nms(torch.tensor([[0., 0., 10., 10.]], device='cuda'), torch.tensor([1.], device='cuda'), 0.5)
        ops = 'cuda'
    except RuntimeError:
        pass
print(ops)
EOF
)
WHEEL_DIR="${MMCV_WHEEL_DIR:-$(python -m pip cache dir 2>/dev/null || echo "$HOME/.cache/pip")/mmmobilemamba-mmcv}/$KEY"
if [ "$HAVE_OPS" = cuda ] || [ "$HAVE_OPS" = "$TARGET" ]; then
  echo "mmcv $MMCV_VERSION with $HAVE_OPS ops is installed: kept"
else
  if compgen -G "$WHEEL_DIR/mmcv-$MMCV_VERSION-*.whl" >/dev/null; then
    echo "mmcv: reusing the wheel built earlier in $WHEEL_DIR"
  else
    echo "mmcv: building the wheel into $WHEEL_DIR (minutes; the next run reuses it)"
    # --no-cache-dir: pip's own wheel cache ignores FORCE_CUDA and could hand back a CPU build
    run env MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${BUILD_ENV[@]}" \
      python -m pip wheel --disable-pip-version-check -c "$CONSTRAINTS" -q --no-deps \
      --no-build-isolation --no-cache-dir -w "$WHEEL_DIR" "$MMCV_SOURCE"
  fi
  run "${PIP[@]}" -q --find-links "$WHEEL_DIR" --only-binary mmcv "mmcv==$MMCV_VERSION"
fi

if [ "$DRY_RUN" = 1 ]; then
  echo "+ then mmdet, mmsegmentation and this package (pip install -e .[tests,deploy])"
  exit 0
fi

# 3. mmdet, mmseg and this package (editable), with test tools.
"${PIP[@]}" -q --no-build-isolation -e ".[tests,deploy]"
python -c "import mmcv.ops, mmdet, mmseg, mmmobilemamba; print('installed: mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmmobilemamba', mmmobilemamba.__version__)"
