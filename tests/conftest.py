import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def inference_kernel_calls(monkeypatch):
    """``calls = inference_kernel_calls(name)``: a list that grows by one per call of SS2D's Triton
    inference kernel ``name``; skips where the scan backend does not resolve to triton."""
    from mmmobilemamba.ops import available_backends, kernel_registry

    def spy(name):
        monkeypatch.delenv('MMMOBILEMAMBA_SCAN_BACKEND', raising=False)
        if available_backends(torch.device('cuda'))[0] != 'triton':
            pytest.skip('the fused kernels run where the backend resolves to triton (mamba-ssm is installed)')
        kernel, calls = kernel_registry.load_kernel(name), []
        monkeypatch.setitem(kernel_registry.LOADED_KERNELS, name, lambda *a: calls.append(1) or kernel(*a))
        return calls
    return spy


@pytest.fixture
def tf32():
    """``tf32(on)``: cuDNN convolutions in TF32 (``on``, PyTorch's default) or in float32, with
    cuBLAS float32 matrix products in float32 (PyTorch's default); both flags restored after the test."""
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = [flag.allow_tf32 for flag in flags]

    def set_tf32(on: bool):
        torch.backends.cudnn.allow_tf32 = on
        torch.backends.cuda.matmul.allow_tf32 = False
    yield set_tf32
    for flag, value in zip(flags, saved):
        flag.allow_tf32 = value
