"""Conv/Linear + BatchNorm pairs that fold into one layer for inference (deploy mode).

Child names (``c``/``bn``, ``bn``/``l``) follow the official MobileMamba release so that its
checkpoints load unchanged.
"""
import torch
from torch import nn

__all__ = ['ConvBN', 'BNLinear', 'fuse_conv_bn', 'fuse_bn_linear', 'fuse_modules', 'split_batchnorm', 'can_absorb_identity',
           'absorb_identity', 'absorb_channel_scale']


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d equal to ``bn(conv(x))`` (BN in eval mode)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    fused.bias.copy_(bias)
    return fused


@torch.no_grad()
def fuse_bn_linear(bn: nn.BatchNorm1d, linear: nn.Linear) -> nn.Linear:
    """A Linear equal to ``linear(bn(x))`` (BN in eval mode)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    fused = nn.Linear(linear.in_features, linear.out_features, bias=True,
                      device=linear.weight.device, dtype=linear.weight.dtype)
    fused.weight.copy_(linear.weight * scale[None, :])
    bias = linear.weight @ shift
    fused.bias.copy_(bias + linear.bias if linear.bias is not None else bias)
    return fused


@torch.no_grad()
def split_batchnorm(bn: nn.BatchNorm2d, sizes) -> list:
    """Consecutive channel slices of ``bn`` (eval statistics and affine) as separate BatchNorm2d."""
    parts, start = [], 0
    for size in sizes:
        part = nn.BatchNorm2d(size, eps=bn.eps, device=bn.weight.device, dtype=bn.weight.dtype).eval()
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            getattr(part, name).copy_(getattr(bn, name)[start:start + size])
        parts.append(part)
        start += size
    return parts


def can_absorb_identity(module: nn.Module) -> bool:
    """Whether ``module`` is a conv that :func:`absorb_identity` can fold ``x + conv(x)`` into:
    depthwise, stride 1, no dilation, odd kernel with "same" padding."""
    if type(module) is not nn.Conv2d:
        return False
    k_h, k_w = module.kernel_size
    return (module.groups == module.in_channels == module.out_channels and module.stride == (1, 1)
            and module.dilation == (1, 1) and k_h % 2 == 1 and k_w % 2 == 1
            and module.padding == (k_h // 2, k_w // 2) and module.padding_mode == 'zeros')


@torch.no_grad()
def absorb_identity(conv: nn.Conv2d) -> nn.Conv2d:
    """``x + conv(x)`` as one conv (RepVGG-style): add 1 to each filter's centre tap, in place."""
    if not can_absorb_identity(conv):
        raise ValueError(f'cannot fold an identity into {conv}: needs a stride-1 depthwise conv '
                         f'with an odd kernel and same padding')
    k_h, k_w = conv.kernel_size
    conv.weight[:, 0, k_h // 2, k_w // 2] += 1.0
    return conv


@torch.no_grad()
def absorb_channel_scale(conv: nn.Conv2d, scale: torch.Tensor) -> nn.Conv2d:
    """``scale * conv(x)`` for a per-output-channel ``scale`` (any shape with C_out elements), in place."""
    scale = scale.reshape(-1)
    conv.weight.mul_(scale[:, None, None, None])
    if conv.bias is not None:
        conv.bias.mul_(scale)
    return conv


class ConvBN(nn.Sequential):
    """Conv2d (no bias) followed by BatchNorm2d. (B, in, H, W) -> (B, out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1, bn_weight_init: float = 1.0):
        super().__init__()
        self.add_module('c', nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                       groups=groups, bias=False))
        self.add_module('bn', nn.BatchNorm2d(out_channels))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.zeros_(self.bn.bias)

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.c, self.bn)


class BNLinear(nn.Sequential):
    """BatchNorm1d followed by Linear (the classifier head). (B, in) -> (B, out)."""

    def __init__(self, in_features: int, out_features: int, std: float = 0.02):
        super().__init__()
        self.add_module('bn', nn.BatchNorm1d(in_features))
        self.add_module('l', nn.Linear(in_features, out_features))
        nn.init.trunc_normal_(self.l.weight, std=std)
        nn.init.zeros_(self.l.bias)

    def fuse(self) -> nn.Linear:
        return fuse_bn_linear(self.bn, self.l)


def fuse_modules(module: nn.Module) -> nn.Module:
    """Replace, in place and recursively, every child that has a ``fuse()`` by its fused form."""
    for name, child in module.named_children():
        if hasattr(child, 'fuse'):
            setattr(module, name, child.fuse())
        else:
            fuse_modules(child)
    return module
