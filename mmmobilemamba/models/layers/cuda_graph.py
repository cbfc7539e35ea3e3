"""CUDA-graph replay of a module's training forward and backward (:class:`CudaGraphCache`) or of its
inference forward (:class:`InferenceGraphCache`), one graph per input signature.

A MobileMamba training step launches over a thousand small kernels (S6 at 2x3x800x1344: about
1,270 for forward + backward), so at detection batch sizes the host's launch rate, not the GPU,
sets its speed. :class:`CudaGraphCache` captures forward and backward once per input signature
(shape, dtype, autocast dtype) with ``torch.cuda.make_graphed_callables`` and replays them
afterwards: one launch each.

Rules of graph replay that callers inherit:

* the graph's outputs are static tensors, overwritten by the next replay: run one forward per
  backward (the usual training step; not two forwards of the same module before one backward);
* a replayed backward hands each parameter its gradient in a buffer of the graph, which the next
  replay overwrites: a step whose parameters already hold gradients (gradient accumulation, or
  ``zero_grad(set_to_none=False)``) runs eagerly (one warning) so that they add up correctly;
* the parameters must stay where they are (an optimizer updating them in place is fine; moving
  the module to another device or dtype clears the cache, see :meth:`CudaGraphCache.clear`);
* each captured signature keeps its own activation memory, so the cache holds at most
  ``max_graphs`` signatures and runs later ones eagerly (one warning); pad batches to a few fixed
  sizes (``BatchBucketPad`` for detection, as in ``configs/det/*_cuda-graph.py``; segmentation
  crops are fixed already);
* BatchNorm in training mode (batch statistics) graphs like any other layer: on an H200, one
  graphed step of a T2 with randomised norms gave the eager step's gradients to 7e-7 (relative),
  while either form's float32 gradients were up to 1.7e-2 away from a float64 reference (8x256x320
  input). Compare graphed and eager steps on the same weights: over separate optimizer
  trajectories such differences grow.
"""
import contextlib
import warnings
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

__all__ = ['CudaGraphCache', 'InferenceGraphCache']


class _Step(nn.Module):
    """``fn(x)`` as a module whose parameters are ``owner``'s, the form ``make_graphed_callables``
    differentiates: a plain function would get no parameter gradients."""

    def __init__(self, owner: nn.Module, fn: Callable):
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, x: torch.Tensor):
        return self.fn(x)


def _autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def _capture_autocast(device_type: str, autocast_dtype: Optional[torch.dtype]):
    """The caller's autocast without its weight-cast cache: cached casts made during capture would be
    freed outside the graph's memory pool (``make_graphed_callables`` refuses them)."""
    if autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=autocast_dtype, cache_enabled=False)


def _signature(x: torch.Tensor) -> Tuple:
    return tuple(x.shape), x.dtype, x.device, _autocast_dtype(x.device.type)


class _GraphCache:
    """Graphs of ``fn`` keyed by input signature (shape, dtype, device, autocast dtype), at most
    ``max_graphs`` of them. Subclasses decide in ``__call__`` when a call is graphed, and capture in
    ``_capture(owner, fn, x, autocast_dtype)``, which returns the replaying callable."""

    option = ''        # the backbone option, for warnings
    full_advice = ''   # the end of the warning once the cache is full

    def __init__(self, max_graphs: int = 4, num_warmup_iters: int = 3):
        if max_graphs < 1:
            raise ValueError(f'max_graphs must be >= 1, got {max_graphs}')
        self.max_graphs = max_graphs
        self.num_warmup_iters = num_warmup_iters
        self._graphs: Dict[Tuple, Callable] = {}
        self._warned = set()  # the kinds of warning given once already

    def __len__(self) -> int:
        return len(self._graphs)

    def __deepcopy__(self, memo):  # a copied module has its own parameters: it captures its own graphs
        return type(self)(self.max_graphs, self.num_warmup_iters)

    def __getstate__(self):  # graphs are device state: a pickled module captures again where it runs
        return {**self.__dict__, '_graphs': {}, '_warned': set()}

    def clear(self):
        """Drop every captured graph (and its memory); the next call captures again."""
        self._graphs.clear()

    def _warn_once(self, kind: str, message: str, stacklevel: int):
        """A RuntimeWarning of ``kind``, the first time only; ``stacklevel`` counted from the caller."""
        if kind not in self._warned:
            warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)
            self._warned.add(kind)

    def _graphed_call(self, owner: nn.Module, fn: Callable, x: torch.Tensor):
        """``fn(x)`` through the graph of ``x``'s signature, captured on first use; ``fn`` itself for
        new signatures once the cache is full (one warning)."""
        key = _signature(x)
        graphed = self._graphs.get(key)
        if graphed is None:
            if len(self._graphs) >= self.max_graphs:
                self._warn_once('full', f'{type(owner).__name__}: {self.option} holds {self.max_graphs} input shapes '
                                f'already; {tuple(x.shape)} and later new shapes run without a graph{self.full_advice}',
                                stacklevel=4)
                return fn(x)
            graphed = self._graphs[key] = self._capture(owner, fn, x, key[-1])
        return graphed(x)


