"""The main job on a GPU with mmcv's compiled CUDA ops, run as a user runs it: tools/train.py and
tools/test.py in subprocesses, on generated data (32 train / 8 val images of 640-1024 px), at each
config's own image size (``--toy --toy-size 0``: the toy schedule and data, the real sizes).

- RetinaNet-S6 at 1333x800, MMM_E2E_ITERS iterations (default 200), then COCO evaluation, whose
  post-processing runs mmcv's CUDA NMS; the loss must fall;
- Mask R-CNN-B1 (mmcv's CUDA RoIAlign), SSDLite-S6, DeepLabv3-S6, PSPNet-S6 and Sem-FPN-B4 for
  MMM_E2E_SHORT_ITERS iterations each (default 30);
- ``--amp`` in fp16 and bf16 for RetinaNet-S6 and PSPNet-S6 (MMM_E2E_SHORT_ITERS iterations);
- ``tools/test.py --deploy`` on the trained RetinaNet-S6 and PSPNet-S6 checkpoints gives the
  metrics of ``tools/test.py`` without it (the model-level comparison with randomised norms is
  tests/test_gpu.py's).

Every run must have finite losses and its metrics. A summary of losses and metrics is written to
MMM_E2E_SUMMARY (default WORK/summary.json, with a markdown table next to it), where WORK is
MMM_E2E_WORK_DIR (default work_dirs/gpu_e2e; each run's logs and checkpoints stay there; under
pytest-xdist, a subdirectory per worker).

    python -m pytest -q tests/test_gpu_e2e.py
"""
import json
import math
import os
import time

import pytest
import torch

from _toolrun import ROOT, run, scalars, train_records


def _cuda_ops_reason():
    if not torch.cuda.is_available():
        return 'needs a CUDA GPU'
    try:
        from mmcv.ops import nms
    except ImportError as err:
        return f'mmcv has no compiled ops ({err}): bash tools/install.sh'
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device='cuda')
    try:
        nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
    except RuntimeError as err:
        return f"mmcv's CUDA NMS does not run on this GPU ({err}): rebuild mmcv with bash tools/install.sh"
    return None


_REASON = _cuda_ops_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or '')

ITERS = int(os.environ.get('MMM_E2E_ITERS', 200))
SHORT_ITERS = int(os.environ.get('MMM_E2E_SHORT_ITERS', 30))
WORK = os.path.abspath(os.environ.get('MMM_E2E_WORK_DIR', os.path.join(ROOT, 'work_dirs', 'gpu_e2e')))
# pytest-xdist: each worker generates its data and trains in a directory of its own (the module-scoped
# fixtures run once per worker, and two workers writing one run's checkpoints and logs would mix them)
WORK = os.path.join(WORK, os.environ['PYTEST_XDIST_WORKER']) if 'PYTEST_XDIST_WORKER' in os.environ else WORK
SUMMARY = os.environ.get('MMM_E2E_SUMMARY', os.path.join(WORK, 'summary.json'))

DET_METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50')
SEG_METRICS = ('mIoU', 'aAcc')
# full scale of each task's metrics: mmdet reports fractions, mmseg percentages
METRIC_SCALE = {'det': 1.0, 'seg': 100.0}
# name: (config, task, iterations, metrics, --cfg-options). Short detector runs keep every box
# (score_thr 0) so that the evaluation runs even before the scores pass 0.05.
RUNS = {
    'retinanet_s6': ('configs/det/retinanet_mobilemamba_s6.py', 'det', ITERS, DET_METRICS, []),
    'mask-rcnn_b1': ('configs/det/mask-rcnn_mobilemamba_b1.py', 'det', SHORT_ITERS,
                     DET_METRICS + ('coco/segm_mAP',), ['model.test_cfg.rcnn.score_thr=0.0']),
    'ssdlite_s6': ('configs/det/ssdlite_mobilemamba_s6.py', 'det', SHORT_ITERS, DET_METRICS,
                   ['model.test_cfg.score_thr=0.0']),
    'deeplabv3_s6': ('configs/seg/deeplabv3_mobilemamba_s6_512x512_80k_ade20k.py', 'seg', SHORT_ITERS,
                     SEG_METRICS, []),
    'pspnet_s6': ('configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py', 'seg', SHORT_ITERS, SEG_METRICS, []),
    'sem-fpn_b4': ('configs/seg/fpn_mobilemamba_b4_512x512_160k_ade20k.py', 'seg', SHORT_ITERS, SEG_METRICS, []),
}
AMP_RUNS = {'retinanet_s6': ['model.test_cfg.score_thr=0.0'], 'pspnet_s6': []}
LOADER = ['train_dataloader.num_workers=4', 'train_dataloader.persistent_workers=False']


@pytest.fixture(scope='module')
def data():
    out = os.path.join(WORK, 'data')
    run(['tools/dataset_converters/make_toy_data.py', '--out', out, '--train', '32', '--val', '8',
         '--min-size', '640', '--max-size', '1024'], timeout=300)
    return {'det': os.path.join(out, 'coco'), 'seg': os.path.join(out, 'ade', 'ADEChallengeData2016')}


