"""A module's training forward through ``torch.compile``, on CUDA.

In training, a MobileMamba step spends its GPU time in BatchNorm with batch statistics, depthwise
convolutions and elementwise ops, each a kernel reading and writing the whole feature map; inductor
fuses the normalisation, activations and residual additions around the convolutions into a few
Triton kernels (``benchmarks/train_speed_h200.md``).

Only CUDA training steps are compiled. Inference is not: test images come in many sizes, each a
compilation with static shapes; the deploy mode (``switch_to_deploy``) and the backbone's
``cuda_graph_inference`` are the fast inference paths. Compilation happens on the first training
step of each input shape (a minute or two for S6); pad batches to a few sizes (``BatchBucketPad``)
so that a detection run compiles a few graphs, not one per batch.

Inductor's CUDA graphs (``mode='reduce-overhead'`` or ``'max-autotune'``, option
``triton.cudagraphs``) are refused: on an H200 (torch 2.11, Triton 3.6) a T2 in training, compiled
that way, gave gradients 2.2e-2 away from float64 on its third step (its second graph replay), where
the eager step was 4.8e-5 away; its first two steps were as close as eager ones. For graph replay
use the backbone's ``cuda_graph=True`` (with ``compile``, its graphs capture the compiled kernels).

Inductor's layout optimisation (running convolutions channels-last) is off unless the options turn
it on: on channels-last tensors the depthwise convolutions go to cuDNN, whose float32 input
gradient then runs group by group with layout conversions around each call. For S6 at
2x3x800x1344 on an H200 that was 1,248 dgrad kernels and 3,744 conversion kernels, 10.9 of the
backward's 18.2 ms (eager: 9.4 ms); in NCHW the graph keeps ATen's depthwise kernels.
"""
import importlib.util
import inspect
import warnings
from typing import Callable, Optional, Union

import torch
from torch import nn

__all__ = ['CompiledTraining', 'compile_options', 'INDUCTOR_DEFAULTS']

# inductor settings under the user's (see the module doc: depthwise convolutions stay NCHW)
INDUCTOR_DEFAULTS = {'layout_optimization': False}


def compile_options(compile: Union[bool, dict, None]) -> Optional[dict]:
    """``torch.compile`` keyword arguments from a backbone's ``compile`` setting (False/None: off;
    True: inductor's defaults; a dict: its keys). Shapes are static unless ``dynamic`` is given: a
    padded detection run has a few batch shapes, and static kernels are the faster ones. Inductor's
    ``options`` start from :data:`INDUCTOR_DEFAULTS`; the dict's own ``options`` override them."""
    if compile is None or compile is False:
        return None
    if compile is True:
        compile = {}
    if not isinstance(compile, dict):
        raise TypeError(f'compile must be a bool or a dict of torch.compile arguments '
                        f'(e.g. dict(dynamic=True)), got {compile!r}')
    accepted = [name for name in inspect.signature(torch.compile).parameters if name != 'model']
    unknown = sorted(set(compile) - set(accepted))
    if unknown:
        raise TypeError(f'compile got {unknown}, which torch.compile does not take; its arguments: '
                        f'{", ".join(accepted)}')
    options = dict(dict(dynamic=False), **compile)
    inductor = dict(INDUCTOR_DEFAULTS, **(options.get('options') or {}))
    mode = options.pop('mode', None)
    if mode is not None:  # torch.compile takes a mode or options, not both: the mode as its options
        from torch._inductor import list_mode_options
        if mode not in list_mode_options():
            raise ValueError(f'compile mode {mode!r} is not one of torch.compile\'s modes '
                             f'{list(list_mode_options())}')
        inductor = dict(list_mode_options(mode, options['dynamic']), **inductor)
    if inductor.get('triton.cudagraphs'):
        raise ValueError(f'compile={compile!r} asks for inductor\'s CUDA graphs, which gave wrong gradients '
                         'after their first replay (see mmmobilemamba.models.layers.compiled_training); use '
                         'compile=True (or mode="max-autotune-no-cudagraphs"), with cuda_graph=True for graph replay')
    options['options'] = inductor
    return options


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
