"""Depthwise convolution with its bias, activation and an optional per-channel affine in one
Triton kernel, channels-last output (inference only).

::

    out[b, c] = act(conv_kxk(x[b, c], weight[c]) + bias[c]) * post_scale[c] + post_shift[c]

cuDNN runs a depthwise convolution on a channels-last map as the convolution, then a separate
kernel for the bias (PyTorch adds it afterwards), then the activation, then (for MK-DeConv's
depthwise 1x1 conv) another pass: four passes over memory where one suffices. Here each program
holds a tile of output pixels x channels in float32 registers, accumulates the ``k*k`` taps
(channel-contiguous loads), applies the epilogue and writes once.

With ``weight=None`` only the epilogue runs (``K = 1``, unit weights): the bias and ReLU after a
cuDNN convolution of the stem, in one pass instead of two.

Shapes::

    x            (batch, C, H, W)    any strides, any float dtype (channels-last reads coalesce)
    weight       (C, 1, K, K)        odd K; padding K // 2; stride 1 or 2; or None (see above)
    bias, post_scale, post_shift     (C,) or None
    returns      (batch, C, ceil(H / stride), ceil(W / stride)) channels-last, in ``out_dtype``
"""
import torch
import triton
import triton.language as tl

__all__ = ['depthwise_conv_triton', 'ACTIVATIONS']

ACTIVATIONS = {None: 0, 'relu': 1, 'silu': 2}


@triton.jit
def _depthwise_conv_kernel(x_ptr, w_ptr, bias_ptr, scale_ptr, shift_ptr, out_ptr,
                           C, H, W, OH, OW,
                           s_xb, s_xc, s_xh, s_xw, s_ob, s_oc, s_oh, s_ow,
                           K: tl.constexpr, STRIDE: tl.constexpr, ACT: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                           HAS_BIAS: tl.constexpr, HAS_POST: tl.constexpr,
                           BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)                # output pixels, row-major
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_p = offs_p < OH * OW
    mask_c = offs_c < C
    oh = offs_p // OW
    ow = offs_p % OW
    x_base = x_ptr + pid_b * s_xb + offs_c[None, :].to(tl.int64) * s_xc
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for kh in tl.static_range(K):
        ih = oh * STRIDE + (kh - K // 2)
        row_ok = mask_p & (ih >= 0) & (ih < H)
        for kw in tl.static_range(K):
            iw = ow * STRIDE + (kw - K // 2)
            ok = row_ok & (iw >= 0) & (iw < W)
            v = tl.load(x_base + (ih * s_xh + iw * s_xw)[:, None], mask=ok[:, None] & mask_c[None, :], other=0.0)
            if HAS_WEIGHT:
                w = tl.load(w_ptr + offs_c * (K * K) + (kh * K + kw), mask=mask_c, other=0.0)
                acc += v.to(tl.float32) * w.to(tl.float32)[None, :]
            else:
                acc += v.to(tl.float32)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    if ACT == 1:
        acc = tl.maximum(acc, 0.0)
    elif ACT == 2:
        acc = acc * tl.sigmoid(acc)
    if HAS_POST:
        scale = tl.load(scale_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)
        shift = tl.load(shift_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)
        acc = acc * scale[None, :] + shift[None, :]
    out = out_ptr + pid_b * s_ob + offs_c[None, :].to(tl.int64) * s_oc + (oh * s_oh + ow * s_ow)[:, None]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=mask_p[:, None] & mask_c[None, :])


def depthwise_conv_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor = None, stride: int = 1,
                          activation: str = None, post_scale: torch.Tensor = None,
                          post_shift: torch.Tensor = None, out_dtype: torch.dtype = None) -> torch.Tensor:
    """Depthwise ``K x K`` convolution (padding ``K // 2``) with a fused epilogue; see the module doc."""
    batch, channels, height, width = x.shape
    k = 1 if weight is None else weight.shape[-1]
    if (weight is not None and weight.shape != (channels, 1, k, k)) or k % 2 == 0 or stride not in (1, 2):
        raise ValueError(f'depthwise_conv_triton expects weight (C, 1, K, K) with odd K and stride 1 or 2 for '
                         f'x {tuple(x.shape)}; got weight {tuple(weight.shape)}, stride {stride}')
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation must be one of {list(ACTIVATIONS)}, got {activation!r}')
    if (post_scale is None) != (post_shift is None):
        raise ValueError('post_scale and post_shift go together')
    out_h, out_w = (height - 1) // stride + 1, (width - 1) // stride + 1
    out = torch.empty(batch, out_h, out_w, channels, device=x.device,
                      dtype=out_dtype or x.dtype).permute(0, 3, 1, 2)
    block_c = min(64, triton.next_power_of_2(channels))
    block_p = max(16, min(triton.next_power_of_2(out_h * out_w), 4096 // block_c))
    weight = None if weight is None else weight.contiguous()
    dummy = out  # never read when the matching HAS_* flag is off
    grid = (triton.cdiv(out_h * out_w, block_p), triton.cdiv(channels, block_c), batch)
    _depthwise_conv_kernel[grid](
        x, weight if weight is not None else dummy, bias if bias is not None else dummy,
        post_scale if post_scale is not None else dummy, post_shift if post_shift is not None else dummy, out,
        channels, height, width, out_h, out_w, *x.stride(), *out.stride(),
        K=k, STRIDE=stride, ACT=ACTIVATIONS[activation], HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None,
        HAS_POST=post_scale is not None, BLOCK_P=block_p, BLOCK_C=block_c,
        num_warps=8 if block_p * block_c >= 4096 else 4)
    return out
