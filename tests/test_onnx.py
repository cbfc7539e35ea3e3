"""ONNX export: the exportable scan against the float64 reference, ONNX Runtime against PyTorch
with dynamic input sizes (norms randomised), one clear error for targets that cannot be exported."""
import importlib.util
import os
import re

import pytest
import torch
import torch.nn.functional as F

from mmmobilemamba.models.layers import ss2d
from mmmobilemamba.ops import selective_scan_reference
from mmmobilemamba.ops.scan_exportable import (chunked_scan_exportable, flattened_selective_scan_exportable,
                                               selective_scan_exportable)

from _toolrun import DET_CONFIG, ROOT
from test_scan import make_inputs

pytest.importorskip('onnxruntime')
from mmmobilemamba.apis import onnx_export as ox  # noqa: E402


@pytest.mark.parametrize('length,states,groups,chunks', [
    (1, 1, 2, (16, 16)), (15, 1, 2, (16, 16)), (16, 1, 2, (16, 16)), (17, 1, 1, (16, 16)), (200, 1, 2, (16, 16)),
    (1030, 1, 2, (16, 16)), (300, 3, 2, (8, 4, 2)), (70, 2, 1, (4,)), (100, 1, 2, (12, 3)), (33, 1, 2, ())])
def test_exportable_scan_matches_float64_reference(length, states, groups, chunks):
    inputs = make_inputs(2, groups, 3, states, length)
    expected = selective_scan_reference(*inputs)
    exact = selective_scan_exportable(*inputs, chunks=chunks)
    assert exact.dtype == torch.float64
    torch.testing.assert_close(exact, expected, rtol=1e-10, atol=1e-10)
    single = selective_scan_exportable(*[t.float() for t in inputs], chunks=chunks)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), expected, rtol=1e-4, atol=1e-4)


def test_chunked_scan_needs_chunks_of_two_or_more():
    with pytest.raises(ValueError, match='>= 2'):
        chunked_scan_exportable(torch.zeros(1, 8), torch.zeros(1, 8), chunks=(16, 1))


