"""MobileMamba building blocks: residual wrappers, FFN, the MobileMamba block, downsampling.

Container and child names follow the official release (``dw0``, ``ffn0``, ``mixer.m.attn``,
``dw1``, ``ffn1``; ``pw1``/``pw2``; ``conv1``/``conv2``/``se``/``conv3``) for checkpoint loading.
"""
import torch
from torch import nn

from .conv_bn import ConvBN, absorb_identity, can_absorb_identity, fuse_modules
from .mrffi import MRFFI

__all__ = ['drop_path', 'Residual', 'FFN', 'SqueezeExcite', 'PatchMerging', 'MobileMambaBlock',
           'local_refinement', 'MixerWrapper']


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples with probability ``drop_prob``, rescale the rest."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class Residual(nn.Module):
    """``x + m(x)``."""

    def __init__(self, m: nn.Module):
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)

    def fuse(self) -> nn.Module:
        """Fuse the wrapped module; a wrapped depthwise Conv-BN also absorbs the skip (one conv)."""
        self.m = self.m.fuse() if hasattr(self.m, 'fuse') else fuse_modules(self.m)
        return absorb_identity(self.m) if can_absorb_identity(self.m) else self


class FFN(nn.Sequential):
    """1x1 Conv-BN to ``hidden``, ReLU, 1x1 Conv-BN back (last BN weight starts at 0)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.add_module('pw1', ConvBN(dim, hidden))
        self.add_module('act', nn.ReLU())
        self.add_module('pw2', ConvBN(hidden, dim, bn_weight_init=0.0))


class SqueezeExcite(nn.Module):
    """Channel attention: global mean -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid gate."""

    def __init__(self, channels: int, ratio: float = 0.25, divisor: int = 8):
        super().__init__()
        reduced = max(divisor, int(channels * ratio + divisor / 2) // divisor * divisor)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class PatchMerging(nn.Module):
    """Stride-2 downsampling, (B, dim, H, W) -> (B, out_dim, ceil(H/2), ceil(W/2)).

    1x1 expand to 4*dim, ReLU, 3x3 depthwise stride 2, ReLU, squeeze-excite, 1x1 to out_dim.
    """

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        hidden = 4 * dim
        self.conv1 = ConvBN(dim, hidden)
        self.act = nn.ReLU()
        self.conv2 = ConvBN(hidden, hidden, 3, 2, 1, groups=hidden)
        self.se = SqueezeExcite(hidden, 0.25)
        self.conv3 = ConvBN(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.se(self.act(self.conv2(self.act(self.conv1(x))))))


def local_refinement(dim: int) -> nn.Sequential:
    """Residual 3x3 depthwise Conv-BN then residual FFN, used around each PatchMerging."""
    return nn.Sequential(Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim)), Residual(FFN(dim, 2 * dim)))


class MixerWrapper(nn.Module):
    """Holds the MRFFI module as ``attn`` (the release's ``MobileMambaBlockWindow``)."""

    def __init__(self, attn: nn.Module):
        super().__init__()
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)


class MobileMambaBlock(nn.Module):
    """(B, dim, H, W) -> (B, dim, H, W).

    Local perception (residual 3x3 DW Conv-BN) -> residual FFN -> residual MRFFI -> residual
    DW Conv-BN -> residual FFN, with an outer skip connection carrying stochastic depth.
    """

    def __init__(self, dim: int, global_ratio: float, local_ratio: float, kernel_size: int,
                 drop_path_rate: float = 0.0, ssm_ratio: float = 2.0, d_state: int = 1,
                 local_kernel_sizes=None, global_mixer: str = 'bimamba'):
        super().__init__()
        self.dw0 = Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim, bn_weight_init=0.0))
        self.ffn0 = Residual(FFN(dim, 2 * dim))
        self.mixer = Residual(MixerWrapper(MRFFI(
            dim, global_ratio, local_ratio, kernel_size, ssm_ratio, d_state,
            local_kernel_sizes=local_kernel_sizes, global_mixer=global_mixer)))
        self.dw1 = Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim, bn_weight_init=0.0))
        self.ffn1 = Residual(FFN(dim, 2 * dim))
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x)))))
        return x + drop_path(y, self.drop_path_rate, self.training)
