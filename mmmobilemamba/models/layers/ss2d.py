"""Bidirectional 2-D selective scan (the global branch of WTE-Mamba).

A VMamba-style SS2D block in channel-first layout with two scan directions (the flattened map
forwards and reversed), ``d_state`` states and the release's "v2" initialisation. Parameter names
follow the official MobileMamba release (``in_proj``, ``conv2d``, ``x_proj_weight``,
``dt_projs_weight``, ``dt_projs_bias``, ``A_logs``, ``Ds``, ``out_norm``, ``out_proj``).
"""
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from mmmobilemamba.ops import selective_scan, triton_inference_kernel

from .conv_bn import ConvBN

__all__ = ['LayerNorm2d', 'BiSS2D', 'flattened_selective_scan', 'project_directions', 'conv_projections',
           'init_scan_parameters']

# most tokens one GEMM of project_directions' weight gradient reduces over
_TOKENS_PER_WEIGHT_GEMM = 512


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def flattened_selective_scan(x: torch.Tensor, x_proj_weight: torch.Tensor,
                             dt_projs_weight: torch.Tensor, dt_projs_bias: torch.Tensor,
                             A_logs: torch.Tensor, Ds: torch.Tensor, backend: str = 'auto') -> torch.Tensor:
    """Selective scan over the row-major flattened map, (B, D, H, W) -> float32 (B, D, H, W).

    With K = 1 direction the map is scanned forwards; with K = 2 forwards and reversed, and the
    two outputs are summed (the release's bidirectional "v052d" scan). For K = 2 inference on CUDA
    both directions run in one fused kernel (``triton_inference_kernel('bidirectional_scan')``);
    with ``MMMOBILEMAMBA_SS2D_CONV_PROJ=1`` the scan inputs come from :func:`conv_projections`.

    Args:
        x_proj_weight: (K, R + 2N, D) input-dependent projections to (dt, B, C).
        dt_projs_weight: (K, D, R); dt_projs_bias: (K, D).
        A_logs: (K*D, N), ``A = -exp(A_logs)``; Ds: (K*D,) skip weights.
        backend: the selective-scan backend (``selective_scan``'s ``backend``).
    """
    batch, channels, height, width = x.shape
    length = height * width
    directions, _, rank = dt_projs_weight.shape
    if directions not in (1, 2):
        raise ValueError(f'flattened_selective_scan supports 1 or 2 directions, got {directions}')
    states = A_logs.shape[1]
    seq = x.flatten(2)
    A = -torch.exp(A_logs.float())
    fused = (triton_inference_kernel('bidirectional_scan', seq, x_proj_weight, dt_projs_weight,
                                     dt_projs_bias, A_logs, Ds, backend=backend) if directions == 2 else None)
    if fused is not None:  # projections of the un-flipped sequence; direction 1 is read backwards
        x_dbl = torch.einsum('bdl,kcd->bkcl', seq, x_proj_weight.to(seq.dtype))
        y = fused(seq, x_dbl, dt_projs_weight, A, Ds.float(), dt_projs_bias.reshape(-1).float())
        return y.view(batch, channels, height, width)
    if conv_projections_enabled():
        xs, dts, Bs, Cs = conv_projections(seq, x_proj_weight, dt_projs_weight, rank, states)
    else:
        xs = torch.stack([seq, seq.flip(-1)][:directions], dim=1)             # (B, K, D, L)
        x_dbl = project_directions(xs, x_proj_weight)
        dts, Bs, Cs = torch.split(x_dbl, [rank, states, states], dim=2)
        dts = project_directions(dts, dt_projs_weight)
    ys = selective_scan(xs.reshape(batch, directions * channels, length),
                        dts.reshape(batch, directions * channels, length),
                        A, Bs, Cs, Ds.float(),
                        dt_projs_bias.reshape(-1).float(), delta_softplus=True, backend=backend)
    ys = ys.view(batch, directions, channels, length)
    y = ys[:, 0] + ys[:, 1].flip(-1) if directions == 2 else ys[:, 0]
    return y.view(batch, channels, height, width)


