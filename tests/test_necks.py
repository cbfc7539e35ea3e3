"""MobileMambaAdapter (ResNet-like pyramid) and MobileMambaFPN (the release's detection neck)."""
import pytest
import torch
import torch.nn.functional as F

from mmmobilemamba.models.necks import MobileMambaAdapter, MobileMambaFPN
from mmmobilemamba.registry import MODELS
from mmmobilemamba.utils.complexity import count_complexity

S6 = [192, 384, 448]
B1 = [200, 376, 448]


def stage_maps(channels, height, width, strides=(16, 32, 64), batch=1):
    """Backbone-like maps: size ceil(H/s) x ceil(W/s)."""
    return [torch.randn(batch, c, -(-height // s), -(-width // s)) for c, s in zip(channels, strides)]


# ----------------------------------------------------------------------------- adapter
def test_adapter_default_is_resnet50_pyramid():
    adapter = MODELS.build(dict(type='MobileMambaAdapter', in_channels=S6))
    adapter.init_weights()
    outs = adapter(stage_maps(S6, 256, 192, batch=2))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    assert [tuple(o.shape[2:]) for o in outs] == [(64, 48), (32, 24), (16, 12), (8, 6)]
    assert all(o.shape[0] == 2 for o in outs)
    assert all((o >= 0).all() for o in outs)  # ReLU outputs, like ResNet stages


def test_adapter_uses_every_stage():
    """The stride-64 map (no output of its own by default) is added to the stride-32 output, so
    every backbone stage receives gradients through the adapter."""
    adapter = MobileMambaAdapter(S6)
    assert adapter.sources == [0, 0, 0, 1]
    assert adapter.extra_targets == {2: 3}
    maps = [m.requires_grad_() for m in stage_maps(S6, 128, 128)]
    sum(o.sum() for o in adapter(maps)).backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in maps)
    assert all(p.grad is not None for p in adapter.parameters())


def test_adapter_odd_sizes_match_backbone_rounding():
    # 800x1280 -> stage maps 50x80, 25x40, 13x20; the upsampled stride-64 map (26x40) is cropped
    outs = MobileMambaAdapter(S6)(stage_maps(S6, 800, 1280))
    assert [tuple(o.shape[2:]) for o in outs] == [(200, 320), (100, 160), (50, 80), (25, 40)]
    outs = MobileMambaAdapter(S6, out_strides=(128,), out_channels=64)(stage_maps(S6, 200, 136))
    assert tuple(outs[0].shape) == (1, 64, 2, 2)  # ceil(ceil(200/64)/2), ceil(ceil(136/64)/2)


@pytest.mark.parametrize('out_strides,out_channels', [
    ((8, 16, 32, 64, 128), 256),
    ((4, 8, 8, 8), (256, 512, 1024, 2048)),     # like a dilated (d8) ResNet
    ((2, 64), (32, 96)),
    ((16, 32, 64), (64, 64, 64)),
])
def test_adapter_custom_pyramids(out_strides, out_channels):
    adapter = MobileMambaAdapter(B1, out_strides=out_strides, out_channels=out_channels)
    outs = adapter(stage_maps(B1, 256, 256))
    channels = [out_channels] * len(out_strides) if isinstance(out_channels, int) else list(out_channels)
    assert [o.shape[1] for o in outs] == channels
    assert [o.shape[2] for o in outs] == [256 // s for s in out_strides]
    used = {i for level in adapter.branch_inputs for i in level}
    assert used == {0, 1, 2}


def test_adapter_upsampler_starts_as_bilinear():
    adapter = MobileMambaAdapter([8, 8, 8], out_strides=(4, 16, 32, 64), out_channels=8)
    adapter.init_weights()
    branch = adapter.branches[0][0]          # stride 16 -> 4: x4 depthwise transposed conv
    x = torch.randn(1, 8, 6, 6)
    up = branch.up[0](x)
    ref = F.interpolate(x, scale_factor=4, mode='bilinear', align_corners=False)
    assert up.shape == ref.shape
    torch.testing.assert_close(up[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2])  # borders: zero padding


def test_adapter_errors():
    adapter = MobileMambaAdapter(S6)
    with pytest.raises(ValueError, match=r'expects 3 input maps .*got 2'):
        adapter(stage_maps(S6, 128, 128)[:2])
    with pytest.raises(ValueError,
                       match=r'input channels \[200, 376, 448\] do not match in_channels \[192, 384, 448\]'):
        adapter(stage_maps(B1, 128, 128))
    with pytest.raises(ValueError, match=r'unsupported out_strides \[12\]'):
        MobileMambaAdapter(S6, out_strides=(4, 12), out_channels=(8, 8))
    with pytest.raises(ValueError, match=r'unsupported out_strides \[0\]'):
        MobileMambaAdapter(S6, out_strides=(0,), out_channels=8)
    with pytest.raises(ValueError, match=r'unsupported in_strides \[24\]'):
        MobileMambaAdapter(S6, in_strides=(16, 24, 64))
    with pytest.raises(ValueError, match='one entry per'):
        MobileMambaAdapter(S6, out_channels=(256, 512))
    with pytest.raises(ValueError, match='same length'):
        MobileMambaAdapter(S6, in_strides=(16, 32))


def test_adapter_flops_at_1280x800():
    """Cost of the default pyramid on an S6 backbone at 1280x800 (README number)."""
    adapter = MobileMambaAdapter(S6).eval()
    with torch.no_grad():
        result = count_complexity(adapter, (stage_maps(S6, 800, 1280),))
    assert result['scan_flops'] == 0
    # 1x1 projections at the source resolution dominate: 192*(256+512+1024)*80*50
    # + 384*2048*40*25 + 448*2048*20*13 = 2.40G; depthwise upsamplers and BN add ~0.18G.
    assert 2.4e9 < result['flops'] < 2.7e9, result['flops']
    assert result['params'] == 2122752


# ----------------------------------------------------------------------------- release FPN
def mobilemamba_fpn_params(in_channels, out=256, trans=1, extra_on_input=True):
    """Parameter count of the release's EfficientViTFPN, from its structure."""
    lateral = sum(c * out + out for c in in_channels)
    fpn = len(in_channels) * (out * out * 9 + out)
    extra = (in_channels[-1] * out * 9 + out) if extra_on_input else 0
    trans_convs = trans * ((out * out * 4 + out) + (out * out * 9 + out))
    return lateral + fpn + extra + trans_convs


def test_mobilemamba_fpn_retinanet_setting():
    fpn = MODELS.build(dict(type='MobileMambaFPN', in_channels=B1, out_channels=256, start_level=0,
                            add_extra_convs='on_input', num_extra_trans_convs=1, num_outs=5))
    fpn.init_weights()
    outs = fpn(stage_maps(B1, 800, 1280))
    assert [tuple(o.shape[2:]) for o in outs] == [(100, 160), (50, 80), (25, 40), (13, 20), (7, 10)]
    assert all(o.shape[1] == 256 for o in outs)
    assert sum(p.numel() for p in fpn.parameters()) == mobilemamba_fpn_params(B1) == 3918080
    keys = set(fpn.state_dict())
    for name in ('lateral_convs.2.conv.weight', 'fpn_convs.3.conv.weight', 'fpn_convs.3.conv.bias',
                 'extra_trans_convs.0.conv.weight', 'extra_fpn_convs.0.conv.bias'):
        assert name in keys
    assert tuple(fpn.fpn_convs[3].conv.weight.shape) == (256, 448, 3, 3)  # extra conv on the input
    assert tuple(fpn.extra_trans_convs[0].conv.weight.shape) == (256, 256, 2, 2)


def test_mobilemamba_fpn_mask_rcnn_setting():
    fpn = MobileMambaFPN(B1, 256, num_outs=5, num_extra_trans_convs=2)
    outs = fpn(stage_maps(B1, 256, 320))
    assert [o.shape[2] for o in outs] == [64, 32, 16, 8, 4]  # strides 4, 8, 16, 32, 64
    assert sum(p.numel() for p in fpn.parameters()) == mobilemamba_fpn_params(B1, trans=2, extra_on_input=False)
    assert len(fpn.fpn_convs) == 3  # the stride-64 output level is max-pooled


@pytest.mark.parametrize('mode', [False, 'on_input', 'on_lateral', 'on_output'])
def test_mobilemamba_fpn_extra_levels(mode):
    fpn = MobileMambaFPN(S6, 64, num_outs=6, add_extra_convs=mode, relu_before_extra_convs=True,
                         num_extra_trans_convs=1, norm_cfg=dict(type='BN'))
    outs = fpn(stage_maps(S6, 512, 512))
    assert [o.shape[2] for o in outs] == [64, 32, 16, 8, 4, 2]


def test_mobilemamba_fpn_errors():
    with pytest.raises(ValueError, match='num_outs'):
        MobileMambaFPN(B1, 256, num_outs=3, num_extra_trans_convs=1)
    with pytest.raises(ValueError, match='add_extra_convs'):
        MobileMambaFPN(B1, 256, num_outs=5, add_extra_convs='on_nothing')
    fpn = MobileMambaFPN(B1, 256, num_outs=5, num_extra_trans_convs=1)
    with pytest.raises(ValueError, match='expects 3 input maps'):
        fpn(stage_maps(B1, 128, 128)[1:])
    with pytest.raises(ValueError, match='input 0 has 192 channels, expected 200'):
        fpn(stage_maps(S6, 128, 128))
