"""Float32FocalLoss is mmdet's FocalLoss on float32 logits: equal values, gradients in the logits'
dtype, and (on CUDA, mmcv's op) it runs on bfloat16 logits where FocalLoss cannot."""
import pytest
import torch

import mmmobilemamba.models.losses  # noqa: F401  (registers Float32FocalLoss)
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

CFG = dict(use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)


def _inputs(device='cpu'):
    init_default_scope('mmdet')  # other tests may leave another scope as the default
    torch.manual_seed(0)
    pred = torch.randn(64, 80, device=device) * 3
    target = torch.randint(0, 81, (64,), device=device)  # 80 = background
    return pred, target


@pytest.mark.parametrize('device', ['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
def test_equal_to_focal_loss_on_float32(device):
    pred, target = _inputs(device)
    ours, stock = MODELS.build(dict(type='Float32FocalLoss', **CFG)), MODELS.build(dict(type='FocalLoss', **CFG))
    p0, p1 = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    l0, l1 = stock(p0, target, avg_factor=10), ours(p1, target, avg_factor=10)
    torch.testing.assert_close(l1, l0)
    l0.backward()
    l1.backward()
    torch.testing.assert_close(p1.grad, p0.grad)


@pytest.mark.parametrize('device', ['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
def test_bfloat16_logits(device):
    pred, target = _inputs(device)
    ours = MODELS.build(dict(type='Float32FocalLoss', **CFG))
    p = pred.to(torch.bfloat16).requires_grad_()
    loss = ours(p, target, avg_factor=10)
    assert loss.dtype == torch.float32
    loss.backward()
    assert p.grad.dtype == torch.bfloat16
    ref = MODELS.build(dict(type='FocalLoss', **CFG))(pred.to(torch.bfloat16).float(), target, avg_factor=10)
    torch.testing.assert_close(loss, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='mmcv CUDA op')
def test_stock_focal_loss_fails_on_bfloat16_cuda():
    """The reason for Float32FocalLoss: if mmcv gains a bf16 kernel this fails and the class can go."""
    pred, target = _inputs('cuda')
    with pytest.raises(RuntimeError):
        MODELS.build(dict(type='FocalLoss', **CFG))(pred.to(torch.bfloat16), target, avg_factor=10)
