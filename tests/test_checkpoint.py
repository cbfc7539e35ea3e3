"""Loading release-format checkpoints: round trip, heads ignored, clear errors, conversion tool."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.classifier import MobileMambaClassifier
from mmmobilemamba.utils.checkpoint import CheckpointMismatchError, load_pretrained

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def release_checkpoint(tmp_path_factory):
    """A file laid out like the release's distilled ImageNet checkpoints: {'model': ..., 'epoch': ...}."""
    classifier = MobileMambaClassifier('T2', distillation=True)
    path = tmp_path_factory.mktemp('ckpt') / 'mobilemamba_t2s.pth'
    torch.save({'model': classifier.state_dict(), 'epoch': 299}, path)
    return path, classifier.state_dict()


def test_pretrained_init_cfg_loads_every_backbone_tensor(release_checkpoint, capsys):
    path, state = release_checkpoint
    model = MobileMamba('T2', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, state[name], msg=name)


def test_detector_builds_with_pretrained_backbone(release_checkpoint):
    import mmmobilemamba  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    path, state = release_checkpoint
    detector = MODELS.build(dict(
        type='RetinaNet',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=64),
        backbone=dict(type='MobileMamba', arch='T2', init_cfg=dict(type='Pretrained', checkpoint=str(path))),
        neck=dict(type='FPN', in_channels=[144, 272, 368], out_channels=64, num_outs=3),
        bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=64, feat_channels=64, stacked_convs=1,
                       anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                                             ratios=[1.0], strides=[16, 32, 64]),
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                       loss_cls=dict(type='FocalLoss', use_sigmoid=True), loss_bbox=dict(type='L1Loss'))))
    detector.init_weights()
    torch.testing.assert_close(detector.backbone.patch_embed[0].c.weight, state['patch_embed.0.c.weight'])


def test_detector_checkpoint_with_backbone_prefix(tmp_path):
    source = MobileMamba('T2')
    path = tmp_path / 'retinanet.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}
                | {'neck.conv.weight': torch.zeros(1)}, 'meta': {}}, path)
    model = load_pretrained(MobileMamba('T2'), str(path))
    torch.testing.assert_close(model.blocks3[-1].ffn1.m.pw2.c.weight, source.blocks3[-1].ffn1.m.pw2.c.weight)


def test_checkpoint_of_another_variant_lists_the_differences(release_checkpoint):
    path, _ = release_checkpoint
    with pytest.raises(CheckpointMismatchError) as info:
        load_pretrained(MobileMamba('B1'), str(path))
    message = str(info.value)
    assert 'missing in checkpoint' in message and 'blocks1.1.dw0.m.c.weight' in message
    assert 'shape mismatch' in message
    assert re.search(r'blocks1\.0\.\S+ \(144(, \d+)*\) vs model \(200', message)


def test_foreign_checkpoint_is_refused_without_partial_load(tmp_path):
    path = tmp_path / 'resnet.pth'
    torch.save({'state_dict': {'conv1.weight': torch.zeros(64, 3, 7, 7)}}, path)
    model = MobileMamba('T2')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=r'unexpected in checkpoint \(1\): conv1.weight'):
        load_pretrained(model, str(path))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_missing_and_truncated_files(tmp_path, release_checkpoint):
    with pytest.raises(FileNotFoundError, match='does not exist.*init_cfg=None'):
        load_pretrained(MobileMamba('T2'), str(tmp_path / 'nope.pth'))
    path, _ = release_checkpoint
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(RuntimeError, match='truncated or not a PyTorch checkpoint'):
        load_pretrained(MobileMamba('T2'), str(truncated))


def test_convert_checkpoint_tool(tmp_path, release_checkpoint):
    path, state = release_checkpoint
    out = tmp_path / 'converted' / 't2.pth'
    tool = str(ROOT / 'tools' / 'model_converters' / 'convert_checkpoint.py')
    result = subprocess.run([sys.executable, tool, str(path), str(out), '--arch', 'T2'],
                            capture_output=True, text=True, check=True)
    backbone_tensors = len(MobileMamba('T2').state_dict())
    assert len(state) > backbone_tensors  # the classifier's heads are dropped
    assert f'wrote {backbone_tensors} backbone tensors of MobileMamba-T2' in result.stdout
    converted = torch.load(out, weights_only=True)
    assert converted['meta']['arch'] == 'T2'
    assert set(converted['state_dict']) == set(MobileMamba('T2').state_dict())
    failed = subprocess.run([sys.executable, tool, str(path), str(tmp_path / 'x.pth'), '--arch', 'S6'],
                            capture_output=True, text=True)
    assert failed.returncode != 0 and 'shape mismatch' in failed.stderr
