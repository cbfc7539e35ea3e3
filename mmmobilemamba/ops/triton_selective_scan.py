"""Selective scan (S6 recurrence) as Triton kernels, forward and backward.

Same contract as :func:`mmmobilemamba.ops.selective_scan_reference`::

    u, delta (batch, G*D, L);  A (G*D, N);  B, C (batch, G, N, L);  D, delta_bias (G*D,) or None
    dt = softplus(delta + delta_bias);  h_t = exp(dt*A) * h_{t-1} + dt*B*u;  y = sum_n C*h + D*u

Output is float32; half-precision inputs are read as they are and all arithmetic is float32.

Layout of the work: one program per (batch, group, block of ``BLOCK_D`` channels). Each program
walks the sequence in chunks of ``BLOCK_T`` tokens. Inside a chunk the tile holds one row per
(channel, state) pair; the linear recurrence of a chunk is one ``tl.associative_scan`` over the
token axis with the pair operator ``(a1, b1) o (a2, b2) = (a1*a2, a2*b1 + b2)``, and the state
entering the chunk is added afterwards as ``prod(a) * h_in``. The forward pass stores the state at
every chunk end (``batch x G*D x N x n_chunks`` floats) when gradients are wanted.

The backward pass walks the chunks in reverse. For each chunk it rebuilds the states from the
stored entry state, then scans the adjoint ``g_t = C_t*dy_t + a_{t+1}*g_{t+1}`` backwards (the
reverse associative scan with the same operator), taking ``a_{t+1}`` from a one-token shifted load
of ``delta``. With ``a_t*h_{t-1} = h_t - dt_t*B_t*u_t`` no shifted state is needed:

    du     = D*dy + dt * sum_n g*B
    ddt    = u * sum_n g*B + sum_n g*(h - dt*B*u)*A
    dA     = sum_{batch,t} g*dt*(h - dt*B*u)
    dB, dC = sum_{channels of the group} g*dt*u,  dy*h
    dD     = sum_{batch,t} dy*u;   ddelta = ddt * sigmoid(delta + delta_bias)

Per-program partial sums (over a channel block for dB/dC, over tokens for dA/dD/d(delta_bias))
are written to scratch buffers and reduced with torch, so the result is deterministic.
"""
import torch
import triton
import triton.language as tl

from ._common import (LOG2E, TUNING, forward_block_t, launch_config, pair_combine, scan_chunk, softplus,
                      tile_offsets)

__all__ = ['selective_scan_triton']


@triton.jit
def _program_ids():
    """(batch, group, channel block) of this program in the (batch, G, channel blocks) grid, and G."""
    return tl.program_id(0).to(tl.int64), tl.program_id(1), tl.program_id(2), tl.num_programs(1)


@triton.jit
def _load_channel_parameters(A_ptr, D_ptr, bias_ptr, ch, offs_n, s_Ad, mask_d, mask_dn,
                             HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_D: tl.constexpr):
    """A (BLOCK_D, NP), delta_bias and D (BLOCK_D,) of channels ``ch`` in float32 (zeros where absent)."""
    A = tl.load(A_ptr + ch[:, None] * s_Ad + offs_n[None, :], mask=mask_dn, other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + ch, mask=mask_d, other=0.0).to(tl.float32)
    else:
        bias = tl.zeros([BLOCK_D], dtype=tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + ch, mask=mask_d, other=0.0).to(tl.float32)
    else:
        Dv = tl.zeros([BLOCK_D], dtype=tl.float32)
    return A, bias, Dv


