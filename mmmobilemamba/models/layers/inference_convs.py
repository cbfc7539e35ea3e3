"""Inference forms of MobileMamba's convolutions (deploy mode), applied after BatchNorm folding.

:func:`convert_for_inference` replaces, in a BN-folded network,

* every dense 1x1 convolution by a :class:`PointwiseConv`: a matrix product over the channels of
  a channels-last map, bias (and a following ReLU) in the GEMM's epilogue;
* every depthwise convolution by a :class:`DepthwiseConv`: on CUDA one Triton kernel with the bias,
  a following ReLU and a following depthwise 1x1 convolution (MK-DeConv's ``dwconv1x1``) fused
  (:mod:`mmmobilemamba.ops.triton_depthwise_conv`);
* every other K x K convolution (the stem's 3x3 stride-2 layers) by a :class:`DenseConv`: cuDNN's
  convolution on the channels-last map, and, where a ReLU follows, the bias and ReLU in one Triton
  pass (PyTorch would add the bias and apply the ReLU in two).

On CUDA all return channels-last maps, so the deployed backbone runs channels-last throughout; on
the CPU they are plain PyTorch convolutions in the input's memory format (channels-last copies and
1x1 convolutions as matrix products made deploy mode slower than eager on the CPU). They
compute what the layers they replace compute, to the same precision (TF32 products where cuDNN
would use TF32, the autocast dtype under autocast, float32 accumulation); under ``torch.compile``,
with gradients, or without CUDA/Triton they run as PyTorch convolutions.
"""
import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from mmmobilemamba.ops import load_kernel, loaded_kernel

__all__ = ['PointwiseConv', 'DepthwiseConv', 'DenseConv', 'is_pointwise_conv', 'is_depthwise_conv',
           'is_dense_conv', 'convert_for_inference']


def is_pointwise_conv(module: nn.Module) -> bool:
    """Whether ``module`` is a dense 1x1 convolution (groups 1, stride 1, no padding)."""
    return (type(module) is nn.Conv2d and module.kernel_size == (1, 1) and module.groups == 1
            and module.stride == (1, 1) and module.padding == (0, 0) and module.dilation == (1, 1))


