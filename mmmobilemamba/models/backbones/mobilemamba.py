"""MobileMamba backbone for MMDetection / MMSegmentation.

Three stages at strides 16, 32 and 64 after a 16x16 patch-embedding stem (four stride-2 3x3
Conv-BN layers). Each stage is a stack of :class:`MobileMambaBlock` (local perception ->
MRFFI -> FFN); stages 2 and 3 start with a local refinement, a :class:`PatchMerging`
downsample and another local refinement, exactly as the official release builds them, so the
release's ImageNet checkpoints (``patch_embed.*``, ``blocks1.*`` .. ``blocks3.*``) load unchanged.

Inputs of any size >= 64 px work: every stride-2 layer pads, so stage ``i`` of an H x W input
is ``ceil(H / 2**(4+i)) x ceil(W / 2**(4+i))``; no divisibility by 64 is required.
"""
import logging
from typing import Dict, Sequence, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmmobilemamba.ops import SCAN_BACKENDS
from mmmobilemamba.registry import MODELS

from ..layers.block import MobileMambaBlock, PatchMerging, local_refinement
from ..layers.conv_bn import ConvBN, fuse_modules
from ..layers.compiled_training import CompiledTraining, compile_options
from ..layers.cuda_graph import CudaGraphCache, InferenceGraphCache
from ..layers.inference_convs import convert_for_inference

__all__ = ['MobileMamba']

_SHARED = dict(global_ratios=(0.8, 0.7, 0.6), local_ratios=(0.2, 0.2, 0.3),
               kernel_sizes=(7, 5, 3), ssm_ratio=2.0, d_state=1)


