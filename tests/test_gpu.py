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
