#!/usr/bin/env bash
# Install mmmobilemamba and its OpenMMLab stack into the active Python environment (CPU build).
#
#   python3 -m venv .venv && . .venv/bin/activate && bash tools/install.sh
#
# mmcv has no prebuilt wheel for this platform, so its compiled ops (nms, roi_align, ...) are built
# from the PyPI source distribution once (about 5 minutes on 2 cores with the flags below); pip
# keeps the built wheel in its cache (~/.cache/pip/wheels) and later installs reuse it in seconds.
# Versions are pinned in requirements/constraints.txt (mmdet 3.3.0 / mmseg 1.2.2 need mmcv < 2.2).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=(python -m pip install --disable-pip-version-check -c requirements/constraints.txt)

# 1. Build tooling and torch. mmcv's setup.py imports pkg_resources (setuptools < 81) and must see
#    torch at build time (--no-build-isolation). On a CPU machine take the CPU wheel of torch.
"${PIP[@]}" -q setuptools wheel numpy
python -c "import torch" 2>/dev/null || "${PIP[@]}" -q "torch==2.13.0"

# 2. mmcv with CPU ops from source (or pip's cached wheel). -O1 -g0 halves the compile time.
MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" CFLAGS="${CFLAGS:--g0 -O1}" \
  "${PIP[@]}" -q --no-build-isolation mmcv

# 3. mmdet, mmseg and this package (editable), with test tools.
"${PIP[@]}" -q --no-build-isolation -e ".[tests,deploy]"
python -c "import mmcv.ops, mmdet, mmseg, mmmobilemamba; print('installed: mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmmobilemamba', mmmobilemamba.__version__)"
