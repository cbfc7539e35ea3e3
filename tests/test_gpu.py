"""GPU checks of the whole backbone (skipped without CUDA; run on a GPU machine)."""
import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.classifier import MobileMambaClassifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
ARCHS = sorted(MobileMamba.arch_settings)


@pytest.mark.parametrize('arch', ARCHS)
def test_cuda_matches_cpu(arch):
    model = MobileMamba(arch).eval()
    x = torch.randn(2, 3, 160, 224)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda())
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_amp_training_step_is_finite(arch, dtype):
    model = MobileMamba(arch).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler('cuda', enabled=dtype == torch.float16)
    for _ in range(2):
        with torch.autocast('cuda', dtype=dtype):
            loss = sum(o.float().square().mean() for o in model(torch.randn(4, 3, 256, 256, device='cuda')))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_deploy_fusion_on_cuda():
    model = MobileMambaClassifier('S6').cuda().eval()
    x = torch.randn(8, 3, 224, 224, device='cuda')
    with torch.no_grad():
        reference = model(x)
        fused = model.switch_to_deploy()(x)
    assert (fused - reference).abs().max() < 1e-3


def test_with_cp_on_cuda():
    model = MobileMamba('S6', with_cp=True).cuda().train()
    loss = sum(o.mean() for o in model(torch.randn(2, 3, 256, 256, device='cuda')))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_torch_compile_keeps_the_triton_scan_in_one_graph():
    """Inductor compiles the deployed S6 as one graph with our Triton scan inside it."""
    import torch._dynamo
    model = MobileMamba('S6').cuda().eval()
    model.switch_to_deploy()
    x = torch.randn(8, 3, 224, 224, device='cuda')
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    with torch.no_grad():
        expected = model(x)
        compiled = torch.compile(model, fullgraph=True)(x)
    for e, c in zip(expected, compiled):
        torch.testing.assert_close(c, e, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize('channels,height,width', [(37, 4, 4), (544, 7, 7), (320, 14, 14), (64, 33, 31)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_fused_layer_norm_gate_matches_generic(channels, height, width, dtype, inference_kernel_calls):
    import torch.nn.functional as F
    from mmmobilemamba.models.layers.ss2d import BiSS2D, LayerNorm2d
    calls = inference_kernel_calls('layer_norm_gate')
    module = BiSS2D(16).cuda().eval()
    module.out_norm = norm = LayerNorm2d(channels).cuda()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    y = torch.randn(2, channels, height, width, device='cuda') * 3 + 1
    gate = torch.randn(2, 2 * channels, height, width, device='cuda').to(dtype)[:, channels:]  # a channel slice
    with torch.no_grad():
        got = module.norm_and_gate(y, gate, dtype)
    assert calls and got.dtype == dtype and got.shape == y.shape
    expected = F.layer_norm(y.double().permute(0, 2, 3, 1), (channels,), norm.weight.double(),
                            norm.bias.double(), norm.eps).permute(0, 3, 1, 2) * F.silu(gate.double())
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2  # bf16: one rounding of the result
    torch.testing.assert_close(got.double(), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize('arch', ['S6', 'B4'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_inference_kernels_match_generic_ss2d(arch, dtype, inference_kernel_calls, monkeypatch):
    """The whole backbone with SS2D's fused inference kernels agrees with the generic path."""
    from mmmobilemamba.models.layers import ss2d
    calls = inference_kernel_calls('bidirectional_scan')
    model = MobileMamba(arch).cuda().eval()
    x = torch.randn(2, 3, 224, 288, device='cuda')
    with torch.no_grad(), torch.autocast('cuda', dtype=dtype, enabled=dtype != torch.float32):
        fused = model(x)
        assert calls
        monkeypatch.setattr(ss2d, 'triton_inference_kernel', lambda *args, **kwargs: None)
        generic = model(x)
    for f, g in zip(fused, generic):
        error = (f.float() - g.float()).abs().max().item()
        assert error <= (1e-4 if dtype == torch.float32 else 5e-2) * g.float().abs().max().item(), error