class CudaGraphCache(_GraphCache):
    """Graphed training steps of ``fn`` (a method of ``owner``), keyed by input signature.

    Args:
        max_graphs: most signatures captured; later ones run ``fn`` eagerly.
        num_warmup_iters: eager runs on a side stream before each capture (cuDNN autotuning,
            Triton compilation and allocator warm-up must happen outside the graph).
    """

    option = 'cuda_graph'
    full_advice = (' (slower). Pad batches to a few fixed sizes (BatchBucketPad, see '
                   'configs/det/retinanet_mobilemamba_s6_cuda-graph.py) or raise the limit.')

    def __call__(self, owner: nn.Module, fn: Callable, x: torch.Tensor):
        """``fn(x)`` through the graph of ``x``'s signature, captured on first use; ``fn`` itself
        off CUDA, outside training (``owner`` in eval mode or gradients off), while parameters hold
        gradients, or when the cache is full."""
        if not (x.is_cuda and owner.training and torch.is_grad_enabled()):
            return fn(x)
        if any(p.grad is not None for p in owner.parameters()):
            self._warn_once('gradients', f'{type(owner).__name__}: cuda_graph runs steps eagerly while parameters '
                            f'hold gradients from an earlier backward (gradient accumulation, or zero_grad with '
                            f'set_to_none=False): replays would overwrite them', stacklevel=3)
            return fn(x)
        return self._graphed_call(owner, fn, x)

    def _capture(self, owner: nn.Module, fn: Callable, x: torch.Tensor, autocast_dtype) -> Callable:
        with _capture_autocast(x.device.type, autocast_dtype):
            return torch.cuda.make_graphed_callables(
                _Step(owner, fn), (x.detach().clone(),), num_warmup_iters=self.num_warmup_iters,
                allow_unused_input=True)


class InferenceGraphCache(_GraphCache):
    """Forwards of ``fn`` without gradients (``torch.no_grad()``, as in mmengine's test and validation
    loops, or ``torch.inference_mode()``), replayed from CUDA graphs keyed by input signature (shape,
    dtype, autocast dtype).

    At batch 1 a MobileMamba forward is bound by the host dispatching some 700 aten calls (ResNet-18:
    86); a replay is one launch. ``fn`` must return a tuple of tensors; each call returns copies of
    the graph's outputs, so results held from earlier calls stay valid. Off CUDA, with gradients on,
    or for new signatures once ``max_graphs`` are captured (one warning), ``fn`` runs eagerly.
    Parameters and buffers must stay where they are (in-place updates such as ``load_state_dict``
    are fine); after the module's layers are replaced or moved call :meth:`clear`.

    Args:
        max_graphs: most signatures captured (each keeps its own activation memory).
        num_warmup_iters: eager runs on a side stream before each capture (cuDNN autotuning and
            Triton compilation must happen outside the graph).
    """

    option = 'cuda_graph_inference'
    full_advice = '. Pad test images to a few sizes or raise cuda_graph_max_shapes.'

    def __init__(self, max_graphs: int = 4, num_warmup_iters: int = 2):
        super().__init__(max_graphs, num_warmup_iters)

    def __call__(self, owner: nn.Module, fn: Callable, x: torch.Tensor):
        if not x.is_cuda or torch.is_grad_enabled():
            return fn(x)
        return self._graphed_call(owner, fn, x)

    def _capture(self, owner: nn.Module, fn: Callable, x: torch.Tensor, autocast_dtype) -> Callable:
        with torch.inference_mode(False):  # a normal tensor, so later calls under no_grad can copy into it
            static_input = x.clone()
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(self.num_warmup_iters):
                fn(static_input)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with _capture_autocast(x.device.type, autocast_dtype), torch.cuda.graph(graph):
            static_outputs = fn(static_input)

        def replay(inputs: torch.Tensor) -> tuple:
            static_input.copy_(inputs)
            graph.replay()
            return tuple(out.clone() for out in static_outputs)

        return replay
