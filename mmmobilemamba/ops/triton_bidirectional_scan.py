"""The bidirectional flattened selective scan of SS2D in one Triton kernel (inference only).

:func:`mmmobilemamba.models.layers.ss2d.flattened_selective_scan` with two directions computes::

    y = scan_0(x) + flip(scan_1(flip(x)))

where ``scan_k`` is the selective scan with direction ``k``'s parameters and
``delta_k = dt_projs_weight[k] @ dt_rank_part_k`` (low-rank ``dt`` projection). The generic path
materialises ``flip(x)``, both directions' ``delta`` and the flipped output. This kernel reads
the un-flipped sequence and the un-flipped projections ``x_dbl = x_proj_weight @ x`` instead:
direction 1 walks the tokens from the end, the low-rank ``delta`` projection is done in registers,
and each program adds its direction-1 output onto its direction-0 output in place. No gradients:
training uses the generic path (the :mod:`triton_selective_scan` kernels).

Shapes (``Di`` channels, ``R`` dt rank, ``N`` states, ``L`` tokens)::

    x            (batch, Di, L)              the flattened map, any float dtype, any strides
    x_dbl        (batch, 2, R + 2N, L)       x_proj_weight[k] @ x (not flipped), any strides
    dt_weight    (2, Di, R)                  dt_projs_weight
    A            (2*Di, N);  D, delta_bias (2*Di,)    row k*Di + d belongs to direction k
    returns y    (batch, Di, L) float32, in x's layout: channels-first, or channels-last
                 (stride 1 over Di) when x is, as in the channels-last deploy mode
"""
import torch
import triton
import triton.language as tl

from ._common import (LOG2E, TUNING, empty_in_layout, forward_block_t, launch_config, scan_chunk, softplus,
                      tile_offsets)

__all__ = ['bidirectional_scan_triton']


@triton.jit
def _bidirectional_scan_kernel(
        x_ptr, proj_ptr, w_ptr, A_ptr, D_ptr, bias_ptr, y_ptr,
        DI, L, N, R,
        s_xb, s_xd, s_xl, s_pb, s_pk, s_pc, s_pl, s_yb, s_yd, s_yl,
        NP: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    ROWS: tl.constexpr = BLOCK_D * NP

    offs_d, offs_n, offs_t0, mask_d, mask_n = tile_offsets(pid_d, DI, N, NP, BLOCK_D, BLOCK_T)
    mask_dn = mask_d[:, None] & mask_n[None, :]
    x_row = x_ptr + pid_b * s_xb + offs_d.to(tl.int64) * s_xd     # (BLOCK_D,) pointers
    y_row = y_ptr + pid_b * s_yb + offs_d.to(tl.int64) * s_yd
    n_chunks = tl.cdiv(L, BLOCK_T)

    for k in tl.static_range(2):
        ch = k * DI + offs_d                                        # row of A, D, bias
        A = tl.load(A_ptr + ch[:, None] * N + offs_n[None, :], mask=mask_dn, other=0.0).to(tl.float32)
        A2 = (A * LOG2E)[:, :, None]                                 # (BLOCK_D, NP, 1), for exp2
        bias = tl.load(bias_ptr + ch, mask=mask_d, other=0.0).to(tl.float32)
        Dv = tl.load(D_ptr + ch, mask=mask_d, other=0.0).to(tl.float32)
        proj = proj_ptr + pid_b * s_pb + k * s_pk
        B_row = proj + (R + offs_n) * s_pc                          # (NP,) pointers
        C_row = proj + (R + N + offs_n) * s_pc
        w_row = w_ptr + ch * R                                      # dt_weight[k, d, :]
        h = tl.zeros([ROWS], dtype=tl.float32)
        for c in range(n_chunks):
            offs_t = c * BLOCK_T + offs_t0                          # steps of this direction
            mask_t = offs_t < L
            if k == 0:
                pos = offs_t
            else:
                pos = L - 1 - offs_t                                # token read at each step
            mask = mask_d[:, None] & mask_t[None, :]
            u = tl.load(x_row[:, None] + pos[None, :] * s_xl, mask=mask, other=0.0).to(tl.float32)
            pre = tl.zeros([BLOCK_D, BLOCK_T], dtype=tl.float32) + bias[:, None]
            for r in range(R):                                      # delta = dt_weight[k] @ x_dbl[k, :R]
                w = tl.load(w_row + r, mask=mask_d, other=0.0).to(tl.float32)
                dtr = tl.load(proj + r * s_pc + pos * s_pl, mask=mask_t, other=0.0).to(tl.float32)
                pre += w[:, None] * dtr[None, :]
            dt = tl.where(mask, softplus(pre), 0.0)               # padded steps: a = 1, b = 0
            mask_nt = mask_n[:, None] & mask_t[None, :]
            Bt = tl.load(B_row[:, None] + pos[None, :] * s_pl, mask=mask_nt, other=0.0).to(tl.float32)
            Ct = tl.load(C_row[:, None] + pos[None, :] * s_pl, mask=mask_nt, other=0.0).to(tl.float32)
            y, h = scan_chunk(dt, u, A2, Bt, Ct, h, NP, BLOCK_D, BLOCK_T)
            y += Dv[:, None] * u
            if k == 1:                                              # add onto direction 0's output
                y += tl.load(y_row[:, None] + pos[None, :] * s_yl, mask=mask, other=0.0)
            tl.store(y_row[:, None] + pos[None, :] * s_yl, y, mask=mask)
        if k == 0:  # direction 0's stores (by other threads of this program) are seen by direction 1
            tl.debug_barrier()


def bidirectional_scan_triton(x: torch.Tensor, x_dbl: torch.Tensor, dt_weight: torch.Tensor, A: torch.Tensor,
                              D: torch.Tensor, delta_bias: torch.Tensor) -> torch.Tensor:
    """Forwards plus flipped-backwards selective scan of ``x``; shapes in the module doc."""
    batch, channels, length = x.shape
    directions, dt_channels, rank = dt_weight.shape
    n_states = A.shape[1]
    expected = (batch, 2, rank + 2 * n_states, length)
    if directions != 2 or dt_channels != channels or tuple(x_dbl.shape) != expected:
        raise ValueError(f'bidirectional_scan_triton expects x (batch, Di, L), x_dbl {expected} and '
                         f'dt_weight (2, Di, R); got x {tuple(x.shape)}, x_dbl {tuple(x_dbl.shape)}, '
                         f'dt_weight {tuple(dt_weight.shape)}')
    dt_weight, A, D, delta_bias = (t.contiguous() for t in (dt_weight, A, D, delta_bias))
    np_, block_d, block_t, warps = launch_config(batch, 1, channels, length, n_states, x.device, TUNING['fwd_warps'],
                                                 TUNING['fwd_per_thread'], forward_block_t(length, False),
                                                 TUNING['fwd_programs_per_sm'])
    y = empty_in_layout(x, torch.float32)
    grid = (batch, triton.cdiv(channels, block_d))
    _bidirectional_scan_kernel[grid](
        x, x_dbl, dt_weight, A, D, delta_bias, y, channels, length, n_states, rank,
        x.stride(0), x.stride(1), x.stride(2), x_dbl.stride(0), x_dbl.stride(1), x_dbl.stride(2),
        x_dbl.stride(3), y.stride(0), y.stride(1), y.stride(2),
        NP=np_, BLOCK_D=block_d, BLOCK_T=block_t, num_warps=warps)
    return y
