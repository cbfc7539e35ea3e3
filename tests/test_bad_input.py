"""Config-level bad input gives one clear message: a missing data root (also in test_tools_train), a
missing annotation file, a truncated checkpoint, a checkpoint of another variant, a wrong
``in_channels``, bad ``local_kernel_sizes``."""
import shutil

import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba

from _toolrun import DET_CONFIG, ROOT, TOY_SIZE, load_tool, make_toy, run


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    return make_toy(tmp_path_factory.mktemp('toy'))


@pytest.fixture(scope='module')
def tools():
    return {name: load_tool(name).main for name in ('train', 'test')}


def _message(main, argv, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return str(info.value)


def _toy_args(toy, tmp_path):
    """tools/test.py's (and, with --toy-iters, train.py's) options for the toy data."""
    return ['--toy', '--toy-size', TOY_SIZE, '--data-root', toy['det'], '--work-dir', tmp_path / 'work']


def test_missing_data_root_and_missing_annotation_file(tools, toy, tmp_path, monkeypatch):
    message = _message(tools['train'], [DET_CONFIG, '--data-root', tmp_path / 'nowhere'], monkeypatch)
    assert str(tmp_path / 'nowhere') in message and '--data-root' in message

    broken = tmp_path / 'coco'
    shutil.copytree(toy['det'], broken)
    (broken / 'annotations' / 'instances_train2017.json').unlink()
    message = _message(tools['train'], [DET_CONFIG, '--toy', '--data-root', broken], monkeypatch)
    assert 'dataset files not found' in message and 'instances_train2017.json' in message
    assert 'needed by train_dataloader' in message and 'instances_val2017.json' not in message


def test_truncated_checkpoint(tools, toy, tmp_path, monkeypatch):
    path = tmp_path / 'truncated.pth'
    torch.save({'state_dict': MobileMamba('T2').state_dict()}, path)
    path.write_bytes(path.read_bytes()[:4000])
    message = _message(tools['test'], [DET_CONFIG, path, *_toy_args(toy, tmp_path)], monkeypatch)
    assert str(path) in message and 'truncated or not a PyTorch checkpoint' in message


def test_checkpoint_of_another_variant(tools, toy, tmp_path, monkeypatch):
    """As backbone weights (init_cfg) and as a whole-detector checkpoint for tools/test.py."""
    t2 = tmp_path / 'mobilemamba_t2.pth'
    torch.save({'model': MobileMamba('T2').state_dict()}, t2)
    # not --toy: it drops the config's backbone weights when they are not on disk
    message = _message(tools['train'], [DET_CONFIG, '--data-root', toy['det'], '--work-dir', tmp_path / 'work',
                                        '--cfg-options', f'model.backbone.init_cfg.checkpoint={t2}'], monkeypatch)
    assert 'another variant' in message and 'shape mismatch' in message and 'embed_dims (192, 384, 448)' in message

    detector = tmp_path / 'retinanet_t2.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in MobileMamba('T2').state_dict().items()},
                'meta': {}}, detector)
    message = _message(tools['test'], [DET_CONFIG, detector, *_toy_args(toy, tmp_path)], monkeypatch)
    assert 'another variant' in message and 'shape mismatch' in message and 'missing in checkpoint' in message


def test_wrong_in_channels(toy, tmp_path):
    """Three-channel images into a backbone configured for one: the input check names the fix."""
    proc = run(['tools/train.py', DET_CONFIG, *_toy_args(toy, tmp_path), '--toy-iters', '1', '--cfg-options',
                'model.backbone.in_channels=1'], check=False)
    assert proc.returncode != 0
    expected = 'MobileMamba was built for 1 input channels but got 3; set backbone in_channels=3'
    assert proc.stdout.count(expected) == 1, proc.stdout[-3000:]
    assert 'IndexError' not in proc.stdout


@pytest.mark.parametrize('kernels', [
    ((3, 5, 7),) * 2,          # one entry short
    (7, 5, 4),                 # even kernel
    (7, 5, 0),                 # not positive
    ((3, 5), (3, -1), (3,)),   # negative inside a group
    ((3, 5), (), 3),           # an empty group
    (7, 5, 3.0),               # not an int
    'k357',                    # not a sequence of kernels
])
def test_local_kernel_sizes_are_checked(kernels):
    with pytest.raises(ValueError, match='local_kernel_sizes needs one entry per stage'):
        MobileMamba('T2', local_kernel_sizes=kernels)


def test_valid_local_kernel_sizes_build():
    model = MobileMamba('T2', local_kernel_sizes=[7, (3, 5), [3, 5, 7]])  # a config gives lists

    def kernels(stage):
        local_op = getattr(model, f'blocks{stage}')[-1].mixer.m.attn.local_op
        convs = getattr(local_op, 'dwconvs', None) or [local_op.dwconv3x3]
        return [conv.kernel_size[0] for conv in convs]

    assert [kernels(1), kernels(2), kernels(3)] == [[7], [3, 5], [3, 5, 7]]