@triton.jit
def _load_dt(delta_ptr, offs, mask, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """Returns (dt, pre) where pre = delta + bias (the softplus argument) and dt = 0 off the mask."""
    pre = tl.load(delta_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        pre = pre + bias[:, None]
    if SOFTPLUS:
        dt = softplus(pre)
    else:
        dt = pre
    dt = tl.where(mask, dt, 0.0)
    return dt, pre


@triton.jit
def _scan_fwd_kernel(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, y_ptr, ckpt_ptr,
        DG, L, N, n_chunks,
        s_ub, s_ud, s_db, s_dd, s_Ad, s_Bb, s_Bg, s_Bn, s_Cb, s_Cg, s_Cn,
        HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, SAVE_CKPT: tl.constexpr,
        NP: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr):
    pid_b, pid_g, pid_k, G = _program_ids()
    ROWS: tl.constexpr = BLOCK_D * NP

    offs_d, offs_n, offs_t0, mask_d, mask_n = tile_offsets(pid_k, DG, N, NP, BLOCK_D, BLOCK_T)
    ch = pid_g * DG + offs_d                                       # global channel index
    u_row = u_ptr + pid_b * s_ub + ch.to(tl.int64) * s_ud           # (BLOCK_D,) pointers
    d_row = delta_ptr + pid_b * s_db + ch.to(tl.int64) * s_dd
    y_row = y_ptr + (pid_b * G * DG + ch) * L
    B_row = B_ptr + pid_b * s_Bb + pid_g * s_Bg + offs_n * s_Bn     # (NP,)
    C_row = C_ptr + pid_b * s_Cb + pid_g * s_Cg + offs_n * s_Cn

    mask_dn = mask_d[:, None] & mask_n[None, :]
    A, bias, Dv = _load_channel_parameters(A_ptr, D_ptr, bias_ptr, ch, offs_n, s_Ad, mask_d, mask_dn,
                                           HAS_D, HAS_BIAS, BLOCK_D)
    A2 = (A * LOG2E)[:, :, None]                                   # (BLOCK_D, NP, 1), for exp2
    ck_row = ckpt_ptr + ((pid_b * G * DG + ch)[:, None] * N + offs_n[None, :]) * n_chunks  # (BLOCK_D, NP)
    ck_row = tl.reshape(ck_row, [ROWS])
    mask_rows = tl.reshape(mask_dn, [ROWS])

    h = tl.zeros([ROWS], dtype=tl.float32)
    for c in range(n_chunks):
        offs_t = c * BLOCK_T + offs_t0
        mask_t = offs_t < L
        mask = mask_d[:, None] & mask_t[None, :]
        u = tl.load(u_row[:, None] + offs_t[None, :], mask=mask, other=0.0).to(tl.float32)
        dt, _ = _load_dt(d_row[:, None], offs_t[None, :], mask, bias, HAS_BIAS, SOFTPLUS)
        mask_nt = mask_n[:, None] & mask_t[None, :]
        Bt = tl.load(B_row[:, None] + offs_t[None, :], mask=mask_nt, other=0.0).to(tl.float32)
        Ct = tl.load(C_row[:, None] + offs_t[None, :], mask=mask_nt, other=0.0).to(tl.float32)
        y, h = scan_chunk(dt, u, A2, Bt, Ct, h, NP, BLOCK_D, BLOCK_T)
        if HAS_D:
            y += Dv[:, None] * u
        tl.store(y_row[:, None] + offs_t[None, :], y, mask=mask)
        if SAVE_CKPT:
            tl.store(ck_row + c, h, mask=mask_rows)


@triton.jit
def _scan_bwd_kernel(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, dy_ptr, ckpt_ptr,
        du_ptr, ddelta_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
        DG, L, N, n_chunks, n_blocks,
        s_ub, s_ud, s_db, s_dd, s_Ad, s_Bb, s_Bg, s_Bn, s_Cb, s_Cg, s_Cn,
        HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        NP: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr):
    pid_b, pid_g, pid_k, G = _program_ids()
    ROWS: tl.constexpr = BLOCK_D * NP

    offs_d, offs_n, offs_t0, mask_d, mask_n = tile_offsets(pid_k, DG, N, NP, BLOCK_D, BLOCK_T)
    ch = pid_g * DG + offs_d
    lin = pid_b * G * DG + ch                                      # row of contiguous (batch, G*D) buffers
    u_row = u_ptr + pid_b * s_ub + ch.to(tl.int64) * s_ud
    d_row = delta_ptr + pid_b * s_db + ch.to(tl.int64) * s_dd
    dy_row = dy_ptr + lin * L
    du_row = du_ptr + lin * L
    dd_row = ddelta_ptr + lin * L
    B_row = B_ptr + pid_b * s_Bb + pid_g * s_Bg + offs_n * s_Bn
    C_row = C_ptr + pid_b * s_Cb + pid_g * s_Cg + offs_n * s_Cn
    # partial dB/dC of this channel block: (batch, G, n_blocks, N, L)
    part = ((pid_b * G + pid_g) * n_blocks + pid_k) * N
    dB_row = dB_ptr + (part + offs_n) * L
    dC_row = dC_ptr + (part + offs_n) * L

    mask_dn = mask_d[:, None] & mask_n[None, :]
    A, bias, Dv = _load_channel_parameters(A_ptr, D_ptr, bias_ptr, ch, offs_n, s_Ad, mask_d, mask_dn,
                                           HAS_D, HAS_BIAS, BLOCK_D)
    A3 = A[:, :, None]
    A2 = A3 * LOG2E
    ck_row = tl.reshape(ckpt_ptr + (lin[:, None] * N + offs_n[None, :]) * n_chunks, [ROWS])
    mask_rows = tl.reshape(mask_dn, [ROWS])

    g_next = tl.zeros([ROWS], dtype=tl.float32)                   # adjoint state of the token after the chunk
    # per-token partial sums of dA, dD, d(delta_bias), reduced over tokens once after the loop
    dA_acc = tl.zeros([BLOCK_D, NP, BLOCK_T], dtype=tl.float32)
    dD_acc = tl.zeros([BLOCK_D, BLOCK_T], dtype=tl.float32)
    dbias_acc = tl.zeros([BLOCK_D, BLOCK_T], dtype=tl.float32)
    for i in range(n_chunks):
        c = n_chunks - 1 - i
        offs_t = c * BLOCK_T + offs_t0
        mask_t = offs_t < L
        mask = mask_d[:, None] & mask_t[None, :]
        mask_nt = mask_n[:, None] & mask_t[None, :]
        u = tl.load(u_row[:, None] + offs_t[None, :], mask=mask, other=0.0).to(tl.float32)
        dt, pre = _load_dt(d_row[:, None], offs_t[None, :], mask, bias, HAS_BIAS, SOFTPLUS)
        dy = tl.load(dy_row[:, None] + offs_t[None, :], mask=mask, other=0.0).to(tl.float32)
        Bt = tl.load(B_row[:, None] + offs_t[None, :], mask=mask_nt, other=0.0).to(tl.float32)
        Ct = tl.load(C_row[:, None] + offs_t[None, :], mask=mask_nt, other=0.0).to(tl.float32)
        # states of this chunk, from the stored entry state
        h_in = tl.load(ck_row + (c - 1), mask=mask_rows & (c > 0), other=0.0)
        a = tl.exp2(dt[:, None, :] * A2)
        dtu = dt * u
        b = dtu[:, None, :] * Bt[None, :, :]
        pa, hb = tl.associative_scan((tl.reshape(a, [ROWS, BLOCK_T]), tl.reshape(b, [ROWS, BLOCK_T])),
                                     1, pair_combine)
        hs = tl.reshape(hb + pa * h_in[:, None], [BLOCK_D, NP, BLOCK_T])
        # adjoint: g_t = C_t*dy_t + a_{t+1}*g_{t+1}
        offs_t1 = offs_t + 1
        mask1 = mask_d[:, None] & (offs_t1 < L)[None, :]
        dt1, _ = _load_dt(d_row[:, None], offs_t1[None, :], mask1, bias, HAS_BIAS, SOFTPLUS)
        a1 = tl.exp2(dt1[:, None, :] * A2)
        cdy = dy[:, None, :] * Ct[None, :, :]
        pg, gl = tl.associative_scan((tl.reshape(a1, [ROWS, BLOCK_T]), tl.reshape(cdy, [ROWS, BLOCK_T])),
                                     1, pair_combine, reverse=True)
        g2 = gl + pg * g_next[:, None]
        g_next = tl.sum(tl.where((offs_t0 == 0)[None, :], g2, 0.0), axis=1)
        gs = tl.reshape(g2, [BLOCK_D, NP, BLOCK_T])

        gB = tl.sum(gs * Bt[None, :, :], axis=1)                   # (BLOCK_D, BLOCK_T)
        ah = hs - b                                                # a_t * h_{t-1}
        gah = gs * ah
        du = gB * dt
        if HAS_D:
            du += Dv[:, None] * dy
            dD_acc += dy * u
        ddt = gB * u + tl.sum(gah * A3, axis=1)
        if SOFTPLUS:
            ddelta = ddt * tl.sigmoid(pre)
        else:
            ddelta = ddt
        ddelta = tl.where(mask, ddelta, 0.0)
        dbias_acc += ddelta
        dA_acc += gah * dt[:, None, :]
        tl.store(du_row[:, None] + offs_t[None, :], du.to(du_ptr.dtype.element_ty), mask=mask)
        tl.store(dd_row[:, None] + offs_t[None, :], ddelta.to(ddelta_ptr.dtype.element_ty), mask=mask)
        dBp = tl.sum(gs * dtu[:, None, :], axis=0)                 # (NP, BLOCK_T)
        dCp = tl.sum(hs * dy[:, None, :], axis=0)
        tl.store(dB_row[:, None] + offs_t[None, :], dBp, mask=mask_nt)
        tl.store(dC_row[:, None] + offs_t[None, :], dCp, mask=mask_nt)

    tl.store(dA_ptr + lin[:, None] * N + offs_n[None, :], tl.sum(dA_acc, axis=2), mask=mask_dn)
    if HAS_D:
        tl.store(dD_ptr + lin, tl.sum(dD_acc, axis=1), mask=mask_d)
    if HAS_BIAS:
        tl.store(dbias_ptr + lin, tl.sum(dbias_acc, axis=1), mask=mask_d)


def _strides3(x):
    return x.stride(0), x.stride(1)


def _last_contiguous(x):
    return x if x.stride(-1) == 1 else x.contiguous()


def _scan_forward(u, delta, A, B, C, D, delta_bias, delta_softplus, save_checkpoints):
    """Launch the forward kernel; returns (y, checkpoints or None, block_t, contiguous inputs)."""
    u, delta, B, C = (_last_contiguous(t) for t in (u, delta, B, C))
    A = A.contiguous()
    D = D.contiguous() if D is not None else None
    delta_bias = delta_bias.contiguous() if delta_bias is not None else None
    batch, channels, length = u.shape
    groups, n_states = B.shape[1], B.shape[2]
    dg = channels // groups
    np_, block_d, block_t, warps = launch_config(batch, groups, dg, length, n_states, u.device,
                                                 TUNING['fwd_warps'], TUNING['fwd_per_thread'],
                                                 forward_block_t(length, save_checkpoints),
                                                 TUNING['fwd_programs_per_sm'])
    n_chunks = triton.cdiv(length, block_t)
    y = torch.empty(batch, channels, length, device=u.device, dtype=torch.float32)
    ckpt = (torch.empty(batch, channels, n_states, n_chunks, device=u.device, dtype=torch.float32)
            if save_checkpoints else None)
    grid = (batch, groups, triton.cdiv(dg, block_d))
    _scan_fwd_kernel[grid](
        u, delta, A, B, C, D if D is not None else u, delta_bias if delta_bias is not None else u,
        y, ckpt if save_checkpoints else y, dg, length, n_states, n_chunks,
        *_strides3(u), *_strides3(delta), A.stride(0), B.stride(0), B.stride(1), B.stride(2),
        C.stride(0), C.stride(1), C.stride(2),
        HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
        SAVE_CKPT=save_checkpoints, NP=np_, BLOCK_D=block_d, BLOCK_T=block_t, num_warps=warps)
    return y, ckpt, block_t, (u, delta, A, B, C, D, delta_bias)


class _SelectiveScanTriton(torch.autograd.Function):

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, delta_softplus):
        y, ckpt, block_t, inputs = _scan_forward(u, delta, A, B, C, D, delta_bias, delta_softplus,
                                                 save_checkpoints=True)
        ctx.save_for_backward(*inputs, ckpt)
        ctx.delta_softplus = bool(delta_softplus)
        ctx.block_t = block_t
        return y

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, B, C, D, delta_bias, ckpt = ctx.saved_tensors
        dy = dy.contiguous().float()
        batch, channels, length = u.shape
        groups, n_states = B.shape[1], B.shape[2]
        dg = channels // groups
        np_, block_d, block_t, warps = launch_config(batch, groups, dg, length, n_states, u.device,
                                                     TUNING['bwd_warps'], TUNING['bwd_per_thread'],
                                                     ctx.block_t,  # the checkpoints' chunks
                                                     TUNING['bwd_programs_per_sm'])
        n_chunks = ckpt.shape[-1]
        n_blocks = triton.cdiv(dg, block_d)
        dev = u.device
        du = torch.empty(batch, channels, length, device=dev, dtype=u.dtype)
        ddelta = torch.empty(batch, channels, length, device=dev, dtype=delta.dtype)
        dA_part = torch.empty(batch, channels, n_states, device=dev, dtype=torch.float32)
        dB_part = torch.empty(batch, groups, n_blocks, n_states, length, device=dev, dtype=torch.float32)
        dC_part = torch.empty_like(dB_part)
        dD_part = torch.empty(batch, channels, device=dev, dtype=torch.float32) if D is not None else dA_part
        dbias_part = (torch.empty(batch, channels, device=dev, dtype=torch.float32)
                      if delta_bias is not None else dA_part)
        grid = (batch, groups, n_blocks)
        _scan_bwd_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, delta_bias if delta_bias is not None else u,
            dy, ckpt, du, ddelta, dA_part, dB_part, dC_part, dD_part, dbias_part,
            dg, length, n_states, n_chunks, n_blocks,
            *_strides3(u), *_strides3(delta), A.stride(0), B.stride(0), B.stride(1), B.stride(2),
            C.stride(0), C.stride(1), C.stride(2),
            HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=ctx.delta_softplus,
            NP=np_, BLOCK_D=block_d, BLOCK_T=block_t, num_warps=warps)
        dA = dA_part.sum(0).to(A.dtype)
        dB = dB_part.sum(2).to(B.dtype)
        dC = dC_part.sum(2).to(C.dtype)
        dD = dD_part.sum(0).to(D.dtype) if D is not None else None
        dbias = dbias_part.sum(0).to(delta_bias.dtype) if delta_bias is not None else None
        return du, ddelta, dA, dB, dC, dD, dbias, None


def selective_scan_triton(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """Selective scan on Triton kernels (CUDA tensors); float32 output. See the module doc."""
    if u.dim() != 3 or B.dim() != 4 or B.shape != C.shape or u.shape[1] % B.shape[1]:
        raise ValueError(f'selective_scan_triton expects u (batch, G*D, L) and B, C (batch, G, N, L); '
                         f'got u {tuple(u.shape)}, B {tuple(B.shape)}, C {tuple(C.shape)}')
    inputs = (u, delta, A, B, C, D, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return _SelectiveScanTriton.apply(*inputs, delta_softplus)
    # inference (no_grad / inference_mode, or nothing requires grad): no checkpoints, longer chunks
    return _scan_forward(*inputs, delta_softplus, save_checkpoints=False)[0]
