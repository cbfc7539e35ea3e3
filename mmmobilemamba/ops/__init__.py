"""Kernels of mmmobilemamba behind one public API; models import only these names.

* :func:`selective_scan` (run-time dispatch over mamba-ssm / Triton / PyTorch) and its float64
  twin :func:`selective_scan_reference`; :func:`available_backends` lists what runs on a device,
  ``SCAN_BACKENDS`` every backend name a caller may request (besides ``'auto'``);
* :func:`triton_inference_kernel`: SS2D's fused Triton inference kernels where they apply;
* :func:`load_kernel` / :func:`loaded_kernel`: any optional kernel by name
  (:mod:`mmmobilemamba.ops.kernel_registry`).
"""
from .kernel_registry import load_kernel, loaded_kernel
from .selective_scan import (SCAN_BACKENDS, available_backends, selective_scan, selective_scan_reference,
                             selective_scan_torch, triton_inference_kernel)

__all__ = ['SCAN_BACKENDS', 'selective_scan', 'selective_scan_reference', 'selective_scan_torch', 'available_backends',
           'triton_inference_kernel', 'load_kernel', 'loaded_kernel']
