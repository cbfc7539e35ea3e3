"""tools/analysis_tools/get_flops.py and mmmobilemamba.utils.complexity on the ImageNet classifiers."""

import pytest
import torch
from torch import nn

from mmmobilemamba.utils.complexity import PAPER_IMAGENET, classifier_complexity, count_complexity

from _toolrun import load_tool


@pytest.mark.parametrize('arch', ['T2', 'S6'])
def test_classifier_matches_paper_within_3_percent(arch):
    result = classifier_complexity(arch)
    paper_flops, paper_params, size = PAPER_IMAGENET[arch]
    assert result['img_size'] == size
    assert abs(result['flops'] - paper_flops) / paper_flops < 0.03, result['flops']
    assert abs(result['params'] - paper_params) / paper_params < 0.03, result['params']
    assert 0 < result['scan_flops'] < 0.01 * result['flops']
    assert result['params_fused'] < result['params']  # BN folded for the FLOP count


def test_cli_arch_table(capsys):
    """The S6 row prints the computed columns: FLOPs and params counted here (params also checked
    against the classifier's own parameter count), the paper's values beside them and the difference."""
    from mmmobilemamba.models.classifier import MobileMambaClassifier
    from mmmobilemamba.utils.complexity import format_count
    load_tool('analysis_tools/get_flops').main(['--arch', 's6'])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith('S6 '))
    expected = classifier_complexity('S6')
    assert expected['params'] == sum(p.numel() for p in MobileMambaClassifier('S6').parameters())
    paper_flops, paper_params, size = PAPER_IMAGENET['S6']
    flops_diff = f'{100 * (expected["flops"] - paper_flops) / paper_flops:+.1f}%'
    assert row.split() == ['S6', str(size), format_count(expected['flops']), format_count(paper_flops), flops_diff,
                           format_count(expected['params']), format_count(paper_params),
                           f'{100 * (expected["params"] - paper_params) / paper_params:+.1f}%',
                           format_count(expected['scan_flops'])]


def test_cli_rejects_ambiguous_requests():
    tool = load_tool('analysis_tools/get_flops')
    for argv in ([], ['--arch', 'S6', '--all-archs'], ['x.py', '--arch', 'S6']):
        with pytest.raises(SystemExit):
            tool.parse_args(argv)


def test_scan_count_matches_release_formula():
    """A module owning A_logs of shape (K*D, N) scanning an HxW map counts 9*B*L*K*D*N + B*K*D*L."""

    class Scan(nn.Module):
        def __init__(self):
            super().__init__()
            self.A_logs = nn.Parameter(torch.zeros(2 * 6, 1))

        def forward(self, x):
            return x * 2

    result = count_complexity(Scan(), torch.randn(2, 3, 4, 5))
    assert result['scan_flops'] == 9 * 2 * 20 * 12 * 1 + 2 * 12 * 20
