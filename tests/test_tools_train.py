"""tools/train.py and tools/test.py as a user runs them: a detector and a segmentor train for a few
iterations on toy data (finite losses, a checkpoint), then tools/test.py evaluates the checkpoint.
Also: --data-root / --toy rewrite every path and size, and mistakes end with a message naming the
missing path and the fix."""
import importlib
import json
import math
import os
import pickle

import pytest
import torch

from _random_weights import CPU_FP32, assert_every_branch_contributes, randomize_norms_and_scales, relative_error
from _toolrun import DET_CONFIG, ROOT, SEG_CONFIG, TOY_SIZE, assert_finite_losses, load_tool, make_toy, run, \
    scalars, toy_train_args

ITERS = 3


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    return make_toy(tmp_path_factory.mktemp('toy'))


@pytest.mark.timeout(300)
@pytest.mark.parametrize('task,config,metric', [
    ('det', DET_CONFIG, 'coco/bbox_mAP'),
    ('seg', SEG_CONFIG, 'mIoU'),
])
def test_train_then_test(toy, tools, tmp_path, task, config, metric):
    # training starts from weights whose backbone norms and scales are randomised: a fresh model's
    # blocks are the identity (and still about so after 3 iterations), and --deploy below would fold
    # nothing that matters
    start = tmp_path / 'random_norms.pth'
    save_with_random_backbone_norms(tools['runner_setup'], config, start)
    work_dir = tmp_path / 'work'
    # score_thr=0: an untrained detector's boxes are all below the default 0.05, and mAP over
    # no boxes is not computed at all; with every box kept the evaluation really runs
    extra = ['model.test_cfg.score_thr=0.0'] if task == 'det' else []
    out = run(toy_train_args(config, toy[task], work_dir, ITERS, *extra, f'load_from={start}'))
    assert 'Iter(train) [3/3]' in out.stdout and 'eta:' in out.stdout
    assert f'Load checkpoint from {start}' in out.stdout and 'do not match exactly' not in out.stdout
    records = scalars(work_dir)
    assert_finite_losses(records, ITERS)
    assert any(metric in r for r in records), 'no validation after training'
    ckpt = work_dir / f'iter_{ITERS}.pth'
    assert ckpt.is_file() and (work_dir / 'last_checkpoint').read_text().strip().endswith(ckpt.name)

    test_dir = tmp_path / 'test'
    args = ['tools/test.py', config, ckpt, '--toy', '--toy-size', TOY_SIZE, '--data-root', toy[task],
            '--work-dir', test_dir, '--out', tmp_path / 'pred.pkl']
    if extra:
        args += ['--show-dir', 'vis', '--cfg-options', *extra]
    out = run(args)
    assert f'Load checkpoint from {ckpt}' in out.stdout
    (metrics_file,) = test_dir.glob('*/*.json')
    metrics = json.loads(metrics_file.read_text())
    assert metric in metrics and math.isfinite(metrics[metric]), metrics
    with open(tmp_path / 'pred.pkl', 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 2  # one prediction per val image
    if extra:
        assert len(list(test_dir.glob('*/vis/*.jpg'))) == 2

    # --deploy: the backbone folded for inference gives the same predictions and metrics
    deploy_dir = tmp_path / 'test_deploy'
    out = run(['tools/test.py', config, ckpt, '--toy', '--toy-size', TOY_SIZE, '--data-root', toy[task],
               '--work-dir', deploy_dir, '--deploy', '--out', tmp_path / 'deployed.pkl',
               *(['--cfg-options', *extra] if extra else [])])
    assert 'backbone switched to deploy mode' in out.stdout
    (deploy_file,) = deploy_dir.glob('*/*.json')
    deployed = json.loads(deploy_file.read_text())
    assert deployed[metric] == pytest.approx(metrics[metric], abs=1e-3), (deployed, metrics)
    with open(tmp_path / 'deployed.pkl', 'rb') as f:
        deployed_predictions = pickle.load(f)
    for d, p in zip(deployed_predictions, predictions):
        for name in PREDICTIONS[task]:
            assert relative_error(nested(d, name), nested(p, name)) <= CPU_FP32, name


PREDICTIONS = {'det': ('pred_instances.scores', 'pred_instances.bboxes'), 'seg': ('seg_logits.data',)}


def nested(result, dotted):
    for key in dotted.split('.'):
        result = result[key]
    return torch.as_tensor(result)


def save_with_random_backbone_norms(runner_setup, config, path):
    """Save ``config``'s model as a checkpoint that tools/test.py loads, with its backbone's norms and
    scales randomised; check on an image that every backbone branch contributes."""
    from mmengine.registry import MODELS
    cfg = runner_setup.load_config(os.path.join(ROOT, config))
    runner_setup.register_modules(runner_setup.detect_task(cfg))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    randomize_norms_and_scales(model.backbone)
    assert_every_branch_contributes(model.backbone, torch.randn(1, 3, int(TOY_SIZE), int(TOY_SIZE)))
    torch.save({'state_dict': model.state_dict()}, path)


# ------------------------------------------------------------------ in-process: config edits, errors
@pytest.fixture(scope='module')
def tools():
    return dict(runner_setup=importlib.import_module('mmmobilemamba.apis.runner_setup'),
                **{name: load_tool(name) for name in ('train', 'test')})


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_data_root_rewrites_every_path(tools, monkeypatch):
    monkeypatch.chdir(ROOT)
    rs = tools['runner_setup']
    for config, old in ((DET_CONFIG, 'data/coco'), (SEG_CONFIG, 'data/ade/')):
        cfg = rs.load_config(config)
        rs.set_data_root(cfg, '/elsewhere/d')
        strings = list(_strings(cfg.to_dict()))
        assert not [s for s in strings if old in s]
        assert cfg.train_dataloader.dataset.data_root.startswith('/elsewhere/d')
        if config == DET_CONFIG:
            assert cfg.val_evaluator.ann_file == '/elsewhere/d/annotations/instances_val2017.json'


def test_toy_preset(tools, monkeypatch):
    monkeypatch.chdir(ROOT)
    rs = tools['runner_setup']
    cfg = rs.load_config(SEG_CONFIG)
    rs.apply_toy(cfg, 'seg', iters=7, size=128, log=lambda *_: None)
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=7, val_interval=7)
    assert cfg.model.data_preprocessor.size == (128, 128)
    crop = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'RandomCrop'][0]
    assert crop['crop_size'] == (128, 128)
    assert cfg.test_dataloader.dataset.pipeline[1]['scale'] == (512, 128)
    assert cfg.train_dataloader.dataset.data_root == 'data/toy/ade/ADEChallengeData2016'
    assert cfg.default_hooks.checkpoint.interval == 7 and cfg.train_dataloader.num_workers == 0
    cfg = rs.load_config(DET_CONFIG)
    rs.apply_toy(cfg, 'det', size=160, log=lambda *_: None)
    assert cfg.test_dataloader.dataset.pipeline[1]['scale'] == (267, 160)
    assert cfg.model.bbox_head.anchor_generator.scales_per_octave == 3  # not an image size
    assert cfg.val_evaluator.ann_file == 'data/toy/coco/annotations/instances_val2017.json'
    # no ImageNet weights on disk: trained from scratch, so BatchNorm statistics are learnt
    assert cfg.model.backbone.init_cfg is None and cfg.model.backbone.norm_eval is False