def _is_square_same_conv(module: nn.Module) -> bool:
    """An ``nn.Conv2d`` with a square odd kernel, "same" zero padding, stride 1 or 2, no dilation."""
    if type(module) is not nn.Conv2d:
        return False
    k = module.kernel_size[0]
    return (module.kernel_size == (k, k) and k % 2 == 1 and module.padding == (k // 2, k // 2)
            and module.stride in ((1, 1), (2, 2)) and module.dilation == (1, 1) and module.padding_mode == 'zeros')


def is_depthwise_conv(module: nn.Module) -> bool:
    """Whether ``module`` is a depthwise convolution :class:`DepthwiseConv` can run: square odd
    kernel, "same" padding, stride 1 or 2, no dilation, zero padding."""
    return _is_square_same_conv(module) and module.groups == module.in_channels == module.out_channels


def is_dense_conv(module: nn.Module) -> bool:
    """Whether ``module`` is a groups-1 convolution :class:`DenseConv` can run: square odd kernel
    larger than 1, "same" padding, stride 1 or 2, no dilation, zero padding."""
    return _is_square_same_conv(module) and module.groups == 1 and module.kernel_size[0] > 1


def _triton_kernel(name: str, x: torch.Tensor, weight: torch.Tensor):
    """The loaded Triton kernel ``name`` if it applies to this call (CUDA, no gradients wanted, not
    under ``torch.compile``, whose inductor plans convolutions itself), else None."""
    if not x.is_cuda or torch.compiler.is_compiling():
        return None
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return None
    return loaded_kernel(name)


def _autocast_dtype(x: torch.Tensor):
    """The dtype a CUDA convolution of ``x`` computes in: autocast's, else ``x``'s."""
    return torch.get_autocast_dtype('cuda') if torch.is_autocast_enabled('cuda') else x.dtype


@contextlib.contextmanager
def _tf32_matmul_as_in_convolutions():
    """cuBLAS float32 products use TF32 exactly when cuDNN convolutions do (``cudnn.allow_tf32``)."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


def _linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``relu(x @ weight.T + bias)`` as one cuBLASLt GEMM (bias + ReLU epilogue), autocast-aware."""
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
    return torch._addmm_activation(bias, x, weight.t(), use_gelu=False)


class PointwiseConv(nn.Module):
    """A dense 1x1 convolution run as a matrix product over channels, optionally with a ReLU.

    (B, C_in, H, W) -> (B, C_out, H, W), channels-last on CUDA. On a channels-last input the token matrix
    (B*H*W, C_in) is a view, so the convolution is one GEMM with the bias (and ReLU) applied in its
    epilogue, instead of cuDNN's 1x1 convolution with layout conversions and separate bias and
    activation kernels. On CUDA, float32 products use TF32 exactly when a cuDNN convolution would
    (``torch.backends.cudnn.allow_tf32``).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor = None, relu: bool = False):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().reshape(weight.shape[0], -1).clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.relu = relu

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> 'PointwiseConv':
        if not is_pointwise_conv(conv):
            raise ValueError(f'PointwiseConv replaces dense 1x1 stride-1 convolutions, got {conv}')
        return cls(conv.weight, conv.bias)

    def extra_repr(self) -> str:
        return f'{self.weight.shape[1]}, {self.weight.shape[0]}, bias={self.bias is not None}, relu={self.relu}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # inductor plans convolutions itself; on the CPU the plain convolution in the input's own
        # memory format is faster than a matrix product over a channels-last copy
        if torch.compiler.is_compiling() or not x.is_cuda:
            y = F.conv2d(x, self.weight[:, :, None, None], self.bias)
            return F.relu(y) if self.relu else y
        batch, channels, height, width = x.shape
        tokens = x.permute(0, 2, 3, 1).reshape(-1, channels)           # a view when x is channels-last
        tf32 = (_tf32_matmul_as_in_convolutions() if x.is_cuda and x.dtype == torch.float32
                else contextlib.nullcontext())
        with tf32:
            if self.relu and self.bias is not None and x.is_cuda:
                y = _linear_relu(tokens, self.weight, self.bias)
            else:
                y = F.linear(tokens, self.weight, self.bias)
                y = F.relu(y) if self.relu else y
        return y.view(batch, height, width, -1).permute(0, 3, 1, 2)


class _SquareConv(nn.Module):
    """Weight, bias and stride of a K x K convolution with padding K // 2, taken from an nn.Conv2d
    that the subclass ``accepts`` (its ``requirement`` in words)."""
    accepts = staticmethod(_is_square_same_conv)
    requirement = 'an odd square kernel, same padding and stride 1 or 2'

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor = None, stride: int = 1):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.stride = stride

    @classmethod
    def from_conv(cls, conv: nn.Conv2d):
        if not cls.accepts(conv):
            raise ValueError(f'{cls.__name__} replaces convolutions with {cls.requirement}, got {conv}')
        return cls(conv.weight, conv.bias, conv.stride[0])

    @property
    def kernel_size(self) -> int:
        return self.weight.shape[-1]


class DepthwiseConv(_SquareConv):
    """A depthwise ``K x K`` convolution (padding ``K // 2``, stride 1 or 2) with an optional
    activation and an optional following depthwise 1x1 convolution (``post_weight``, ``post_bias``).

    (B, C, H, W) -> (B, C, ceil(H/stride), ceil(W/stride)). On CUDA, without gradients, one Triton
    kernel computes it all (channels-last output, in the autocast dtype under autocast); elsewhere
    the same ops run as PyTorch convolutions.
    """

    accepts = staticmethod(is_depthwise_conv)
    requirement = 'groups = channels, an odd square kernel, same padding and stride 1 or 2'

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor = None, stride: int = 1, activation: str = None):
        super().__init__(weight, bias, stride)
        self.activation = activation
        self.post_weight = self.post_bias = None

    def absorb_following(self, conv: 'DepthwiseConv'):
        """Compute ``conv(self(x))`` for a depthwise 1x1 ``conv`` (no activation) in this layer."""
        if conv.kernel_size != 1 or conv.stride != 1 or conv.activation or self.post_weight is not None:
            raise ValueError(f'can only absorb one plain depthwise 1x1 convolution, got {conv}')
        self.post_weight = nn.Parameter(conv.weight.detach().clone())
        bias = conv.bias if conv.bias is not None else torch.zeros_like(conv.weight.view(-1))
        self.post_bias = nn.Parameter(bias.detach().clone())

    def extra_repr(self) -> str:
        return (f'{self.weight.shape[0]}, kernel_size={self.kernel_size}, stride={self.stride}, '
                f'bias={self.bias is not None}, activation={self.activation}, '
                f'post_1x1={self.post_weight is not None}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = _triton_kernel('depthwise_conv', x, self.weight)
        if kernel is None:
            return self._forward_torch(x)
        return kernel(x, self.weight, self.bias, self.stride, self.activation,
                      None if self.post_weight is None else self.post_weight.view(-1), self.post_bias,
                      _autocast_dtype(x))

    def _forward_torch(self, x: torch.Tensor) -> torch.Tensor:
        channels = self.weight.shape[0]
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.kernel_size // 2, groups=channels)
        if self.activation == 'relu':
            y = F.relu(y)
        elif self.activation == 'silu':
            y = F.silu(y)
        if self.post_weight is not None:  # a per-channel affine map; as a grouped conv the CPU runs it group by group
            y = torch.addcmul(self.post_bias.view(1, -1, 1, 1), y, self.post_weight.view(1, -1, 1, 1))
        return y


class DenseConv(_SquareConv):
    """A groups-1 ``K x K`` convolution (padding ``K // 2``, stride 1 or 2), optionally with a ReLU.

    (B, C_in, H, W) -> (B, C_out, ceil(H/stride), ceil(W/stride)), channels-last on CUDA. The
    convolution is cuDNN's on the channels-last input; with a ReLU, on CUDA without gradients, it runs
    without bias and one Triton pass adds the bias and applies the ReLU (PyTorch would take two
    passes; measured in ``benchmarks/design_measurements.md``).
    """

    accepts = staticmethod(is_dense_conv)
    requirement = 'groups 1, an odd square kernel > 1, same padding and stride 1 or 2'

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor = None, stride: int = 1, relu: bool = False):
        super().__init__(weight, bias, stride)
        self.relu = relu

    def extra_repr(self) -> str:
        return (f'{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, bias={self.bias is not None}, relu={self.relu}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:  # on the CPU the input's own memory format is faster
            x = x.contiguous(memory_format=torch.channels_last)
        epilogue = _triton_kernel('depthwise_conv', x, self.weight) if self.relu and self.bias is not None else None
        if epilogue is not None:
            y = F.conv2d(x, self.weight, None, self.stride, self.kernel_size // 2)
            return epilogue(y, None, self.bias, 1, 'relu', None, None, y.dtype)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.kernel_size // 2)
        return F.relu(y) if self.relu else y


def _convert_convs(module: nn.Module):
    for name, child in module.named_children():
        if is_pointwise_conv(child):
            setattr(module, name, PointwiseConv.from_conv(child))
        elif is_depthwise_conv(child):
            setattr(module, name, DepthwiseConv.from_conv(child))
        elif is_dense_conv(child):
            setattr(module, name, DenseConv.from_conv(child))
        else:
            _convert_convs(child)


def _fuse_epilogues(sequential: nn.Sequential):
    """Within one ``nn.Sequential``: a ReLU directly after a converted conv, and a depthwise 1x1
    conv after a depthwise conv, move into that conv; what moved becomes ``nn.Identity``."""
    previous = None
    for name, layer in sequential._modules.items():
        if type(layer) is nn.Identity:
            continue
        if type(layer) is nn.ReLU and isinstance(previous, (PointwiseConv, DenseConv)) and not previous.relu:
            previous.relu = True
        elif (type(layer) is nn.ReLU and isinstance(previous, DepthwiseConv) and previous.activation is None
              and previous.post_weight is None):
            previous.activation = 'relu'
        elif (isinstance(layer, DepthwiseConv) and isinstance(previous, DepthwiseConv) and layer.kernel_size == 1
              and layer.stride == 1 and layer.activation is None and previous.post_weight is None):
            previous.absorb_following(layer)
        else:
            previous = layer
            continue
        sequential._modules[name] = nn.Identity()


def convert_for_inference(module: nn.Module) -> nn.Module:
    """Replace, in place, the convolutions of a BN-folded ``module`` by their inference forms and
    fuse the epilogues that follow them inside ``nn.Sequential`` containers (see the module doc).
    Loads the Triton depthwise kernel where it can be imported."""
    load_kernel('depthwise_conv')
    _convert_convs(module)
    for sub in module.modules():
        if isinstance(sub, nn.Sequential):
            _fuse_epilogues(sub)
    return module
