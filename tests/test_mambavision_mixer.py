"""The MambaVision mixer option for the WTE-Mamba global branch."""
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.layers.mambavision_mixer import MambaVisionMixer
from mmmobilemamba.ops import selective_scan_reference
from mmmobilemamba.models.layers.ss2d import BiSS2D, flattened_selective_scan


def test_mixer_shapes_and_gradients():
    mixer = MambaVisionMixer(32, d_state=2, ssm_ratio=2.0)
    x = torch.randn(2, 32, 5, 7, requires_grad=True)
    y = mixer(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, param in mixer.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_one_direction_scan_equals_reference():
    x = torch.randn(2, 12, 3, 5, dtype=torch.float64)
    mixer = MambaVisionMixer(12, d_state=3).double()
    y = flattened_selective_scan(x, mixer.x_proj_weight.double(), mixer.dt_projs_weight.double(),
                                 mixer.dt_projs_bias.double(), mixer.A_logs.double(), mixer.Ds.double())
    seq = x.flatten(2)
    dbl = torch.einsum('bdl,cd->bcl', seq, mixer.x_proj_weight[0].double())
    rank = mixer.dt_projs_weight.shape[-1]
    dt, B, C = torch.split(dbl, [rank, 3, 3], dim=1)
    dt = torch.einsum('brl,dr->bdl', dt, mixer.dt_projs_weight[0].double())
    expected = selective_scan_reference(seq, dt, -mixer.A_logs.double().exp(), B[:, None], C[:, None],
                                        mixer.Ds.double(), mixer.dt_projs_bias[0].double())
    torch.testing.assert_close(y.double(), expected.view_as(x), rtol=1e-4, atol=1e-4)


def test_backbone_option_swaps_every_global_branch():
    model = MobileMamba('T2', global_mixer='mambavision')
    mixers = [m for m in model.modules() if isinstance(m, MambaVisionMixer)]
    assert len(mixers) == 5 and not any(isinstance(m, BiSS2D) for m in model.modules())
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [144, 272, 368]
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
