"""README.md quotes the tolerances that the tests comparing two forms of a model use."""
from pathlib import Path

from _random_weights import BF16, CPU_FP32, GPU_FP32, GPU_TF32

README = Path(__file__).parent.parent / 'README.md'


def test_readme_quotes_the_tests_tolerances():
    paragraphs = README.read_text().split('\n\n')
    (quoted,) = [p for p in paragraphs if p.startswith('Two forms of one model')]
    for tolerance in (CPU_FP32, GPU_FP32, GPU_TF32, BF16):
        assert f'{tolerance:.0e}'.replace('e-0', 'e-') in quoted, tolerance
