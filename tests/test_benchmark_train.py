"""The training benchmark runs end to end on CPU at toy sizes and prints its tables."""
import argparse

import pytest

from mmmobilemamba.apis import benchmark_train


def _rows(text, first_cell):
    return [line for line in text.splitlines() if line.startswith(f'| {first_cell} |')]


def test_train_inference_lever_and_trunk_tables_on_cpu():
    argv = ['--device', 'cpu', '--models', 'retinanet-S6', '--size', '128', '128', '--batch', '2',
            '--iters', '1', '--warmup', '0', '--levers', 'conv-proj+no-finite-check', '--trunk', '--trunk-shapes', '1x64x96',
            '--trunk-levers', 'conv-proj', 'compile+cuda-graph']
    text = benchmark_train.run(benchmark_train.add_arguments(argparse.ArgumentParser()).parse_args(argv))
    train_row, test_row, *lever_rows = _rows(text, 'retinanet-S6')
    cells = [c.strip() for c in train_row.strip('|').split('|')]
    assert cells[1] == '128x128, 2' and float(cells[2].replace(',', '')) > 0, train_row
    assert 'failed' not in test_row and '(' in test_row, test_row
    deploy_row, = _rows(text, 'retinanet-S6 deploy')
    assert 'failed' not in deploy_row and '(' in deploy_row, deploy_row
    assert [row.split('|')[3].strip() for row in lever_rows] == ['none', 'conv-proj+no-finite-check']
    assert not any('failed' in row for row in lever_rows), lever_rows
    trunk = _rows(text, '64x96, 1')
    assert [row.split('|')[3].strip() for row in trunk] == ['ours', 'ours + conv-proj', 'ours + compile+cuda-graph']
    assert 'data loading excluded' in text


def test_unknown_lever_is_refused():
    with pytest.raises(SystemExit):
        benchmark_train.add_arguments(argparse.ArgumentParser()).parse_args(['--levers', 'conv-proj+warp'])


def test_missing_release_is_an_error_that_names_the_fix(tmp_path):
    from mmmobilemamba.apis.benchmark_trunk import build_release_trunk
    with pytest.raises(FileNotFoundError, match='copy of the MobileMamba release'):
        build_release_trunk(str(tmp_path))


def test_every_model_trains_with_the_configs_fused_adamw():
    """The benchmark's optimizer is the release-recipe schedule's (fused AdamW), whatever the backbone."""
    import torch
    from mmengine.config import Config
    schedule = Config.fromfile('configs/_base_/schedules/det_adamw_1x.py').optim_wrapper.optimizer
    wrapper = benchmark_train.build_optim_wrapper(torch.nn.Linear(4, 2), 'fp32')
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)
    for key in ('weight_decay', 'fused', 'betas'):  # lr aside: it does not change the time
        assert wrapper.optimizer.defaults[key] == schedule[key], key


def test_benchmark_optimizer_has_one_group_per_setting_as_the_configs():
    """Norm parameters (no decay) and the rest: two groups, as MergedGroupsOptimWrapperConstructor
    gives the configs, not one per parameter tensor."""
    from collections import OrderedDict

    import torch
    model = torch.nn.Sequential(OrderedDict(conv1=torch.nn.Conv2d(3, 4, 3), norm1=torch.nn.BatchNorm2d(4),
                                            conv2=torch.nn.Conv2d(4, 4, 1), norm2=torch.nn.BatchNorm2d(4)))
    groups = benchmark_train.build_optim_wrapper(model, 'fp32').optimizer.param_groups
    assert sorted((g['weight_decay'], len(g['params'])) for g in groups) == [(0.0, 4), (0.05, 4)]


def test_interleaved_timing_calls_every_function_once_per_round_in_rotating_order():
    import torch
    from mmmobilemamba.apis.timing import interleaved_wall_ms
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in 'abc'}
    medians = interleaved_wall_ms(fns, torch.device('cpu'), iters=3)
    assert calls == list('abc') + list('bca') + list('cab')
    assert set(medians) == set('abc') and all(ms >= 0 for ms in medians.values())


@pytest.mark.parametrize('name, expected', [('retinanet-R18', False), ('pspnet-S6', True)])
def test_cudnn_autotuning_follows_the_config_runtime(name, expected):
    """mmdet's runtime leaves cuDNN autotuning off (Mask R-CNN's RoI counts change every step),
    mmseg's turns it on: the benchmark times each model the way its Runner would run it."""
    import torch
    before = torch.backends.cudnn.benchmark
    try:
        cfg = benchmark_train.load_config(name, benchmark_train._spec_for(name, argparse.Namespace(batch=None, size=None)),
                                          with_loss_fp32=False)
        torch.backends.cudnn.benchmark = not expected
        benchmark_train.use_config_cudnn_benchmark(cfg, torch.device('cuda'))
        assert torch.backends.cudnn.benchmark is expected
    finally:
        torch.backends.cudnn.benchmark = before


def test_release_kernel_source_made_cuda13_compatible():
    """The two CUB helpers CUDA 13 removed are written out; nothing else in the source changes."""
    from mmmobilemamba.apis.benchmark_trunk import cub13_compatible
    source = ('    explicit __device__ WarpReverseScan()\n        : lane_id(cub::LaneId())\n'
              '    {\n            cub::CTA_SYNC();\n            // cub::CTA_SYNC();\n    int keep = cub::Sum();\n')
    patched = cub13_compatible(source)
    assert 'cub::LaneId' not in patched and 'cub::CTA_SYNC' not in patched
    assert ': lane_id(threadIdx.x % 32)' in patched and patched.count('__syncthreads();') == 2
    assert patched.replace('threadIdx.x % 32', 'cub::LaneId()').replace('__syncthreads()', 'cub::CTA_SYNC()') == source


def test_release_kernel_that_cannot_be_built_here_is_a_clear_error(tmp_path):
    """Without a GPU and nvcc (CI), a release copy whose kernel is not importable says how to get it."""
    import torch
    from mmmobilemamba.apis.benchmark_trunk import build_release_trunk
    if torch.cuda.is_available():
        pytest.skip('this machine could build the kernel')
    (tmp_path / 'downstream' / 'det' / 'backbones' / 'lib_mamba' / 'kernels' / 'selective_scan').mkdir(parents=True)
    with pytest.raises(ImportError, match='needs a GPU and nvcc'):
        build_release_trunk(str(tmp_path))


def _backbone_of(name):
    """The backbone of the MODEL_SPECS entry ``name``, built on the CPU as the benchmark builds it."""
    import torch
    spec = benchmark_train._spec_for(name, argparse.Namespace(batch=None, size=None))
    cfg = benchmark_train.load_config(name, spec, with_loss_fp32=False)
    return benchmark_train.build_model(cfg, torch.device('cpu')).backbone


def test_compiled_cuda_graph_spec_builds_the_cuda_graph_config_with_compile():
    backbone = _backbone_of('retinanet-S6-compiled-cuda-graph')
    assert backbone.cuda_graph and backbone._compiled is not None and not backbone.check_finite


@pytest.mark.parametrize('name, stem_trained', [('retinanet-R18', False), ('retinanet-R18-all-stages', True)])
def test_only_the_all_stages_r18_spec_trains_the_stem_and_first_stage(name, stem_trained):
    backbone = _backbone_of(name)
    backbone.train()  # mmdet's ResNet freezes its stages here
    assert backbone.depth == 18
    assert all(p.requires_grad == stem_trained for p in [*backbone.conv1.parameters(), *backbone.layer1.parameters()])
    assert all(p.requires_grad for p in backbone.layer2.parameters())