@pytest.mark.parametrize('directions', [1, 2])
def test_flattened_exportable_scan_matches_the_model_scan(directions):
    channels, rank, states = 6, 2, 1
    module = torch.nn.Module()
    ss2d.init_scan_parameters(module, channels, rank, states, directions)
    with torch.no_grad():
        module.A_logs.normal_()
        module.Ds.normal_()
    x = torch.randn(2, channels, 9, 13)
    params = (module.x_proj_weight, module.dt_projs_weight, module.dt_projs_bias, module.A_logs, module.Ds)
    with torch.no_grad():
        torch.testing.assert_close(flattened_selective_scan_exportable(x, *params),
                                   ss2d.flattened_selective_scan(x, *params), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('size', [(5, 7), (13, 9), (2, 2), (12, 18)])
def test_exportable_adaptive_pool_matches_torch(size):
    x = torch.randn(2, 3, *size)
    for bins in (1, 2, 3, 6):
        torch.testing.assert_close(ox.ExportableAdaptiveAvgPool2d(bins)(x), F.adaptive_avg_pool2d(x, bins))


def test_export_forms_are_restored():
    original = ss2d.flattened_selective_scan
    with ox.export_forms(torch.nn.Identity()):
        assert ss2d.flattened_selective_scan is flattened_selective_scan_exportable
    assert ss2d.flattened_selective_scan is original


def _run_cli(argv, capsys):
    spec = importlib.util.spec_from_file_location('_mmm_export_onnx', os.path.join(ROOT, 'tools', 'deployment',
                                                                                   'export_onnx.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    code = tool.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_checked(out, tolerance=1e-4):
    lines = out.strip().splitlines()
    match = re.fullmatch(r'max abs diff: (\S+)', lines[-1])
    assert match, lines[-1]
    assert float(match.group(1)) <= tolerance
    sizes = [tuple(map(int, m.groups())) for m in map(re.compile(r'(\d+)x(\d+): max abs diff').match, lines) if m]
    assert len(sizes) == 3 and any(h % 64 or w % 64 for h, w in sizes)


def test_backbone_exports_with_dynamic_shapes(tmp_path, capsys):
    import onnx
    path = str(tmp_path / 's6.onnx')
    code, out, err = _run_cli(['S6', '--out', path, '--shape', '64', '96', '--dynamic', '--check'], capsys)
    assert code == 0, err
    _assert_checked(out)
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ['batch', '', 'height', 'width']
    assert not any(n.op_type == 'BatchNormalization' for n in onnx.load(path).graph.node)


def test_randomized_norms_make_blocks_non_trivial():
    from mmmobilemamba.models.backbones import MobileMamba
    block = MobileMamba('T2').blocks1[0].eval()
    x = torch.randn(1, 144, 8, 8)
    with torch.no_grad():
        # fresh: every residual branch adds zero (zero-initialised norms), the outer skip doubles
        assert torch.equal(block(x), 2 * x)
        assert not torch.allclose(ox.randomize_norms(block)(x), 2 * x, atol=1e-2)


def test_detector_exports_with_dynamic_shapes(tmp_path, capsys):
    path = str(tmp_path / 'retinanet.onnx')
    code, out, err = _run_cli([DET_CONFIG, '--out', path, '--shape', '128', '128', '--dynamic', '--check'], capsys)
    assert code == 0, err
    _assert_checked(out)


@pytest.mark.parametrize('target,message', [
    ('S7', 'unknown export target'),
    ('configs/det/mask-rcnn_mobilemamba_s6.py', 'MaskRCNN cannot be exported'),
    ('configs/det/no_such_config.py', 'not found')])
def test_bad_targets_give_one_clear_error(tmp_path, capsys, target, message):
    code, out, err = _run_cli([target, '--out', str(tmp_path / 'x.onnx')], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith('error: ') and message in err
    assert not (tmp_path / 'x.onnx').exists()


def test_inference_convs_keep_the_input_layout_on_cpu():
    from mmmobilemamba.models.layers.inference_convs import DenseConv, PointwiseConv
    x = torch.randn(1, 8, 10, 12)
    pointwise = torch.nn.Conv2d(8, 16, 1)
    dense = torch.nn.Conv2d(8, 16, 3, 2, 1)
    with torch.no_grad():
        for conv, converted in ((pointwise, PointwiseConv.from_conv(pointwise)), (dense, DenseConv.from_conv(dense))):
            y = converted(x)
            assert y.is_contiguous()
            torch.testing.assert_close(y, conv(x))


def test_cpu_benchmark_times_every_form_side_by_side(capsys):
    import argparse

    from mmmobilemamba.apis import benchmark_cpu
    args = benchmark_cpu.add_arguments(argparse.ArgumentParser(), prefix='cpu-').parse_args(
        ['--cpu-archs', 't2', '--cpu-sizes', '64', '--cpu-threads', '1', '--cpu-warmup', '0', '--cpu-iters', '1',
         '--cpu-forms', 'ORT', 'eager', 'deploy'])
    table = benchmark_cpu.run(args)
    header, row = [line for line in table.splitlines() if line.startswith('| ') and '---' not in line]
    assert header.split(' | ')[2:5] == ['eager ms', 'deploy ms', 'ORT ms']
    cells = row.strip('| ').split(' | ')
    assert cells[:2] == ['T2', '64x64'] and all(float(c) > 0 for c in cells[2:5])


def test_cpu_benchmark_forms_take_turns_in_blocks():
    from mmmobilemamba.apis.benchmark_cpu import time_in_blocks
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in ('a', 'b')}
    ms = time_in_blocks(runners, warmup=1, iters=5, blocks=2, pause_s=0)
    assert set(ms) == {'a', 'b'}
    # warm-up, then per block one untimed and 3 (then 2) timed calls of a, then of b
    assert ''.join(calls) == 'ab' + 'aaaa' + 'bbbb' + 'aaa' + 'bbb'


def test_checkpoint_fills_the_exported_model(tmp_path):
    saved = ox.randomize_norms(ox.load_target('T2').reference, seed=3)
    path = str(tmp_path / 't2.pth')
    torch.save(saved.state_dict(), path)
    target = ox.load_target('T2', checkpoint=path)
    for name, tensor in saved.state_dict().items():
        assert torch.equal(target.reference.state_dict()[name], tensor), name
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():  # the exported (folded) copy computes what the loaded model computes
        for got, want in zip(target.model(x), saved(x)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
