"""No code runs from a checkpoint: a pickle that calls os.system is refused at every door (the
conversion tool, a backbone's Pretrained init_cfg, tools/test.py, --resume and load_from, the ERF
tool), names the offending global and the opt-in, and its command never runs. The objects that
real checkpoints hold load without any opt-in."""
import argparse
import hashlib
import os
import pickle

import pytest
import torch

import mmmobilemamba  # noqa: F401  (registers the allow-list)
from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.utils.checkpoint import (CheckpointNotTrustedError, load_pretrained, read_checkpoint,
                                            trust_checkpoint)

from _toolrun import DET_CONFIG, TOY_SIZE, load_tool, make_toy, run


class _RunsCommand:
    """Unpickling this calls os.system(command)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture
def malicious(tmp_path):
    """(checkpoint path, marker path): real T2 backbone weights plus a payload that creates the marker."""
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'mobilemamba_t2.pth'
    torch.save({'model': MobileMamba('T2').state_dict(), 'extra': _RunsCommand(f'touch {marker}')}, path)
    return path, marker


def _assert_refused(message, path, marker):
    assert 'posix.system' in message or 'nt.system' in message, message
    assert '--trust-checkpoint' in message and str(path) in message
    assert not marker.exists(), 'the checkpoint ran its command'


def test_convert_tool_refuses_and_prints_the_sha256(malicious, tmp_path):
    path, marker = malicious
    out = tmp_path / 'converted.pth'
    proc = run(['tools/model_converters/convert_checkpoint.py', path, out, '--arch', 'T2'], check=False)
    assert proc.returncode != 0 and not out.exists()
    _assert_refused(proc.stdout, path, marker)
    assert hashlib.sha256(path.read_bytes()).hexdigest() in proc.stdout
    # the control: named as trusted, the same file is unpickled in full and its command runs
    proc = run(['tools/model_converters/convert_checkpoint.py', path, out, '--arch', 'T2', '--trust-checkpoint', path])
    assert marker.exists() and out.exists()


def test_pretrained_init_cfg_refuses_and_leaves_the_weights(malicious):
    path, marker = malicious
    model = MobileMamba('T2', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointNotTrustedError) as info:
        model.init_weights()
    _assert_refused(str(info.value), path, marker)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_tools_refuse_it_as_test_checkpoint_resume_and_load_from(malicious, tmp_path):
    path, marker = malicious
    toy = make_toy(tmp_path / 'toy')
    proc = run(['tools/test.py', DET_CONFIG, path, '--toy', '--toy-size', TOY_SIZE, '--data-root', toy['det'],
                '--work-dir', tmp_path / 'test'], check=False)
    assert proc.returncode != 0
    _assert_refused(proc.stdout, path, marker)
    assert 'Traceback' not in proc.stdout  # one message, not a stack trace through the Runner

    train = load_tool('train').main
    common = [DET_CONFIG, '--toy', '--toy-iters', '1', '--toy-size', TOY_SIZE, '--data-root', toy['det'],
              '--work-dir', str(tmp_path / 'train')]
    for extra in (['--resume', str(path)], ['--cfg-options', f'load_from={path}']):
        with pytest.raises(SystemExit) as info:
            train(common + extra)
        _assert_refused(str(info.value), path, marker)


def test_erf_tool_refuses_it(malicious, tmp_path):
    path, marker = malicious
    with pytest.raises(SystemExit) as info:
        load_tool('analysis_tools/visualize_erf').main(['--arch', 'T2', '--checkpoint', str(path), '--random', '1',
                                         '--img-size', '64', '--out', str(tmp_path / 'erf.png')])
    _assert_refused(str(info.value), path, marker)


def test_erf_tool_loads_strictly(tmp_path):
    """A checkpoint of another variant is an error listing the differences, not a partial load."""
    path = tmp_path / 's6.pth'
    torch.save({'state_dict': MobileMamba('S6').state_dict()}, path)
    with pytest.raises(SystemExit, match='shape mismatch'):
        load_tool('analysis_tools/visualize_erf').main(['--arch', 'T2', '--checkpoint', str(path), '--random', '1',
                                         '--img-size', '64', '--out', str(tmp_path / 'erf.png')])


def test_restricted_getattr_allows_only_history_buffer_methods(tmp_path):
    """mmengine's message hub needs getattr(HistoryBuffer, 'min'|'max'|'mean'|'current'); any other
    lookup through getattr is refused."""
    from mmengine.logging.history_buffer import HistoryBuffer

    class LooksUpAttribute:
        def __reduce__(self):
            return getattr, (HistoryBuffer, 'update')

    path = tmp_path / 'getattr.pth'
    torch.save({'x': LooksUpAttribute()}, path)
    with pytest.raises(CheckpointNotTrustedError, match='getattr'):
        read_checkpoint(str(path))


def test_release_style_checkpoint_with_training_args_loads(tmp_path):
    """The release's files pickle their training arguments (argparse.Namespace) beside the weights,
    and mmengine-style metadata may hold numpy scalars and arrays: allow-listed, no opt-in."""
    import numpy as np
    source = MobileMamba('T2')
    path = tmp_path / 'release.pth'
    args = argparse.Namespace(model='MobileMamba_T2', lr=1e-3, input_size=192, drop_path=0.0)
    torch.save({'model': source.state_dict(), 'args': args, 'epoch': 299,
                'meta': {'eta': np.float64(3.5), 'hist': np.arange(4, dtype=np.int64)}}, path)
    ckpt = read_checkpoint(str(path))
    assert ckpt['args'] == args and ckpt['meta']['eta'] == 3.5
    model = load_pretrained(MobileMamba('T2'), str(path))
    assert torch.equal(model.blocks3[-1].ffn1.m.pw2.c.weight, source.blocks3[-1].ffn1.m.pw2.c.weight)


def test_training_checkpoint_of_mmengine_loads_with_mmengines_own_loader(tmp_path):
    """mmengine's message hub (HistoryBuffer with numpy histories) round-trips through a plain
    torch.load(weights_only=True), the call mmengine makes under torch >= 2.6."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('trust-test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25)
    hub.update_info('eta', __import__('numpy').float64(12.0))
    path = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'message_hub': hub.state_dict()}, path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(0.375)


def test_trusted_file_is_named_once_and_only_that_file(malicious, tmp_path):
    path, marker = malicious
    other = tmp_path / 'other.pth'
    torch.save({'extra': _RunsCommand(f'touch {tmp_path / "other_ran"}')}, other)
    trust_checkpoint(str(path))
    read_checkpoint(str(path))
    assert marker.exists()
    with pytest.raises(CheckpointNotTrustedError):
        read_checkpoint(str(other))
    assert not (tmp_path / 'other_ran').exists()


def test_unreadable_pickle_is_not_mistaken_for_a_refusal(tmp_path):
    path = tmp_path / 'garbage.pth'
    path.write_bytes(pickle.dumps([1, 2, 3])[:-3])
    with pytest.raises(RuntimeError, match='truncated or not a PyTorch checkpoint'):
        read_checkpoint(str(path))
