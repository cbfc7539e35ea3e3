"""The optional kernels of this package, imported on first request.

Each kernel is looked up by name; one that cannot be imported (no CUDA build of mamba-ssm, no
Triton, a broken install) is None, so callers fall back to PyTorch code:

* ``'mamba_ssm'``: mamba-ssm's CUDA selective scan, same contract as
  :func:`mmmobilemamba.ops.selective_scan_reference`;
* ``'triton'``: :func:`mmmobilemamba.ops.triton_selective_scan.selective_scan_triton`;
* ``'bidirectional_scan'``: SS2D's two scan directions in one launch (inference);
* ``'layer_norm_gate'``: SS2D's output LayerNorm times the SiLU gate (inference);
* ``'depthwise_conv'``: the deploy mode's depthwise convolution with fused epilogues.
"""
import functools

__all__ = ['KERNEL_NAMES', 'LOADED_KERNELS', 'import_error', 'load_kernel', 'loaded_kernel']

KERNEL_NAMES = ('mamba_ssm', 'triton', 'bidirectional_scan', 'layer_norm_gate', 'depthwise_conv')

# name -> function, filled by load_kernel; read with a plain dict lookup on the hot path
# (torch.compile traces a dict lookup, not an lru_cache call)
LOADED_KERNELS = {}
_IMPORT_ERRORS = {}  # name -> 'ExceptionType: message' of a kernel whose import failed


def _import_kernel(name: str):
    if name == 'mamba_ssm':
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        def run(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
            return selective_scan_fn(u, delta, A, B, C, D, None, delta_bias, delta_softplus).float()
        return run
    if name == 'triton':
        from .triton_selective_scan import selective_scan_triton
        return selective_scan_triton
    if name == 'bidirectional_scan':
        from .triton_bidirectional_scan import bidirectional_scan_triton
        return bidirectional_scan_triton
    if name == 'layer_norm_gate':
        from .triton_layer_norm_gate import layer_norm_gate_triton
        return layer_norm_gate_triton
    if name == 'depthwise_conv':
        from .triton_depthwise_conv import depthwise_conv_triton
        return depthwise_conv_triton
    raise ValueError(f'unknown kernel {name!r}; choose one of {KERNEL_NAMES}')


@functools.lru_cache(maxsize=None)
def load_kernel(name: str):
    """Import the kernel ``name``; return its function, or None where it cannot be imported."""
    if name not in KERNEL_NAMES:
        return None
    try:
        fn = _import_kernel(name)
    except Exception as err:  # ImportError, or a broken build that fails at import time
        _IMPORT_ERRORS[name] = f'{type(err).__name__}: {err}'
        return None
    LOADED_KERNELS[name] = fn
    return fn


def loaded_kernel(name: str):
    """The kernel ``name`` if :func:`load_kernel` has imported it, else None (never imports)."""
    return LOADED_KERNELS.get(name)


def import_error(name: str):
    """Why :func:`load_kernel` could not import ``name`` ('ExceptionType: message'), or None."""
    return _IMPORT_ERRORS.get(name)