def project_directions(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-direction channel projection ``einsum('bkdl,kcd->bkcl')``: (B, K, D, L) x (K, C, D) ->
    (B, K, C, L), in ``x``'s dtype (autocast's under autocast).

    The weight gradient is a (K, C, D) reduction over all B*L tokens. As one GEMM per direction
    (einsum's backward) cuBLAS gets few output tiles and one long reduction loop each. Here the
    tokens are cut into chunks of at most 512 and the chunks' products summed: many GEMMs in one
    batched call. On an H200 that took S6's trunk step at 4x768x1280 fp32 from 18.2 to 17.0 ms of
    kernel time (13.2 to 11.8 ms compiled). Values are einsum's up to float rounding.
    """
    if torch.is_grad_enabled() and weight.requires_grad:
        return _ProjectDirections.apply(x, weight)
    return torch.einsum('bkdl,kcd->bkcl', x, weight.to(x.dtype))


def _token_chunk(length: int) -> int:
    """Tokens per GEMM of the weight gradient: ``length`` itself up to ``_TOKENS_PER_WEIGHT_GEMM``,
    else its largest divisor up to that (whole ``length`` if that divisor is below a quarter of it:
    tiny chunks would make a partial product per few tokens)."""
    if length <= _TOKENS_PER_WEIGHT_GEMM:
        return length
    chunk = next(size for size in range(_TOKENS_PER_WEIGHT_GEMM, 0, -1) if length % size == 0)
    return chunk if 4 * chunk >= _TOKENS_PER_WEIGHT_GEMM else length


def _weight_gradient(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``einsum('bkcl,bkdl->kcd', grad, x)`` as batched GEMMs over token chunks, then a sum.

    grad (B, K, C, L), x (B, K, D, L) -> (K, C, D); half-precision products are summed in float32."""
    batch, directions, channels, length = grad.shape
    chunk = _token_chunk(length)
    chunks = length // chunk
    grad = grad.reshape(batch, directions, channels, chunks, chunk).transpose(2, 3)   # (B, K, S, C, l)
    x = x.reshape(batch, directions, -1, chunks, chunk).permute(0, 1, 3, 4, 2)         # (B, K, S, l, D)
    partial = torch.matmul(grad, x)
    return partial.sum(dim=(0, 2), dtype=torch.promote_types(partial.dtype, torch.float32))


class _ProjectDirections(torch.autograd.Function):
    """:func:`project_directions` with :func:`_weight_gradient` in its backward."""

    @staticmethod
    @torch.amp.custom_fwd(device_type='cuda')
    def forward(ctx, x, weight):
        weight = weight.to(x.dtype)
        ctx.save_for_backward(x, weight)
        return torch.einsum('bkdl,kcd->bkcl', x, weight)

    @staticmethod
    @torch.amp.custom_bwd(device_type='cuda')
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.to(x.dtype)
        grad_x = torch.einsum('bkcl,kcd->bkdl', grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, _weight_gradient(grad, x)


def conv_projections_enabled() -> bool:
    """Whether SS2D computes its scan inputs with :func:`conv_projections` (environment variable
    ``MMMOBILEMAMBA_SS2D_CONV_PROJ=1``; read at every call, so one process can compare both)."""
    return os.environ.get('MMMOBILEMAMBA_SS2D_CONV_PROJ', '0') == '1'


def conv_projections(seq: torch.Tensor, x_proj_weight: torch.Tensor, dt_projs_weight: torch.Tensor,
                     rank: int, states: int):
    """Scan inputs of both directions from 1x1 convolutions of the un-flipped sequence.

    The einsum form's values (to float32 rounding; to TF32 rounding where cuDNN uses TF32), with
    fewer and cheaper launches: direction 1 scans the reversed sequence, so its (dt, B, C) are the reversed
    projections of ``seq`` (one conv for both directions, then only the R + 2N projected channels
    are flipped, not the D input channels); the dt projection of both directions is one grouped conv
    whose weight has zero columns for the B and C rows. As convolutions they run on cuDNN, which
    (``torch.backends.cudnn.allow_tf32``, on by default) uses TF32 tensor cores for float32 as in
    every other convolution of the block; the einsums are float32 GEMMs without tensor cores (while
    ``torch.backends.cuda.matmul.allow_tf32`` is off, PyTorch's default), and the weight gradients of
    their small (R + 2N) x D and D x R weights are long reductions over all tokens.

    Args:
        seq: (B, D, L); x_proj_weight (K, R + 2N, D); dt_projs_weight (K, D, R).

    Returns:
        xs (B, K*D, L), dts (B, K*D, L), Bs and Cs (B, K, N, L) (strided views).
    """
    batch, channels, length = seq.shape
    directions, proj, _ = x_proj_weight.shape
    x_dbl = F.conv1d(seq, x_proj_weight.reshape(directions * proj, channels, 1).to(seq.dtype))  # (B, K*P, L)
    if directions == 2:
        x_dbl = torch.cat([x_dbl[:, :proj], x_dbl[:, proj:].flip(-1)], dim=1)
        xs = torch.cat([seq, seq.flip(-1)], dim=1)
    else:
        xs = seq
    dt_weight = F.pad(dt_projs_weight, (0, 2 * states)).reshape(directions * channels, proj, 1)
    dts = F.conv1d(x_dbl, dt_weight.to(x_dbl.dtype), groups=directions)                       # (B, K*D, L)
    x_dbl = x_dbl.view(batch, directions, proj, length)
    return xs, dts, x_dbl[:, :, rank:rank + states], x_dbl[:, :, rank + states:]


def init_scan_parameters(module: nn.Module, channels: int, rank: int, d_state: int, directions: int):
    """Create the scan parameters on ``module`` with the release's "v2" initialisation."""
    bound = channels ** -0.5  # nn.Linear's default init range for the (dt, B, C) projections
    module.x_proj_weight = nn.Parameter(
        torch.empty(directions, rank + 2 * d_state, channels).uniform_(-bound, bound))
    module.dt_projs_weight = nn.Parameter(0.1 * torch.rand(directions, channels, rank))
    module.dt_projs_bias = nn.Parameter(0.1 * torch.rand(directions, channels))
    module.A_logs = nn.Parameter(torch.zeros(directions * channels, d_state))
    module.Ds = nn.Parameter(torch.ones(directions * channels))


class BiSS2D(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): gated bidirectional selective scan.

    ``in_proj`` (1x1 Conv-BN to 2*D, D = ssm_ratio*C) splits into the scanned path (depthwise
    3x3 conv, SiLU, bidirectional :func:`flattened_selective_scan`, LayerNorm) and a SiLU gate; their
    product goes through ``out_proj`` (1x1 Conv-BN back to C). For eager inference on CUDA the norm
    and gate run in one kernel (``triton_inference_kernel('layer_norm_gate')``). ``scan_backend``
    picks the selective-scan backend (set by ``MobileMamba(scan_backend=...)``).
    """

    def __init__(self, channels: int, d_state: int = 1, ssm_ratio: float = 2.0, d_conv: int = 3,
                 scan_backend: str = 'auto'):
        super().__init__()
        self.scan_backend = scan_backend
        inner = int(ssm_ratio * channels)
        rank = math.ceil(channels / 16)
        self.in_proj = ConvBN(channels, 2 * inner)
        self.act = nn.SiLU()
        self.conv2d = nn.Conv2d(inner, inner, d_conv, padding=(d_conv - 1) // 2, groups=inner, bias=True)
        init_scan_parameters(self, inner, rank, d_state, directions=2)
        self.out_norm = LayerNorm2d(inner)
        self.out_proj = ConvBN(inner, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.in_proj(x).chunk(2, dim=1)
        x = self.act(self.conv2d(x))
        y = flattened_selective_scan(x, self.x_proj_weight, self.dt_projs_weight,
                                     self.dt_projs_bias, self.A_logs, self.Ds, self.scan_backend)
        return self.out_proj(self.norm_and_gate(y, gate, x.dtype))

    def norm_and_gate(self, y: torch.Tensor, gate: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``out_norm(y) * silu(gate)`` in ``dtype``; y float32 (B, D, H, W), gate (B, D, H, W)."""
        norm = self.out_norm
        # under torch.compile, inductor fuses these ops with their neighbours: faster than our kernel
        fused = (None if torch.compiler.is_compiling()
                 else triton_inference_kernel('layer_norm_gate', y, gate, norm.weight, norm.bias,
                                              backend=self.scan_backend))
        if fused is not None:
            return fused(y.flatten(2), gate.flatten(2), norm.weight, norm.bias, norm.eps, dtype).view(gate.shape)
        return norm(y).to(dtype) * self.act(gate)
