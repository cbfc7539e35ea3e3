"""An optimizer-wrapper constructor that keeps one parameter group per distinct setting.

mmengine's ``DefaultOptimWrapperConstructor`` with a ``paramwise_cfg`` gives every parameter its own
group. PyTorch's fused and foreach optimizers work group by group, so fused AdamW then launches one
kernel per parameter tensor: 337 per step for a RetinaNet-S6 (measured with torch.profiler on an
H200, ``benchmarks/train_speed_h200.md``), where a few would do.
"""
from typing import List, Optional

from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

__all__ = ['merge_param_groups', 'MergedGroupsOptimWrapperConstructor']


def merge_param_groups(groups: List[dict]) -> List[dict]:
    """Groups with equal settings (every key but ``params``) merged, in order of first appearance.

    Each parameter gets exactly the settings it had, so an optimizer updates it as before.
    """
    merged = {}
    for group in groups:
        settings = tuple(sorted((key, value) for key, value in group.items() if key != 'params'))
        if settings in merged:
            merged[settings]['params'].extend(group['params'])
        else:
            merged[settings] = {**group, 'params': list(group['params'])}
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MergedGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` (same arguments, same per-parameter settings) whose
    parameter groups are merged by :func:`merge_param_groups`.

    A checkpoint's optimizer state holds its groups, so a run resumes only with the constructor it
    was saved with.

    Example:
        >>> optim_wrapper = dict(constructor='MergedGroupsOptimWrapperConstructor',
        ...                      optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05, fused=True),
        ...                      paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: Optional[float] = None) -> None:
        if prefix:  # a child module, reached from the top-level call below
            return super().add_params(params, module, prefix, is_dcn_module)
        groups: List[dict] = []
        super().add_params(groups, module, prefix, is_dcn_module)
        params.extend(merge_param_groups(groups))