@pytest.fixture(scope='module')
def summary():
    entries = {}
    yield entries
    os.makedirs(os.path.dirname(os.path.abspath(SUMMARY)), exist_ok=True)
    with open(SUMMARY, 'w') as f:
        json.dump(entries, f, indent=1)
    with open(os.path.splitext(SUMMARY)[0] + '.md', 'w') as f:
        f.write(f'GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}\n\n'
                '| run | iters | loss first 10% -> last 10% | metrics | wall s |\n|---|---|---|---|---|\n')
        for name, e in entries.items():
            loss = f"{e['loss_first']:.3f} -> {e['loss_last']:.3f}" if 'loss_first' in e else '-'
            metrics = ', '.join(f'{k} {v:.4g}' for k, v in e['metrics'].items())
            f.write(f"| {name} | {e.get('iters', '-')} | {loss} | {metrics} | {e['wall_s']:.0f} |\n")


def _loss_summary(records, iters):
    train = train_records(records)
    assert sorted(train) == list(range(1, iters + 1)), f'missing iterations: {sorted(train)}'
    for it, r in train.items():
        for k, v in r.items():
            if k.startswith('loss'):
                assert math.isfinite(v), f'iteration {it}: {k} = {v}'
    n = max(1, iters // 10)
    losses = [train[i]['loss'] for i in range(1, iters + 1)]
    return {'loss_first': sum(losses[:n]) / n, 'loss_last': sum(losses[-n:]) / n,
            'loss_max': max(losses), 'loss_keys': sorted(k for k in train[iters] if k.startswith('loss'))}


def _train(name, data, summary, amp=None, extra=()):
    """Train RUNS[name] (``amp``: 'float16' / 'bfloat16'); returns (work dir, checkpoint)."""
    config, task, iters, metrics, options = RUNS[name]
    if amp:
        iters, options = SHORT_ITERS, AMP_RUNS[name]
    label = name + (f'_amp-{amp}' if amp else '')
    work_dir = os.path.join(WORK, label)
    args = ['tools/train.py', config, '--toy', '--toy-iters', iters, '--toy-size', '0',
            '--data-root', data[task], '--work-dir', work_dir]
    args += ['--amp'] if amp else []
    args += ['--cfg-options', *LOADER, *options, *extra] + ([f'optim_wrapper.dtype={amp}'] if amp else [])
    start = time.time()
    run(args, timeout=900)
    records = scalars(work_dir)
    entry = dict(config=config, iters=iters, wall_s=time.time() - start, **_loss_summary(records, iters))
    found = {k: r[k] for r in records for k in metrics if k in r}
    entry['metrics'] = found
    summary[label] = entry
    missing = [k for k in metrics if k not in found or not math.isfinite(found[k])]
    assert not missing, f'{label}: metrics {missing} missing after validation ({found})'
    return work_dir, os.path.join(work_dir, f'iter_{iters}.pth'), entry


@pytest.fixture(scope='module')
def trained(data, summary):
    """Runs trained so far in this session, by name: (work dir, checkpoint, summary entry)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _train(name, data, summary)
        return cache[name]
    return get


@pytest.mark.timeout(900)
def test_retinanet_s6_learns_at_the_real_size(trained):
    _, ckpt, entry = trained('retinanet_s6')
    assert os.path.isfile(ckpt)
    if ITERS >= 100:
        assert entry['loss_last'] < entry['loss_first'], entry


@pytest.mark.timeout(900)
@pytest.mark.parametrize('name', ['mask-rcnn_b1', 'ssdlite_s6', 'deeplabv3_s6', 'pspnet_s6', 'sem-fpn_b4'])
def test_short_run(trained, name):
    _, ckpt, _ = trained(name)
    assert os.path.isfile(ckpt)


@pytest.mark.timeout(900)
@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
@pytest.mark.parametrize('name', sorted(AMP_RUNS))
def test_amp(data, summary, name, dtype):
    work_dir, _, _ = _train(name, data, summary, amp=dtype)
    with open(_latest(work_dir, '.log')) as f:
        log = f.read()
    assert 'AmpOptimWrapper' in log and dtype in log


def _latest(work_dir, ext):
    """WORK_DIR/<timestamp>/<timestamp><ext> of the latest run."""
    stamps = [d for d in os.listdir(work_dir) if os.path.isfile(os.path.join(work_dir, d, d + ext))]
    assert stamps, f'no */*{ext} in {work_dir}'
    stamp = max(stamps)
    return os.path.join(work_dir, stamp, stamp + ext)


@pytest.mark.timeout(900)
@pytest.mark.parametrize('name', ['retinanet_s6', 'pspnet_s6'])
def test_deploy_gives_the_same_metrics(trained, data, summary, name):
    config, task, _, metrics, options = RUNS[name]
    _, ckpt, _ = trained(name)
    results = {}
    for deploy in (False, True):
        test_dir = os.path.join(WORK, f'{name}_test' + ('_deploy' if deploy else ''))
        args = ['tools/test.py', config, ckpt, '--toy', '--toy-size', '0', '--data-root', data[task],
                '--work-dir', test_dir] + (['--deploy'] if deploy else [])
        args += ['--cfg-options', *options] if options else []
        start = time.time()
        out = run(args, timeout=600)
        assert ('backbone switched to deploy mode' in out.stdout) == deploy
        with open(_latest(test_dir, '.json')) as f:
            results[deploy] = json.load(f)
        summary[f'{name}_test' + ('_deploy' if deploy else '')] = dict(
            wall_s=time.time() - start, metrics={k: results[deploy][k] for k in metrics if k in results[deploy]})
    # deploy mode rounds differently, so a few boxes' scores or pixels' classes may change: 0.2% of full scale
    for k in metrics:
        assert results[True][k] == pytest.approx(results[False][k], abs=2e-3 * METRIC_SCALE[task]), (k, results)
