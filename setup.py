"""mmmobilemamba: MobileMamba backbone for MMDetection 3.x and MMSegmentation 1.x.

The OpenMMLab stack (mmcv with compiled ops in particular) is installed by tools/install.sh,
which pins versions seen working together; see README "Install".
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r"__version__ = '([^']+)'", (here / 'mmmobilemamba' / '__init__.py').read_text()).group(1)

setup(
    name='mmmobilemamba',
    version=version,
    description='MobileMamba (CVPR 2025) backbone and necks for MMDetection and MMSegmentation',
    long_description=(here / 'README.md').read_text(encoding='utf-8') if (here / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmmobilemamba', 'mmmobilemamba.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.0',
        'numpy',                   # CPU path pinned to 1.26.4 (constraints); numpy 2 ran on the GPU
        'mmengine>=0.10.0,<1.0',
        'mmcv>=2.0.0,<2.2.0',      # mmdet 3.3.0 and mmseg 1.2.2 refuse mmcv >= 2.2.0
        'mmdet>=3.3.0,<3.4',
        'mmsegmentation>=1.2.2,<1.3',
        'PyWavelets',
        'pycocotools',
        'ftfy', 'regex',           # imported by mmseg's model zoo at import time
    ],
    extras_require={
        'tests': ['pytest', 'pytest-timeout', 'hypothesis', 'ruff'],
        'gpu': ['triton'],           # our fast selective scan; ships with CUDA builds of torch
        'mamba': ['mamba-ssm'],      # optional: mamba-ssm's CUDA kernel (needs nvcc to build)
        'bench': ['timm'],           # reference model in tools/analysis_tools/benchmark.py
        'deploy': ['onnx', 'onnxruntime'],  # tools/deployment/export_onnx.py, CPU benchmark
    },
    package_data={'mmmobilemamba': ['py.typed']},
    zip_safe=False,
)
