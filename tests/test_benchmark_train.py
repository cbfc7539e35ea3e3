"""The training benchmark runs end to end on CPU at toy sizes and prints its tables."""
import argparse

import pytest

from mmmobilemamba.apis import benchmark_train


def _rows(text, first_cell):
    return [line for line in text.splitlines() if line.startswith(f'| {first_cell} |')]


def test_train_inference_lever_and_trunk_tables_on_cpu():
    argv = ['--device', 'cpu', '--models', 'retinanet-S6', '--size', '128', '128', '--batch', '2',
            '--iters', '1', '--warmup', '0', '--levers', 'conv-proj+no-finite-check', '--trunk', '--trunk-shapes', '1x64x96',
            '--trunk-levers', 'conv-proj']
    text = benchmark_train.run(benchmark_train.add_arguments(argparse.ArgumentParser()).parse_args(argv))
    train_row, test_row, *lever_rows = _rows(text, 'retinanet-S6')
    cells = [c.strip() for c in train_row.strip('|').split('|')]
    assert cells[1] == '128x128, 2' and float(cells[2].replace(',', '')) > 0, train_row
    assert 'failed' not in test_row and '(' in test_row, test_row
    assert [row.split('|')[3].strip() for row in lever_rows] == ['none', 'conv-proj+no-finite-check']
    assert not any('failed' in row for row in lever_rows), lever_rows
    trunk = _rows(text, '64x96, 1')
    assert [row.split('|')[3].strip() for row in trunk] == ['ours', 'ours + conv-proj']
    assert 'data loading excluded' in text


def test_unknown_lever_is_refused():
    with pytest.raises(SystemExit):
        benchmark_train.add_arguments(argparse.ArgumentParser()).parse_args(['--levers', 'conv-proj+warp'])


def test_missing_release_is_an_error_that_names_the_fix(tmp_path):
    from mmmobilemamba.apis.benchmark_trunk import build_release_trunk
    with pytest.raises(FileNotFoundError, match='copy of the MobileMamba release'):
        build_release_trunk(str(tmp_path))
