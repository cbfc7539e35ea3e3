"""``MergedGroupsOptimWrapperConstructor``: mmengine's per-parameter settings in a few groups, and
the same training updates as mmengine's default constructor."""
import copy

import torch
from mmengine.optim import build_optim_wrapper

import mmmobilemamba  # noqa: F401  (registers the constructor)
from mmmobilemamba import MobileMamba
from mmmobilemamba.engine.merged_groups_constructor import merge_param_groups

OPTIM_WRAPPER = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, fused=True),
                     paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.), 'patch_embed': dict(lr_mult=0.5)}))


def _build(constructor, model):
    return build_optim_wrapper(model, dict(constructor=constructor, **copy.deepcopy(OPTIM_WRAPPER)))


def _settings(optimizer):
    """{parameter id: its group's settings}."""
    return {id(p): {k: v for k, v in group.items() if k != 'params'}
            for group in optimizer.param_groups for p in group['params']}


def test_merging_keeps_each_parameters_settings():
    a, b, c = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    groups = [dict(params=[a], lr=1.0), dict(params=[b], lr=2.0), dict(params=[c], lr=1.0)]
    merged = merge_param_groups(groups)
    assert [g['lr'] for g in merged] == [1.0, 2.0]
    assert merged[0]['params'] == [a, c] and merged[1]['params'] == [b]
    assert groups[0]['params'] == [a]  # the input groups are not changed


def test_few_groups_and_the_same_updates_as_the_default_constructor():
    torch.manual_seed(0)
    model = MobileMamba('T2', norm_eval=False, check_finite=False).train()
    models = {name: copy.deepcopy(model) for name in ('DefaultOptimWrapperConstructor',
                                                     'MergedGroupsOptimWrapperConstructor')}
    wrappers = {name: _build(name, m) for name, m in models.items()}
    default, merged = (wrappers[n].optimizer for n in models)
    params = {name: dict(m.named_parameters()) for name, m in models.items()}
    by_name = [{name: _settings(w.optimizer)[id(p)] for name, p in params[n].items()} for n, w in wrappers.items()]
    assert by_name[0] == by_name[1]  # every parameter keeps its lr and weight decay
    assert len(default.param_groups) == sum(1 for p in model.parameters() if p.requires_grad)
    assert len(merged.param_groups) == len({tuple(sorted(s.items())) for s in by_name[1].values()}) <= 4
    x = torch.randn(2, 3, 128, 128)
    for _ in range(3):
        for name, m in models.items():
            wrappers[name].update_params(sum(o.square().mean() for o in m(x)))
    (a, b) = (dict(m.named_parameters()) for m in models.values())
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not all(torch.equal(a[name], p) for name, p in model.named_parameters())  # the steps changed them
