"""A module's training forward through ``torch.compile``, on CUDA.

In training, a MobileMamba step spends its GPU time in BatchNorm with batch statistics, depthwise
convolutions and elementwise ops, each a kernel reading and writing the whole feature map; inductor
fuses the normalisation, activations and residual additions around the convolutions into a few
Triton kernels (S6 trunk forward + backward at 224x224, batch 128 on an H200: 32.5 -> 21.2 ms of
kernels in fp32, 33.0 -> 12.7 ms in bf16; ``benchmarks/train_speed_h200.md``). With
``mode='reduce-overhead'`` the compiled kernels are also replayed as CUDA graphs, which removes the
host's launch time as well.

Only CUDA training steps are compiled. Inference runs eagerly: test images come in many sizes,
each a compilation with static shapes, and the deploy mode (``switch_to_deploy``) is the fast
inference path. Compilation happens on the first training step of each input shape (a minute or
two for S6); pad batches to a few sizes (``BatchBucketPad``) so that a detection run compiles a
few graphs, not one per batch.
"""
import importlib.util
import inspect
import warnings
from typing import Callable, Optional, Union

import torch
from torch import nn

__all__ = ['CompiledTraining', 'compile_options']


def compile_options(compile: Union[bool, dict, None]) -> Optional[dict]:
    """``torch.compile`` keyword arguments from a backbone's ``compile`` setting (False/None: off;
    True: inductor's defaults; a dict: its keys). Shapes are static unless ``dynamic`` is given: a
    padded detection run has a few batch shapes, and static kernels are the faster ones."""
    if compile is None or compile is False:
        return None
    if compile is True:
        return dict(dynamic=False)
    if isinstance(compile, dict):
        accepted = [name for name in inspect.signature(torch.compile).parameters if name != 'model']
        unknown = sorted(set(compile) - set(accepted))
        if unknown:
            raise TypeError(f'compile got {unknown}, which torch.compile does not take; its arguments: '
                            f'{", ".join(accepted)}')
        return dict(dict(dynamic=False), **compile)
    raise TypeError(f'compile must be a bool or a dict of torch.compile arguments '
                    f'(e.g. dict(mode="reduce-overhead")), got {compile!r}')


class CompiledTraining:
    """``fn(x)`` compiled with ``torch.compile(fn, **options)`` for CUDA training steps of ``owner``
    (training mode, gradients on); ``fn`` itself elsewhere, or when Triton (which inductor needs on
    CUDA) cannot be imported (one warning).

    The compiled function is made on first use; copies and pickles of the owner compile their own.
    """

    def __init__(self, options: dict):
        self.options = dict(options)
        self._compiled: Optional[Callable] = None
        self._warned = False

    def __deepcopy__(self, memo):
        return CompiledTraining(self.options)

    def __getstate__(self):
        return {'options': self.options, '_compiled': None, '_warned': False}

    def __call__(self, owner: nn.Module, fn: Callable, x: torch.Tensor):
        if not (x.is_cuda and owner.training and torch.is_grad_enabled()):
            return fn(x)
        if self._compiled is None:
            if importlib.util.find_spec('triton') is None:
                if not self._warned:
                    warnings.warn(f'{type(owner).__name__}: compile needs Triton on CUDA (it ships with CUDA '
                                  f'builds of torch) and it is not installed; training steps run eagerly',
                                  RuntimeWarning, stacklevel=3)
                    self._warned = True
                return fn(x)
            self._compiled = torch.compile(fn, **self.options)
        return self._compiled(x)
