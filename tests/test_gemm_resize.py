"""GEMM bilinear resizing equals F.interpolate (values and gradients), and the GemmResize* heads
give the stock mmseg heads' losses and predictions on the same weights."""

import pytest
import torch
import torch.nn.functional as F

from mmmobilemamba.models.layers.gemm_resize import bilinear_matrix, bilinear_resize_gemm

SIZES = [((8, 8), (512, 512)),      # a stride-64 head to its 512x512 label
         ((16, 16), (512, 512)),
         ((7, 5), (23, 41)),        # odd sizes, non-integer scale factors
         ((13, 9), (13, 9)),        # unchanged
         ((64, 48), (20, 30)),      # downsampling
         ((1, 6), (5, 1)),          # single rows / columns
         ((32, 1), (100, 7))]


DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('in_size,out_size', SIZES)
def test_equals_interpolate_forward_and_backward(in_size, out_size, align_corners, device):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *in_size, device=device, requires_grad=True)
    x_gemm = x.detach().clone().requires_grad_()
    ref = F.interpolate(x, out_size, mode='bilinear', align_corners=align_corners)
    out = bilinear_resize_gemm(x_gemm, out_size, align_corners)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, atol=2e-6, rtol=1e-5)
    grad = torch.randn_like(ref)
    ref.backward(grad)
    out.backward(grad)
    torch.testing.assert_close(x_gemm.grad, x.grad, atol=2e-5 * grad.numel() ** 0.5 / x.numel() ** 0.5 + 1e-5,
                               rtol=1e-5)


def test_float64_is_exact_to_float64_rounding():
    x = torch.randn(1, 2, 9, 11, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: bilinear_resize_gemm(t, (17, 30)), (x,))
    ref = F.interpolate(x, (17, 30), mode='bilinear', align_corners=False)
    torch.testing.assert_close(bilinear_resize_gemm(x, (17, 30)), ref, atol=1e-12, rtol=0)


def test_matrix_form_only_where_a_gradient_is_wanted():
    x = torch.randn(1, 2, 4, 4)
    assert bilinear_resize_gemm(x, (16, 16)).grad_fn is None                   # F.interpolate, no graph
    y = bilinear_resize_gemm(x.requires_grad_(), (16, 16))
    assert type(y.grad_fn).__name__ == '_SeparableResizeBackward'
    with torch.no_grad():
        assert bilinear_resize_gemm(x, (16, 16)).grad_fn is None


@pytest.mark.parametrize('device', DEVICES)
def test_half_inputs_rounded_once_and_dtype_kept(device):
    x = torch.randn(2, 4, 8, 8, device=device)
    out = bilinear_resize_gemm(x.to(torch.bfloat16).requires_grad_(), (64, 40))
    assert out.dtype == torch.bfloat16
    ref = F.interpolate(x.to(torch.bfloat16).float(), (64, 40), mode='bilinear', align_corners=False)
    # float32 sums in another order than F.interpolate's: at most one bfloat16 ulp apart
    torch.testing.assert_close(out.float(), ref, atol=1e-6, rtol=2 ** -8)
    if device == 'cuda':  # under autocast the products still run in float32
        with torch.autocast('cuda', dtype=torch.float16):
            out = bilinear_resize_gemm(x.half().requires_grad_(), (64, 40))
        ref = F.interpolate(x.half(), (64, 40), mode='bilinear', align_corners=False)
        assert out.dtype == torch.float16
        torch.testing.assert_close(out, ref, atol=1e-3, rtol=2 ** -10)


def test_matrix_rows_are_interpolation_weights():
    m = bilinear_matrix(5, 12, False, torch.device('cpu'), torch.float32)
    assert m.shape == (12, 5)
    torch.testing.assert_close(m.sum(1), torch.ones(12))
    assert int((m > 0).sum(1).max()) <= 2
    # the identity resize is the identity matrix
    torch.testing.assert_close(bilinear_matrix(6, 6, False, torch.device('cpu'), torch.float32), torch.eye(6))


# ------------------------------------------------------------------ the registered mmseg heads
def _seg_inputs(batch=2, size=64, num_classes=5):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(1)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size)))
        label = torch.randint(0, num_classes, (1, size, size))
        label[:, :4] = 255  # some ignored pixels
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return samples


HEADS = {
    'PSPHead': dict(in_channels=16, in_index=0, channels=8, pool_scales=(1, 2)),
    'ASPPHead': dict(in_channels=16, in_index=0, channels=8, dilations=(1, 2)),
    'FCNHead': dict(in_channels=16, in_index=0, channels=8, num_convs=1, concat_input=False,
                    loss_decode=[dict(type='CrossEntropyLoss', loss_weight=0.4),
                                 dict(type='CrossEntropyLoss', loss_weight=0.6)]),
    'FPNHead': dict(in_channels=[16, 16], in_index=[0, 1], feature_strides=[8, 16], channels=8),
}


@pytest.mark.parametrize('stock', sorted(HEADS))
def test_head_loss_and_predict_equal_stock(stock):
    import mmmobilemamba.models.decode_heads  # noqa: F401  (registers the GemmResize* heads)
    from mmseg.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cfg = dict(type=stock, num_classes=5, dropout_ratio=0.0, align_corners=False,
               norm_cfg=dict(type='BN'), **HEADS[stock])
    ref_head = MODELS.build(cfg)
    head = MODELS.build(dict(cfg, type='GemmResize' + stock))
    assert type(head).__name__ == 'GemmResize' + stock and isinstance(head, type(ref_head))
    head.load_state_dict(ref_head.state_dict())
    torch.manual_seed(2)
    feats = [torch.randn(2, 16, 8, 8), torch.randn(2, 16, 4, 4)]
    samples = _seg_inputs()
    ref_losses = ref_head.loss(feats, samples, train_cfg={})
    losses = head.loss([f.clone() for f in feats], samples, train_cfg={})
    assert set(losses) == set(ref_losses)
    for key in ref_losses:
        torch.testing.assert_close(losses[key], ref_losses[key], atol=1e-6, rtol=1e-5)
    ref_grads = torch.autograd.grad(sum(v for k, v in ref_losses.items() if 'loss' in k), ref_head.conv_seg.weight)
    grads = torch.autograd.grad(sum(v for k, v in losses.items() if 'loss' in k), head.conv_seg.weight)
    torch.testing.assert_close(grads[0], ref_grads[0], atol=1e-6, rtol=1e-5)
    ref_head.eval()
    head.eval()
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        torch.testing.assert_close(head.predict(feats, metas, test_cfg={}),
                                   ref_head.predict(feats, metas, test_cfg={}), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('config,heads', [
    ('configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py', ('GemmResizePSPHead', 'GemmResizeFCNHead')),
    ('configs/seg/deeplabv3_mobilemamba_b4_512x512_80k_ade20k.py', ('GemmResizeASPPHead', 'GemmResizeFCNHead')),
    ('configs/seg/fpn_mobilemamba_b4_512x512_160k_ade20k.py', ('GemmResizeFPNHead', None)),
])
def test_seg_configs_use_gemm_heads(config, heads):
    import os
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    # Config.fromfile imports the config's custom_imports, which register the heads
    cfg = Config.fromfile(os.path.join(os.path.dirname(os.path.dirname(__file__)), config))
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert type(model.decode_head).__name__ == heads[0]
    assert (type(model.auxiliary_head).__name__ if heads[1] else None) == heads[1]
