"""Triton helpers shared by the kernel files of this package: the scan's pair operator, softplus,
one chunk of the recurrence, the launch configuration and the output layout."""
import torch
import triton
import triton.language as tl

# exp(x) = exp2(x * LOG2E); a constexpr so that the jit functions of any module can read it
LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def pair_combine(a1, b1, a2, b2):
    return a1 * a2, a2 * b1 + b2


@triton.jit
def softplus(x):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); log1p by a two-term series for tiny args.
    z = tl.exp(-tl.abs(x))
    lp = tl.where(z < 1e-4, z * (1.0 - 0.5 * z), tl.log(1.0 + z))
    return tl.maximum(x, 0.0) + lp


@triton.jit
def scan_chunk(dt, u, A2, Bt, Ct, h, NP: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr):
    """One chunk of the recurrence from the entry state ``h`` (BLOCK_D*NP,). dt, u (BLOCK_D, BLOCK_T);
    A2 = A*log2(e) (BLOCK_D, NP, 1); Bt, Ct (NP, BLOCK_T). Returns (sum_n C*h per token
    (BLOCK_D, BLOCK_T), the state after the chunk)."""
    ROWS: tl.constexpr = BLOCK_D * NP
    a = tl.exp2(dt[:, None, :] * A2)                               # (BLOCK_D, NP, BLOCK_T)
    b = (dt * u)[:, None, :] * Bt[None, :, :]
    pa, hb = tl.associative_scan((tl.reshape(a, [ROWS, BLOCK_T]), tl.reshape(b, [ROWS, BLOCK_T])),
                                 1, pair_combine)
    hs = hb + pa * h[:, None]                                      # (ROWS, BLOCK_T)
    y = tl.sum(tl.reshape(hs, [BLOCK_D, NP, BLOCK_T]) * Ct[None, :, :], axis=1)
    # padded tokens have a = 1, b = 0: the last column is the state after token min(L, end) - 1
    h_next = tl.sum(tl.where((tl.arange(0, BLOCK_T) == BLOCK_T - 1)[None, :], hs, 0.0), axis=1)
    return y, h_next


@triton.jit
def tile_offsets(block_index, channels, N, NP: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr):
    """The tile of a program that owns channel block ``block_index`` of ``channels``: channel
    offsets (BLOCK_D,), state offsets (NP,), token offsets of a chunk (BLOCK_T,), and the channel
    and state masks."""
    offs_d = block_index * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, NP)
    return offs_d, offs_n, tl.arange(0, BLOCK_T), offs_d < channels, offs_n < N


def next_pow2(x: int) -> int:
    """The smallest power of two >= ``x`` (1 for ``x <= 1``)."""
    return 1 << max(0, int(x) - 1).bit_length()


_SM_COUNT = {}


@torch.compiler.assume_constant_result
def _sm_count(device) -> int:
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _SM_COUNT:
        _SM_COUNT[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return _SM_COUNT[idx]


# Launch parameters (tools/analysis_tools/benchmark.py and the tuning notes in benchmarks/ use these names).
# A program's tile is BLOCK_D channels x next_pow2(N) states x BLOCK_T tokens, sized to about
# ``*_per_thread`` elements per thread: more spills registers (seen in the compiler's report).
# ``block_t`` is the chunk of an inference forward (``long_block_t`` from ``long_length`` tokens);
# ``grad_block_t`` that of a forward that keeps checkpoints for the backward, and so of the backward.
# Defaults: the best of sweeps on an H100 (benchmarks/gpu_results.md) over block_t 16/32/64/128,
# warps 4/8, 2/4/8 elements per thread and 4/8 programs per SM at (batch, G*D, L) =
# (256, 640, 196), (256, 1088, 49), (256, 1088, 16) (MobileMamba-S6 at 224²) and (8, 640, 4096)
# (its first stage at 1024²), fp32 and bf16 inputs.
TUNING = {'block_t': 32, 'long_block_t': 128, 'long_length': 1024, 'grad_block_t': 32,
          'fwd_warps': 4, 'fwd_per_thread': 2, 'fwd_programs_per_sm': 4,
          'bwd_warps': 4, 'bwd_per_thread': 4, 'bwd_programs_per_sm': 8}


def launch_config(batch, groups, dg, length, n_states, device, warps, per_thread, block_t, programs_per_sm):
    """(NP, BLOCK_D, BLOCK_T, num_warps) for a launch with chunks of at most ``block_t`` tokens."""
    np_ = next_pow2(n_states)
    block_t = max(16, min(block_t, next_pow2(length)))
    tile = per_thread * 32 * warps
    block_d = max(1, min(next_pow2(dg), tile // (np_ * block_t)))
    if device.type == 'cuda':  # enough programs to fill the GPU
        target = programs_per_sm * _sm_count(device)
        while block_d > 1 and batch * groups * triton.cdiv(dg, block_d) < target:
            block_d //= 2
    warps = max(1, min(warps, block_d * np_ * block_t // 64))  # at least 2 elements per thread
    return np_, block_d, block_t, warps


def forward_block_t(length: int, save_checkpoints: bool) -> int:
    """The chunk length of a forward launch (see ``TUNING``)."""
    if save_checkpoints:
        return TUNING['grad_block_t']
    return TUNING['long_block_t' if length >= TUNING['long_length'] else 'block_t']


def empty_in_layout(like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An empty (batch, C, L) tensor of ``like``'s shape: channels-last storage (stride 1 over C) when
    ``like`` has it, as in the channels-last deploy mode, else contiguous."""
    batch, channels, length = like.shape
    if like.stride(1) == 1 and length > 1:
        return torch.empty(batch, length, channels, device=like.device, dtype=dtype).transpose(1, 2)
    return torch.empty(batch, channels, length, device=like.device, dtype=dtype)
