"""A selective scan built only from ops that ONNX exporters trace with a dynamic sequence length.

The recurrence is the one of :mod:`mmmobilemamba.models.layers.selective_scan`::

    h[t] = a[t] * h[t-1] + x[t],   a[t] = exp(dt[t] * A),   x[t] = dt[t] * B[t] * u[t]
    y[t] = sum_n C[n, t] * h[n, t] + D * u[t]

Sequential loops and Python loops over a length are baked into a traced graph, so the tokens are
padded to a multiple of a fixed ``chunk`` and scanned in two levels whose shapes follow L:

* inside each chunk, ``log2(chunk)`` Hillis-Steele steps (a fixed number: the chunk is a constant);
* across chunks, the state entering chunk ``c`` is a masked matrix product over the chunk ends,
  ``carry[c] = sum_{c' < c} exp(Lambda[c-1] - Lambda[c']) * h_end[c']``, with ``Lambda`` the
  cumulative log-decay at chunk ends. Every exponent is <= 0, so nothing overflows.

Work is O(L log chunk + (L / chunk)^2) per channel and state; with MobileMamba's ``d_state = 1`` the
(batch, channels, states, L) intermediates are the size of the input.
"""
import torch
import torch.nn.functional as F

__all__ = ['selective_scan_exportable', 'chunked_scan_exportable', 'flattened_selective_scan_exportable']

DEFAULT_CHUNK = 16


def _scan_inside_chunks(a: torch.Tensor, x: torch.Tensor, chunk: int):
    """Inclusive scans of ``h[t] = a[t] h[t-1] + x[t]`` inside chunks of the last dim (..., chunk).

    Returns ``(h_local, a_prefix)``: the states with a zero carry-in and the running products of
    ``a`` from the chunk start, both (..., chunk).
    """
    step = 1
    while step < chunk:
        a_before = F.pad(a[..., :-step], (step, 0), value=1.0)
        x_before = F.pad(x[..., :-step], (step, 0), value=0.0)
        x = a * x_before + x
        a = a * a_before
        step *= 2
    return x, a


def chunked_scan_exportable(log_a: torch.Tensor, x: torch.Tensor, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Inclusive scan of ``h[t] = exp(log_a[t]) * h[t-1] + x[t]`` (``h[-1] = 0``) over the last dim.

    Args:
        log_a: (..., L), the log-decays (<= 0 for a stable recurrence).
        x: (..., L), the inputs.
        chunk: a power of two; the tokens are padded to a multiple of it.

    Returns:
        h: (..., L).
    """
    if chunk < 1 or chunk & (chunk - 1):
        raise ValueError(f'chunk must be a power of two, got {chunk}')
    length = x.shape[-1]
    pad = (chunk - length % chunk) % chunk
    log_a = F.pad(log_a, (0, pad))           # padded tokens: a = 1, x = 0
    x = F.pad(x, (0, pad))
    log_a = log_a.reshape(log_a.shape[:-1] + (-1, chunk))  # (..., chunks, chunk)
    x = x.reshape(x.shape[:-1] + (-1, chunk))
    h_local, a_prefix = _scan_inside_chunks(torch.exp(log_a), x, chunk)

    chunk_log_decay = log_a.sum(-1)                       # (..., chunks)
    ends = torch.cumsum(chunk_log_decay, -1)              # Lambda[c]
    # exponent[c, c'] = Lambda[c-1] - Lambda[c'] for c' < c (state leaving chunk c' entering chunk c)
    exponent = (ends - chunk_log_decay)[..., :, None] - ends[..., None, :]
    index = torch.arange(ends.shape[-1], device=ends.device)
    earlier = index[:, None] > index[None, :]
    weights = torch.exp(torch.where(earlier, exponent, torch.full_like(exponent, float('-inf'))))
    carry_in = torch.matmul(weights, h_local[..., -1:])   # (..., chunks, 1)
    h = h_local + a_prefix * carry_in
    return h.flatten(-2)[..., :length]


def selective_scan_exportable(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True,
                              chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """The selective scan of :func:`~mmmobilemamba.models.layers.selective_scan.selective_scan`
    (same arguments and result), as an exportable two-level scan (see the module doc).

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
        dt = F.softplus(dt)
    log_a = dt * A.to(dtype).reshape(groups, -1, states, 1)         # (batch, G, D, N, L)
    x = (dt * u) * B.to(dtype)[:, :, None]
    h = chunked_scan_exportable(log_a, x, chunk)
    y = (h * C.to(dtype)[:, :, None]).sum(3)                        # (batch, G, D, L)
    if D is not None:
        y = y + D.to(dtype).reshape(groups, -1, 1) * u[:, :, :, 0]
    return y.flatten(1, 2)


def flattened_selective_scan_exportable(x: torch.Tensor, x_proj_weight: torch.Tensor,
                                        dt_projs_weight: torch.Tensor, dt_projs_bias: torch.Tensor,
                                        A_logs: torch.Tensor, Ds: torch.Tensor) -> torch.Tensor:
    """:func:`~mmmobilemamba.models.layers.ss2d.flattened_selective_scan` (same arguments and
    result: (B, D, H, W) -> float32 (B, D, H, W), K = 1 or 2 directions) in exportable ops.

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