@MODELS.register_module()
class MobileMamba(BaseModule):
    """MobileMamba backbone (Lightweight Multi-Receptive Visual Mamba, CVPR 2025).

    Args:
        arch: a key of :attr:`arch_settings` (``'T2'``, ``'T4'``, ``'S6'``, ``'B1'``, ``'B2'``,
            ``'B4'``, case-insensitive) or a dict with the same fields.
        in_channels: image channels.
        out_indices: which stages (0, 1, 2 -> strides 16, 32, 64) to return.
        frozen_stages: -1 freezes nothing, 0 the stem, k the stem and stages 1..k (mmdet style).
        norm_eval: keep BatchNorm layers in eval mode (frozen statistics) while training.
        with_cp: gradient checkpointing per block (saves memory, costs a second forward).
        drop_path_rate: stochastic depth of the last block; ``None`` takes the variant's value.
        global_mixer: ``'bimamba'`` (release) or ``'mambavision'`` (a MambaVision-style mixer,
            2-D and non-causal) for the WTE-Mamba branch.
        local_kernel_sizes: MK-DeConv kernels per stage, e.g. ``((3, 5, 7),) * 3``: one entry per
            stage, each an odd positive int or a sequence of them; ``None`` uses one kernel per
            stage (7/5/3) as released.
        scan_backend: selective-scan implementation: ``'auto'`` (mamba-ssm's CUDA kernel if
            installed, else this package's Triton kernels on CUDA, else PyTorch), ``'triton'``,
            ``'mamba_ssm'``, ``'torch'`` or ``'reference'``; the environment variable
            ``MMMOBILEMAMBA_SCAN_BACKEND`` overrides it.
        check_finite: in training, raise on NaN/Inf input instead of training on it (one host
            synchronisation per forward).
        cuda_graph: in training on CUDA, replay forward and backward as CUDA graphs, captured once
            per input shape (:class:`~mmmobilemamba.models.layers.cuda_graph.CudaGraphCache`): one
            launch instead of over a thousand small kernels, for launch-bound steps (detection
            batches of 2-4). Needs one backbone forward per backward and few input shapes (pad
            batches to fixed sizes: ``BatchBucketPad``); not with ``with_cp``. With ``compile``,
            the compiled kernels are what the graphs replay.
        cuda_graph_inference: in eval mode without gradients on CUDA (``test_step``), replay the
            forward as a CUDA graph, captured once per input shape
            (:class:`~mmmobilemamba.models.layers.cuda_graph.InferenceGraphCache`): at batch 1 the
            eager forward is bound by the host's dispatch of its many small ops. Pad test images
            to a few sizes. Works in deploy mode too (``switch_to_deploy`` drops captured graphs).
        cuda_graph_max_shapes: most input shapes captured, for training and for inference each
            (each keeps its activation memory); batches of other shapes run eagerly.
        compile: in training on CUDA, run the stages through ``torch.compile``
            (:class:`~mmmobilemamba.models.layers.compiled_training.CompiledTraining`): inductor fuses
            BatchNorm, activations and residual additions into few kernels (less GPU time than
            eager). True for inductor's defaults or a dict of ``torch.compile`` arguments; shapes are
            static unless the dict sets ``dynamic``; inductor's CUDA-graph modes are refused (they
            gave wrong gradients; ``cuda_graph=True`` replays the compiled kernels instead). Each
            input shape compiles once (minutes): pad batches to fixed sizes. Not with ``with_cp``.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL)`` loads official or
            converted ImageNet weights strictly, with ``torch.load(weights_only=True)``; add
            ``trusted=True`` only for a file you trust that holds more than weights (see
            ``mmmobilemamba.utils.checkpoint``).

    Forward: (B, in_channels, H, W) -> tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)) for i in
    ``out_indices``, with ``C = arch_settings[arch]['embed_dims']`` and ``s = (16, 32, 64)``.
    """

    # Values from the official release's configs (model/mobilemamba/mobilemamba.py, CFG_MobileMamba_*).
    # B1, B2 and B4 are one network trained at 256, 384 and 512 px.
    arch_settings: Dict[str, dict] = {
        'T2': dict(embed_dims=(144, 272, 368), depths=(1, 2, 2), img_size=192, drop_path_rate=0.0, **_SHARED),
        'T4': dict(embed_dims=(176, 368, 448), depths=(1, 2, 2), img_size=192, drop_path_rate=0.0, **_SHARED),
        'S6': dict(embed_dims=(192, 384, 448), depths=(1, 2, 2), img_size=224, drop_path_rate=0.0, **_SHARED),
        'B1': dict(embed_dims=(200, 376, 448), depths=(2, 3, 2), img_size=256, drop_path_rate=0.03, **_SHARED),
        'B2': dict(embed_dims=(200, 376, 448), depths=(2, 3, 2), img_size=384, drop_path_rate=0.03, **_SHARED),
        'B4': dict(embed_dims=(200, 376, 448), depths=(2, 3, 2), img_size=512, drop_path_rate=0.03, **_SHARED),
    }
    stem_stride = 16
    num_stages = 3

    def __init__(self, arch: Union[str, dict] = 'S6', in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2), frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False, drop_path_rate: float = None,
                 global_mixer: str = 'bimamba', local_kernel_sizes=None, check_finite: bool = True,
                 scan_backend: str = 'auto', cuda_graph: bool = False, cuda_graph_inference: bool = False,
                 cuda_graph_max_shapes: int = 4,
                 compile: Union[bool, dict] = False, init_cfg: dict = None):
        super().__init__(init_cfg=init_cfg)
        self.arch = self._resolve_arch(arch)
        self.in_channels = in_channels
        self.out_indices = self._check_out_indices(out_indices)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be an int in [-1, {self.num_stages}] (-1: none, 0: stem, '
                             f'k: stem + stages 1..k), got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.check_finite = check_finite
        if cuda_graph and with_cp:
            raise ValueError('cuda_graph=True and with_cp=True do not combine: a graph replays the whole step, '
                             'so it cannot recompute activations per block; choose one')
        options = compile_options(compile)
        if options is not None and with_cp:
            raise ValueError('compile does not combine with with_cp: with_cp recomputes blocks outside the '
                             'compiled graph')
        self.cuda_graph = cuda_graph
        self._graphs = CudaGraphCache(max_graphs=cuda_graph_max_shapes)
        self.cuda_graph_inference = cuda_graph_inference
        self._inference_graphs = InferenceGraphCache(max_graphs=cuda_graph_max_shapes)
        self._compiled = CompiledTraining(options) if options is not None else None
        self.scan_backend = self._check_scan_backend(scan_backend)
        self.deploy = False

        dims, depths = self.arch['embed_dims'], self.arch['depths']
        self.embed_dims = tuple(dims)
        self.out_channels = [dims[i] for i in self.out_indices]
        self.strides = [self.stem_stride * 2 ** i for i in self.out_indices]

        self.patch_embed = nn.Sequential(
            ConvBN(in_channels, dims[0] // 8, 3, 2, 1), nn.ReLU(),
            ConvBN(dims[0] // 8, dims[0] // 4, 3, 2, 1), nn.ReLU(),
            ConvBN(dims[0] // 4, dims[0] // 2, 3, 2, 1), nn.ReLU(),
            ConvBN(dims[0] // 2, dims[0], 3, 2, 1))

        rate = self.arch['drop_path_rate'] if drop_path_rate is None else drop_path_rate
        rates = torch.linspace(0, rate, sum(depths)).tolist()
        kernels_per_stage = self._check_local_kernel_sizes(local_kernel_sizes)
        for i in range(self.num_stages):
            layers = []
            if i > 0:
                layers += [local_refinement(dims[i - 1]), PatchMerging(dims[i - 1], dims[i]),
                           local_refinement(dims[i])]
            for j in range(depths[i]):
                layers.append(MobileMambaBlock(
                    dims[i], self.arch['global_ratios'][i], self.arch['local_ratios'][i],
                    self.arch['kernel_sizes'][i], rates[sum(depths[:i]) + j],
                    self.arch['ssm_ratio'], self.arch['d_state'],
                    local_kernel_sizes=kernels_per_stage[i], global_mixer=global_mixer))
            self.add_module(f'blocks{i + 1}', nn.Sequential(*layers))
        for module in self.modules():  # the global mixers (SS2D, MambaVision-style) hold the choice
            if hasattr(module, 'scan_backend'):
                module.scan_backend = scan_backend
        self._freeze_stages()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def _resolve_arch(cls, arch) -> dict:
        if isinstance(arch, dict):
            required = {'embed_dims', 'depths'}
            if not required <= set(arch):
                raise ValueError(f'a custom arch dict needs the keys {sorted(required)}, got {sorted(arch)}')
            return {**_SHARED, 'drop_path_rate': 0.0, **arch}
        key = str(arch).upper()
        if key not in cls.arch_settings:
            raise KeyError(f'unknown MobileMamba arch {arch!r}; choose one of {sorted(cls.arch_settings)} '
                           f'or pass a dict with embed_dims/depths')
        return dict(cls.arch_settings[key])

    def _check_out_indices(self, out_indices) -> tuple:
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        out_indices = tuple(out_indices)
        valid = range(self.num_stages)
        if not out_indices or any(not isinstance(i, int) or i not in valid for i in out_indices) \
                or len(set(out_indices)) != len(out_indices):
            raise ValueError(f'out_indices must be distinct stage indices in {tuple(valid)} '
                             f'(strides 16/32/64), got {out_indices!r}. Note: the official release '
                             f'counts the stem as 0 and uses (1, 2, 3); here stages are 0-based.')
        return tuple(sorted(out_indices))

    def _check_local_kernel_sizes(self, local_kernel_sizes) -> tuple:
        """One MK-DeConv kernel entry per stage (None: the release's single kernel)."""
        if local_kernel_sizes is None:
            return (None,) * self.num_stages
        usage = (f'local_kernel_sizes needs one entry per stage ({self.num_stages}), each an odd positive '
                 f'int or a sequence of them, e.g. ((3, 5, 7),) * {self.num_stages}; got {local_kernel_sizes!r}')
        if isinstance(local_kernel_sizes, (str, int)) or not isinstance(local_kernel_sizes, Sequence) \
                or len(local_kernel_sizes) != self.num_stages:
            raise ValueError(usage)
        stages = []
        for entry in local_kernel_sizes:
            kernels = (entry,) if isinstance(entry, int) else entry
            if not isinstance(kernels, Sequence) or isinstance(kernels, str) or not kernels or any(
                    isinstance(k, bool) or not isinstance(k, int) or k <= 0 or k % 2 == 0 for k in kernels):
                raise ValueError(usage)
            stages.append(tuple(kernels))
        return tuple(stages)

    @staticmethod
    def _check_scan_backend(scan_backend: str) -> str:
        choices = ('auto',) + SCAN_BACKENDS
        if scan_backend not in choices:
            raise ValueError(f'scan_backend must be one of {choices}, got {scan_backend!r}')
        return scan_backend

    @property
    def stages(self):
        return [getattr(self, f'blocks{i + 1}') for i in range(self.num_stages)]

    def _freeze_stages(self):
        """Freeze the stem and stages up to ``frozen_stages``, and the stages after the last output.

        Stages past ``max(out_indices)`` are never run; freezing them keeps their (checkpoint)
        weights while DDP sees no parameters without gradients.
        """
        frozen = [self.patch_embed] + self.stages[:self.frozen_stages] if self.frozen_stages >= 0 else []
        frozen += self.stages[self.out_indices[-1] + 1:]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    # ------------------------------------------------------------------ mmengine hooks
    def init_weights(self):
        if self.init_cfg and self.init_cfg.get('type') == 'Pretrained':
            from mmmobilemamba.utils.checkpoint import load_pretrained
            load_pretrained(self, self.init_cfg['checkpoint'], prefix=self.init_cfg.get('prefix'),
                            trusted=self.init_cfg.get('trusted', False))
            self._is_init = True
        else:
            if self.norm_eval:
                print_log('MobileMamba: norm_eval=True without pretrained weights keeps every BatchNorm at '
                          'its initial statistics (mean 0, variance 1), so BatchNorm does not normalise; '
                          'set norm_eval=False to train from scratch', logger='current', level=logging.WARNING)
            super().init_weights()

    def _apply(self, fn, *args, **kwargs):
        self._clear_graphs()  # captured graphs read the parameters at their old addresses
        return super()._apply(fn, *args, **kwargs)

    def _clear_graphs(self):
        self._graphs.clear()
        self._inference_graphs.clear()

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def switch_to_deploy(self, inference_convs: bool = True):
        """Fold for inference, in place: every BatchNorm into the preceding conv (or following
        linear), each depthwise residual ``x + dwconv(x)`` into its conv, and WTE-Mamba's scales
        into the convs they follow. The result equals the unfused model up to float rounding;
        outputs stay (B, C, H, W) contiguous.

        With ``inference_convs`` (default) the network then runs, on CUDA, channels-last with its 1x1
        convolutions as matrix products over channels and its depthwise convolutions as fused Triton
        kernels, each with the ReLU (and depthwise 1x1 conv) that follows it (see
        :func:`~mmmobilemamba.models.layers.inference_convs.convert_for_inference`); on the CPU the
        same layers run as plain convolutions in the input's memory format. Pass False to keep plain
        ``nn.Conv2d`` layers (e.g. for ONNX export).
        """
        self._clear_graphs()  # their kernels read layers that fusing replaces
        fuse_modules(self)
        if inference_convs:
            convert_for_inference(self)
        self.deploy = True
        return self

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: torch.Tensor):
        if x.dim() != 4:
            raise ValueError(f'MobileMamba expects a (B, C, H, W) batch, got shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'MobileMamba was built for {self.in_channels} input channels but got '
                             f'{x.shape[1]}; set backbone in_channels={x.shape[1]} or fix the data pipeline')
        min_size = self.stem_stride * 2 ** (self.num_stages - 1)
        if min(x.shape[-2:]) < min_size:
            raise ValueError(f'input of {x.shape[-2]}x{x.shape[-1]} px is smaller than MobileMamba\'s total '
                             f'stride {min_size}; resize or pad images to at least {min_size}x{min_size}')
        if self.check_finite and self.training and not torch.isfinite(x).all():
            raise FloatingPointError('MobileMamba got NaN/Inf values in its input batch; check the images '
                                     'and the normalisation in the data pipeline (set check_finite=False '
                                     'to skip this test)')

    def _run_stage(self, stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        for layer in stage:
            if self.with_cp and self.training and torch.is_grad_enabled():
                x = cp.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple:
        self._check_input(x)
        stages = self._forward_stages if self._compiled is None else self._compiled_stages
        if self.cuda_graph_inference and not self.training:  # the cache runs `stages` itself with gradients on
            return self._inference_graphs(self, stages, x)
        if self.cuda_graph and not self.with_cp:  # the cache runs `stages` itself where no graph applies
            return self._graphs(self, stages, x)
        return stages(x)

    def _compiled_stages(self, x: torch.Tensor) -> tuple:
        return self._compiled(self, self._forward_stages, x)  # compiled for CUDA training steps only

    def _forward_stages(self, x: torch.Tensor) -> tuple:
        x = self.patch_embed(x)  # deploy mode on CUDA: channels-last from here on
        outs = []
        for i, stage in enumerate(self.stages):
            x = self._run_stage(stage, x)
            if i in self.out_indices:
                outs.append(x.contiguous())  # deploy mode on CUDA runs channels-last
            if i == self.out_indices[-1]:
                break
        return tuple(outs)

