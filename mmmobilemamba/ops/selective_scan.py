"""Selective scan (the S6 recurrence of Mamba) with one interface and run-time dispatch.

The recurrence, per channel ``d`` and state ``n`` (``g = d // D`` is the channel's group)::

    dt[d, t]   = softplus(delta[d, t] + delta_bias[d])          (softplus if delta_softplus)
    h[d, n, t] = exp(dt[d, t] * A[d, n]) * h[d, n, t-1] + dt[d, t] * B[g, n, t] * u[d, t]
    y[d, t]    = sum_n C[g, n, t] * h[d, n, t] + D[d] * u[d, t]

Shapes (``G`` groups of ``D`` channels, ``N`` states, ``L`` tokens)::

    u, delta      (batch, G*D, L)
    A             (G*D, N)
    B, C          (batch, G, N, L)
    D, delta_bias (G*D,) or None
    returns y     (batch, G*D, L), float32

Implementations, picked by :func:`selective_scan` at run time:

* ``'mamba_ssm'``: mamba-ssm's CUDA kernel (optional extra, CUDA tensors only);
* ``'triton'``: this package's Triton kernel (CUDA tensors, needs no nvcc build);
* ``'torch'``: a parallel (chunked Hillis-Steele) scan in plain PyTorch, for CPU and anything else;
* ``'reference'``: a sequential loop, the float64 yardstick for tests.

``backend='auto'`` (default) takes the first that works for the input, in that order; every backend
returns float32. ``MobileMamba(scan_backend=...)`` chooses per model; the environment variable
``MMMOBILEMAMBA_SCAN_BACKEND`` overrides that choice. A requested kernel that cannot be imported
gives one warning and the next backend. ``'auto'`` on CUDA also warns once where it does not reach
this package's Triton kernels: their import failed (the PyTorch scan is 26-65x slower), or an
installed mamba-ssm takes the scan and SS2D's fused inference kernels are skipped.

Where the backend resolves to ``'triton'``, SS2D has two more Triton kernels for inference, found
with :func:`triton_inference_kernel`: ``'bidirectional_scan'`` (both scan directions in one launch,
no flipped copies) and ``'layer_norm_gate'`` (the output LayerNorm times the SiLU gate); the
kernels themselves are imported by :mod:`mmmobilemamba.ops.kernel_registry`.
"""
import functools
import os
import warnings
from typing import Optional

import torch
import torch.nn.functional as F

from .kernel_registry import LOADED_KERNELS, import_error, load_kernel

__all__ = ['SCAN_BACKENDS', 'selective_scan', 'selective_scan_torch', 'selective_scan_reference',
           'available_backends', 'triton_inference_kernel']

SCAN_BACKENDS = ('mamba_ssm', 'triton', 'torch', 'reference')  # besides 'auto'
_CHUNK = 64


