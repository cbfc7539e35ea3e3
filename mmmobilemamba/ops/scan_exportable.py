"""A selective scan built only from ops that ONNX exporters trace with a dynamic sequence length.

The recurrence is the one of :mod:`mmmobilemamba.ops.selective_scan`::

    h[t] = a[t] * h[t-1] + x[t],   a[t] = exp(dt[t] * A),   x[t] = dt[t] * B[t] * u[t]
    y[t] = sum_n C[n, t] * h[n, t] + D * u[t]

Loops over a dynamic length would be baked into a traced graph at the traced length, so the scan
is built in levels whose number is fixed but whose shapes follow L:

* level 1 pads the tokens to a multiple of ``chunks[0]`` and runs the recurrence inside every chunk
  at once, one chunk position after the other (``chunks[0]`` is a constant, so the unrolled steps
  are too; each step is one multiply-add over all chunks, (..., n_chunks)), keeping only the state
  at each chunk end;
* those end states form a sequence ``chunks[0]`` times shorter, with one decay per chunk
  (``exp`` of the summed log-decays); the next level scans it the same way with ``chunks[1]``, and so on;
* the last, short sequence is scanned by one masked (n, n) matrix product whose weights are
  ``exp(sum of the log-decays between two positions)``: every exponent is <= 0, nothing overflows;
* with the true state entering every chunk known, a second unrolled pass over the chunk positions
  starts from it and writes every state.

Work is O(L) per channel and state; with MobileMamba's ``d_state = 1`` the (batch, channels,
states, L) intermediates are the size of the input. A log-step (Hillis-Steele) scan inside the
chunks needs about as many graph nodes but a shifted, padded copy of the whole input per step;
ONNX Runtime spent half of an S6 forward at 224x224 in those copies. The softplus of the step size
is written as ``relu(x) + log1p(exp(-|x|))``: ONNX Runtime's ``Softplus`` kernel took 20 ms for one
(1, 640, 1024) tensor on this machine's CPU, the expansion 2.6 ms (same results to 1e-6).
"""
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ['selective_scan_exportable', 'chunked_scan_exportable', 'flattened_selective_scan_exportable']

DEFAULT_CHUNKS = (16, 16)


def _steps(t: torch.Tensor):
    """The chunk positions of (..., n, chunk): ``chunk`` tensors (..., n, 1)."""
    return torch.split(t, 1, dim=-1)


def _chunk_ends(a_steps, x_steps) -> torch.Tensor:
    """State (..., n) at the end of every chunk with a zero carry-in."""
    h = x_steps[0]
    for a_t, x_t in zip(a_steps[1:], x_steps[1:]):
        h = a_t * h + x_t
    return h[..., 0]


def _chunk_states(a_steps, x_steps, carry_in: torch.Tensor) -> torch.Tensor:
    """Every state (..., n, chunk) from the state entering each chunk, ``carry_in`` (..., n)."""
    h = carry_in[..., None]
    states = []
    for a_t, x_t in zip(a_steps, x_steps):
        h = a_t * h + x_t
        states.append(h)
    return torch.cat(states, dim=-1)


