"""mmmobilemamba.apis.erf (tools/analysis_tools/visualize_erf.py): effective receptive fields of
MobileMamba stages and of other backbones."""
import importlib
import json

import numpy as np
import pytest
import torch
from torch import nn

SIZE = 192  # px: stage 2 (stride 64) is 3x3, so it has a true centre pixel


erf_tool = importlib.import_module('mmmobilemamba.apis.erf')


def _erf(model, pick=None, n=2, size=SIZE):
    return erf_tool.compute_erf(model, erf_tool.input_batches(size, 2, random=n, seed=0), pick)


@pytest.fixture(scope='module')
def mobilemamba_erfs():
    out = {}
    for stage in (0, 2):
        torch.manual_seed(0)
        model, pick = erf_tool.build_backbone('S6', stage)
        erf_tool.random_init(model, 'unit-norm')
        erf, n = _erf(model, pick, n=1)
        assert n == 1 and erf.shape == (SIZE, SIZE)
        out[stage] = erf_tool.summarize(erf), erf
    return out


def test_small_cnn_erf_is_its_receptive_field():
    """Three 3x3 convs: the gradient is non-zero exactly on the 7x7 window around the centre."""
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1))
    erf, _ = _erf(cnn, size=64)
    ys, xs = np.nonzero(erf)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (29, 35, 29, 35)  # centre pixel (32, 32) +- 3
    s = erf_tool.summarize(erf)
    assert s['nonzero'] == pytest.approx(49 / 64 ** 2)
    assert 0 < s['area@20'] <= s['area@50'] <= s['area@90'] <= 49 / 64 ** 2
    assert s['square@90'] <= 49 / 64 ** 2
    assert s['centre'] == pytest.approx((32, 32), abs=0.6)


def test_mobilemamba_stage2_sees_more_than_stage0_and_a_cnn(mobilemamba_erfs):
    s0, _ = mobilemamba_erfs[0]
    s2, erf2 = mobilemamba_erfs[2]
    for s in (s0, s2):
        assert 0 < s['area@20'] <= s['area@50'] <= s['area@90'] <= 1
        assert 0 < s['square@20'] <= s['square@50'] <= s['square@90'] <= 1
    # global mixing at stride 64: every input pixel reaches the centre output ...
    assert s2['nonzero'] == 1.0
    # ... and the mass spreads: half of it needs far more area than in stage 0 (random init,
    # S6 at 192 px measures about 1-2 % for stage 0 and 20-30 % for stage 2)
    assert s2['area@50'] > 4 * s0['area@50']
    assert s2['area@50'] > 0.08
    assert s2['area@90'] > 0.4
    # the centre output sits at the image centre (within one stage-0 cell of 16 px)
    assert np.allclose(s2['centre'], (SIZE / 2, SIZE / 2), atol=16)
    # a CNN of the same input size and a 7x7 receptive field holds all its mass in 49 px
    assert s2['area@50'] * SIZE ** 2 > 49 * 10


def test_default_init_switches_residual_branches_off():
    """The framework init zeroes the last BN of each residual branch, so the Mamba mixer cannot
    reach far at stage 0: the ERF is then confined to the stem's patch and local convs."""
    torch.manual_seed(0)
    model, pick = erf_tool.build_backbone('S6', 0)
    erf_tool.random_init(model, 'default')
    s_default = erf_tool.summarize(_erf(model, pick, n=1, size=128)[0])
    erf_tool.random_init(model, 'unit-norm')
    s_active = erf_tool.summarize(_erf(model, pick, n=1, size=128)[0])
    assert s_default['nonzero'] < 0.2
    assert s_active['nonzero'] == 1.0


def test_cli_compare_mobilemamba_and_config_backbone(tmp_path):
    """--model twice (an arch and an mmdet config's ResNet): one PNG, summaries in the JSON."""
    cfg = tmp_path / 'r18.py'
    cfg.write_text("default_scope = 'mmdet'\n"
                   "model = dict(type='RetinaNet', backbone=dict(type='ResNet', depth=18, "
                   "out_indices=(0, 1, 2, 3), init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')))\n")
    out, js = tmp_path / 'erf.png', tmp_path / 'erf.json'
    summaries = erf_tool.main(['--random', '1', '--img-size', '128', '--model', 'S6@2', '--model', f'{cfg}@1',
                               '--out', str(out), '--json', str(js), '--save-npy'])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and out.stat().st_size > 5000
    saved = json.loads(js.read_text())
    assert [s['label'] for s in saved] == ['MobileMamba-S6 stage 2', 'r18 stage 1']
    assert [s['label'] for s in summaries] == [s['label'] for s in saved]
    for s in saved:
        assert s['images'] == 1 and s['img_size'] == 128 and s['weights'].startswith('random init')
        assert 0 < s['area@20'] <= s['area@50'] <= s['area@90'] <= 1
    # ResNet-18 up to layer2 (stride 8) has a ~100 px theoretical receptive field, local
    assert saved[1]['area@50'] < saved[0]['area@50']
    assert np.load(tmp_path / 'erf_1.npy').shape == (128, 128)


def test_checkpoint_of_a_whole_detector_loads_backbone(tmp_path):
    torch.manual_seed(1)
    src, _ = erf_tool.build_backbone('S6', 0)
    state = {f'backbone.{k}': v for k, v in src.state_dict().items()}
    state['bbox_head.w'] = torch.zeros(1)
    path = tmp_path / 'det.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    torch.manual_seed(2)
    dst, _ = erf_tool.build_backbone('S6', 0)
    erf_tool.load_checkpoint(dst, str(path))
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_spec_parsing():
    s = erf_tool.parse_spec('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py@3@ckpt.pth')
    assert (s['source'], s['stage'], s['checkpoint'], s['is_arch']) == \
        ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 3, 'ckpt.pth', False)
    assert s['label'] == 'retinanet_r50_fpn_1x_coco stage 3'
    s = erf_tool.parse_spec('s6')
    assert s['is_arch'] and s['stage'] is None and s['label'] == 'MobileMamba-S6 last stage'