def _error(main, argv):
    with pytest.raises(SystemExit) as err:
        main(argv)
    return str(err.value)


def test_clear_errors(tools, tmp_path, monkeypatch, toy):
    monkeypatch.chdir(ROOT)
    train, test = tools['train'].main, tools['test'].main

    msg = _error(train, ['configs/det/retinanet_mobilemamba_s7.py'])
    assert 'not found' in msg and 'configs/det/retinanet_mobilemamba_s6.py' in msg  # a suggestion

    msg = _error(train, [DET_CONFIG, '--data-root', str(tmp_path / 'nowhere')])
    assert str(tmp_path / 'nowhere') in msg and 'make_toy_data.py' in msg and '--data-root' in msg

    msg = _error(train, [DET_CONFIG, '--toy', '--data-root', str(tmp_path / 'nowhere')])
    assert 'python tools/dataset_converters/make_toy_data.py' in msg

    msg = _error(train, [DET_CONFIG, '--data-root', toy['det'],
                         '--cfg-options', 'model.backbone.init_cfg.checkpoint=/no/such.pth'])
    assert '/no/such.pth' in msg and 'model.backbone.init_cfg=None' in msg

    msg = _error(train, [DET_CONFIG, '--toy', '--data-root', toy['det'], '--resume', str(tmp_path / 'x.pth')])
    assert 'x.pth' in msg and 'not found' in msg

    msg = _error(test, [DET_CONFIG, str(tmp_path / 'missing.pth'), '--toy', '--data-root', toy['det']])
    assert 'missing.pth' in msg and 'not found' in msg