def _discretize(u, delta, A, B, delta_bias, delta_softplus):
    """Return the recurrence coefficients ``a = exp(dt*A)`` and ``b = dt*B*u``, each (batch, G*D, N, L)."""
    batch, channels, length = u.shape
    groups = B.shape[1]
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    B = B.float().repeat_interleave(channels // groups, dim=1)  # (batch, G*D, N, L)
    a = torch.exp(dt[:, :, None, :] * A.float()[None, :, :, None])
    b = (dt * u.float())[:, :, None, :] * B
    return a, b


def _readout(h, u, C, D):
    """``y = sum_n C*h + D*u`` for states ``h`` of shape (batch, G*D, N, L)."""
    channels = u.shape[1]
    C = C.float().repeat_interleave(channels // C.shape[1], dim=1)
    y = (h * C).sum(dim=2)
    if D is not None:
        y = y + D.float()[:, None] * u.float()
    return y


def linear_recurrence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Inclusive scan of ``h[t] = a[t] * h[t-1] + b[t]`` (``h[-1] = 0``) along the last dim.

    Hillis-Steele: log2(L) vectorised steps, each composing every element with the one ``step``
    positions before it, ``(a2, b2) o (a1, b1) = (a2*a1, a2*b1 + b2)``. Only products of the
    ``a``s (all in [0, 1] here) are formed, so it is as stable as the sequential loop.
    """
    length = a.shape[-1]
    step = 1
    while step < length:
        b = torch.cat([b[..., :step], a[..., step:] * b[..., :-step] + b[..., step:]], dim=-1)
        a = torch.cat([a[..., :step], a[..., step:] * a[..., :-step]], dim=-1)
        step *= 2
    return b


def chunked_linear_recurrence(a: torch.Tensor, b: torch.Tensor, chunk: int = _CHUNK) -> torch.Tensor:
    """:func:`linear_recurrence` in two levels: inside chunks, then across chunk ends.

    Work is O(L log chunk + L/chunk log(L/chunk)) instead of O(L log L).
    """
    length = a.shape[-1]
    if length <= chunk:
        return linear_recurrence(a, b)
    pad = (-length) % chunk
    if pad:
        a = F.pad(a, (0, pad), value=1.0)
        b = F.pad(b, (0, pad), value=0.0)
    a = a.unflatten(-1, (-1, chunk))
    b = b.unflatten(-1, (-1, chunk))
    a_prefix = torch.cumprod(a, dim=-1)                     # product of a inside the chunk up to t
    h_local = linear_recurrence(a, b)                       # states with a zero carry-in
    carry = linear_recurrence(a_prefix[..., -1], h_local[..., -1])  # state at each chunk end
    carry_in = F.pad(carry[..., :-1], (1, 0))               # state entering each chunk
    h = h_local + a_prefix * carry_in[..., None]
    return h.flatten(-2)[..., :length]


def selective_scan_torch(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """Parallel selective scan in plain PyTorch (any device, differentiable); see module doc."""
    a, b = _discretize(u, delta, A, B, delta_bias, delta_softplus)
    # The zero initial state enters explicitly, so a[..., 0] (hence A) stays in the autograd graph
    # even for one-token maps: DDP needs every parameter to get a (here zero) gradient.
    b = torch.cat([a[..., :1] * torch.zeros_like(b[..., :1]) + b[..., :1], b[..., 1:]], dim=-1)
    h = chunked_linear_recurrence(a, b)
    return _readout(h, u, C, D)


def selective_scan_reference(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """Sequential loop over tokens; slow, exact. Computes in the input dtype (use float64)."""
    dtype = u.dtype
    channels = u.shape[1]
    groups = B.shape[1]
    dt = delta + delta_bias[:, None] if delta_bias is not None else delta
    if delta_softplus:
        dt = F.softplus(dt)
    B = B.repeat_interleave(channels // groups, dim=1)
    C = C.repeat_interleave(channels // groups, dim=1)
    h = torch.zeros(u.shape[0], channels, A.shape[1], dtype=dtype, device=u.device)
    ys = []
    for t in range(u.shape[-1]):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * B[..., t]
        ys.append((h * C[..., t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D[:, None] * u
    return y


def available_backends(device: torch.device) -> list:
    """The backends that can run on ``device``, in ``'auto'`` preference order."""
    found = []
    if device.type == 'cuda':
        found += [name for name in ('mamba_ssm', 'triton') if load_kernel(name) is not None]
    return found + ['torch', 'reference']


@functools.lru_cache(maxsize=None)
def _warn_once(message: str):
    warnings.warn(message, RuntimeWarning, stacklevel=3)


_HOW_TO_CHOOSE = ("choose explicitly with MobileMamba(scan_backend='triton'|'mamba_ssm'|'torch') "
                  "(or the environment variable MMMOBILEMAMBA_SCAN_BACKEND)")


def _warn_auto_misses_triton(chosen: str):
    """One warning: ``'auto'`` on CUDA resolved to ``chosen`` instead of this package's Triton kernels."""
    if chosen == 'mamba_ssm':
        _warn_once(f"selective-scan backend 'auto': mamba-ssm is installed, so its CUDA kernel runs the "
                   f"scan and SS2D's fused Triton inference kernels (both directions in one launch, "
                   f"LayerNorm x gate) are skipped; {_HOW_TO_CHOOSE}.")
    else:
        reason = import_error('triton') or 'not importable'
        _warn_once(f"selective-scan backend 'auto': this package's Triton kernel could not be imported "
                   f"({reason}), so CUDA tensors take the pure-PyTorch scan ({chosen!r}, 26-65x slower). "
                   f"Install triton (it ships with CUDA builds of torch) or {_HOW_TO_CHOOSE}.")


@torch.compiler.assume_constant_result
def _resolve(backend: str, device_type: str) -> str:
    """The backend to run for ``device_type`` tensors. Under ``torch.compile`` it is evaluated once,
    at trace time (the imports it tries would otherwise break the graph)."""
    requested = os.environ.get('MMMOBILEMAMBA_SCAN_BACKEND') or backend or 'auto'  # empty variable: unset
    if requested not in SCAN_BACKENDS + ('auto',):
        raise ValueError(f'unknown selective-scan backend {requested!r}; choose one of '
                         f'{("auto",) + SCAN_BACKENDS} (argument or MMMOBILEMAMBA_SCAN_BACKEND)')
    usable = available_backends(torch.device(device_type))
    if requested == 'auto':
        if device_type == 'cuda' and usable[0] != 'triton':
            _warn_auto_misses_triton(usable[0])
        return usable[0]
    if requested in usable:
        return requested
    _warn_once(f'selective-scan backend {requested!r} is not available for {device_type} tensors '
               f'(needs CUDA and the kernel installed); falling back to {usable[0]!r}.')
    return usable[0]


def _reference_backend(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """The sequential reference as a dispatch backend: computed in float64, returned in float32."""
    wide = [None if t is None else t.double() for t in (u, delta, A, B, C, D, delta_bias)]
    return selective_scan_reference(*wide, delta_softplus=delta_softplus).float()


_IMPLEMENTATIONS = {'torch': selective_scan_torch, 'reference': _reference_backend}


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: Optional[torch.Tensor] = None,
                   delta_bias: Optional[torch.Tensor] = None, delta_softplus: bool = True,
                   backend: str = 'auto') -> torch.Tensor:
    """Run the selective scan on the best backend for ``u``'s device; see the module doc."""
    if u.dim() != 3 or B.dim() != 4 or u.shape[1] % B.shape[1]:
        raise ValueError(f'selective_scan expects u (batch, G*D, L) and B (batch, G, N, L) with '
                         f'G dividing G*D; got u {tuple(u.shape)}, B {tuple(B.shape)}')
    name = _resolve(backend, u.device.type)
    fn = _IMPLEMENTATIONS.get(name) or LOADED_KERNELS[name]
    return fn(u, delta, A, B, C, D, delta_bias, delta_softplus)


@torch.compiler.assume_constant_result
def _inference_kernel_enabled(name: str, backend: str, device_type: str) -> bool:
    return _resolve(backend, device_type) == 'triton' and load_kernel(name) is not None


def triton_inference_kernel(name: str, *tensors: torch.Tensor, backend: str = 'auto'):
    """The Triton inference kernel ``name`` (``'bidirectional_scan'`` or ``'layer_norm_gate'``) for
    these tensors, or None where it does not apply: the backend resolves to something other than
    ``'triton'`` (CPU tensors, mamba-ssm installed and ``'auto'``, ...) or gradients are wanted."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    if not _inference_kernel_enabled(name, backend, tensors[0].device.type):
        return None
    return LOADED_KERNELS[name]
