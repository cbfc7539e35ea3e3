"""tools/analysis_tools/benchmark.py on the CPU with tiny settings: every requested table comes out with numbers."""
import math
import re

import pytest

from _toolrun import load_tool


def _rows(text, title):
    """The data rows (lists of cells) of the markdown table headed ``### title...``."""
    block = text.split(f'### {title}', 1)[1].split('\n\n', 2)[1]
    return [[c.strip() for c in line.strip('|').split('|')] for line in block.splitlines()[2:]]


def test_throughput_and_scan_tables(tmp_path):
    out = tmp_path / 'bench.md'
    load_tool('analysis_tools/benchmark').main([
        '--device', 'cpu', '--sections', 'throughput', 'scan', '--archs', 'T2', '--batch', '1', '--img-size', '128',
        '--warmup', '0', '--iters', '1', '--compare-scan-archs', 'T2', '--out', str(out)])
    text = out.read_text()
    assert '- device:' in text and 'failed' not in text
    throughput = _rows(text, 'Classifier throughput')
    assert [(r[0], r[5]) for r in throughput] == [('MobileMamba-T2', 'no'), ('MobileMamba-T2', 'yes'),
                                                  ('MobileMamba-T2', 'yes, cuDNN convs')]
    for row in throughput:
        images_per_s = float(row[8].replace(',', ''))
        assert images_per_s > 0 and math.isfinite(images_per_s)
    scan_rows = _rows(text, re.search(r'### (Selective scan[^\n]*)', text).group(1))
    assert scan_rows and all(r[3] == 'torch' and float(r[4]) > 0 for r in scan_rows)


def test_cpu_section_runs_the_cpu_engine_with_its_prefixed_options(tmp_path):
    pytest.importorskip('onnxruntime')
    out = tmp_path / 'bench.md'
    load_tool('analysis_tools/benchmark').main([
        '--device', 'cpu', '--sections', 'cpu', '--cpu-archs', 'T2', '--cpu-sizes', '64', '--cpu-threads', '1',
        '--cpu-warmup', '0', '--cpu-iters', '1', '--cpu-forms', 'eager', 'deploy', '--out', str(out)])
    text = out.read_text()
    assert 'failed' not in text and '### CPU latency' in text
    row = next(line for line in text.splitlines() if line.startswith('| T2 '))
    cells = row.strip('| ').split(' | ')
    assert cells[:2] == ['T2', '64x64'] and all(float(c) > 0 for c in cells[2:4])