def _matrix_scan(log_a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Inclusive scan over the last dim (length n) as one masked (n, n) matrix product.

    ``decay[t, s] = sum_{s < j <= t} log_a[j]`` is a cumulative sum of same-sign terms down each
    column (no cancellation between large partial sums).
    """
    length = log_a.shape[-1]
    index = torch.arange(length, device=log_a.device)
    after = index[:, None] > index[None, :]                              # j > s, indexed [j, s]
    terms = log_a[..., :, None].expand(log_a.shape + (length,))          # [..., j, s] = log_a[j]
    decay = torch.cumsum(torch.where(after, terms, torch.zeros_like(terms)), dim=-2)
    causal = index[:, None] >= index[None, :]
    weights = torch.exp(torch.where(causal, decay, torch.full_like(decay, float('-inf'))))
    return torch.matmul(weights, x[..., None])[..., 0]


def chunked_scan_exportable(log_a: torch.Tensor, x: torch.Tensor,
                            chunks: Sequence[int] = DEFAULT_CHUNKS) -> torch.Tensor:
    """Inclusive scan of ``h[t] = exp(log_a[t]) * h[t-1] + x[t]`` (``h[-1] = 0``) over the last dim.

    Args:
        log_a: (..., L), the log-decays (<= 0 for a stable recurrence).
        x: (..., L), the inputs.
        chunks: chunk length of each level, each >= 2 (see the module doc); ``()`` scans with one
            (L, L) matrix product.

    Returns:
        h: (..., L).
    """
    if not chunks:
        return _matrix_scan(log_a, x)
    chunk = chunks[0]
    if chunk < 2:
        raise ValueError(f'chunk lengths must be >= 2, got {tuple(chunks)}')
    length = x.shape[-1]
    pad = (chunk - length % chunk) % chunk
    log_a = F.pad(log_a, (0, pad))           # padded tokens: a = 1, x = 0
    x = F.pad(x, (0, pad))
    log_a = log_a.reshape(log_a.shape[:-1] + (-1, chunk))  # (..., n, chunk)
    x = x.reshape(x.shape[:-1] + (-1, chunk))
    a_steps, x_steps = _steps(torch.exp(log_a)), _steps(x)
    ends = chunked_scan_exportable(log_a.sum(-1), _chunk_ends(a_steps, x_steps), chunks[1:])  # true end states
    h = _chunk_states(a_steps, x_steps, F.pad(ends[..., :-1], (1, 0)))
    return h.flatten(-2)[..., :length]


def selective_scan_exportable(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True,
                              chunks: Sequence[int] = DEFAULT_CHUNKS) -> torch.Tensor:
    """The selective scan of :func:`~mmmobilemamba.ops.selective_scan`
    (same arguments and result), as an exportable multi-level scan (see the module doc).

    Shapes: u, delta (batch, G*D, L); A (G*D, N); B, C (batch, G, N, L); D, delta_bias (G*D,).
    Returns y (batch, G*D, L) in float32 (float64 for float64 inputs).
    """
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    groups, states = B.shape[1], B.shape[2]
    u = u.to(dtype).unflatten(1, (groups, -1))[:, :, :, None]      # (batch, G, D, 1, L)
    dt = delta.to(dtype).unflatten(1, (groups, -1))[:, :, :, None]
    if delta_bias is not None:
        dt = dt + delta_bias.to(dtype).reshape(groups, -1, 1, 1)
    if delta_softplus:
        dt = F.relu(dt) + torch.log1p(torch.exp(-dt.abs()))  # softplus; see the module doc
    log_a = dt * A.to(dtype).reshape(groups, -1, states, 1)         # (batch, G, D, N, L)
    x = (dt * u) * B.to(dtype)[:, :, None]
    h = chunked_scan_exportable(log_a, x, chunks)
    hc = h * C.to(dtype)[:, :, None]
    y = hc[:, :, :, 0] if states == 1 else hc.sum(3)                # (batch, G, D, L)
    if D is not None:
        y = y + D.to(dtype).reshape(groups, -1, 1) * u[:, :, :, 0]
    return y.flatten(1, 2)


def flattened_selective_scan_exportable(x: torch.Tensor, x_proj_weight: torch.Tensor,
                                        dt_projs_weight: torch.Tensor, dt_projs_bias: torch.Tensor,
                                        A_logs: torch.Tensor, Ds: torch.Tensor, backend: str = 'auto') -> torch.Tensor:
    """:func:`~mmmobilemamba.models.layers.ss2d.flattened_selective_scan` (same arguments and
    result: (B, D, H, W) -> float32 (B, D, H, W), K = 1 or 2 directions) in exportable ops;
    ``backend`` (the model's ``scan_backend``) is accepted and has no effect: there is one form.

    The projections are batched matrix products and the reversed direction a flipped copy, so the
    graph holds MatMul / Slice / elementwise nodes only.
    """
    batch, channels, height, width = x.shape
    directions, _, rank = dt_projs_weight.shape
    states = A_logs.shape[1]
    seq = x.flatten(2).float()
    xs = torch.stack([seq, seq.flip(-1)][:directions], dim=1)                  # (B, K, D, L)
    x_dbl = torch.matmul(x_proj_weight.float(), xs)                            # (B, K, R + 2N, L)
    dts, Bs, Cs = torch.split(x_dbl, [rank, states, states], dim=2)
    dts = torch.matmul(dt_projs_weight.float(), dts)                           # (B, K, D, L)
    ys = selective_scan_exportable(xs.flatten(1, 2), dts.flatten(1, 2), -torch.exp(A_logs.float()),
                                   Bs, Cs, Ds.float(), dt_projs_bias.reshape(-1).float(), True)
    ys = ys.unflatten(1, (directions, channels))
    y = ys[:, 0] + ys[:, 1].flip(-1) if directions == 2 else ys[:, 0]
    return y.reshape(batch, channels, height, width)
