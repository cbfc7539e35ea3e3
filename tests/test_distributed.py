"""tools/dist_train.sh CONFIG 2: two CPU processes (gloo) train on toy data with DDP and
find_unused_parameters=False (an unused parameter would stop the second iteration), then
tools/dist_test.sh evaluates the checkpoint with two processes. The segmentor runs with frozen
stages and SyncBN in its heads (turned into BN on CPU)."""
import json

import pytest

from _toolrun import DET_CONFIG, SEG_CONFIG, TOY_SIZE, assert_finite_losses, free_port, make_toy, run, scalars

ITERS = 3


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    return make_toy(tmp_path_factory.mktemp('toy'))


@pytest.mark.timeout(400)
@pytest.mark.parametrize('task,config,frozen_stages', [('det', DET_CONFIG, -1), ('seg', SEG_CONFIG, 1)])
def test_dist_train_two_cpu_processes(toy, tmp_path, task, config, frozen_stages):
    work_dir = tmp_path / 'work'
    options = [f'model.backbone.frozen_stages={frozen_stages}', 'find_unused_parameters=False']
    if task == 'det':
        options.append('model.test_cfg.score_thr=0.0')
    out = run(['tools/dist_train.sh', config, '2', '--toy', '--toy-iters', ITERS, '--toy-size', TOY_SIZE,
               '--data-root', toy[task], '--work-dir', work_dir, '--cfg-options', *options],
              extra_env={'PORT': str(free_port())}, timeout=360)
    assert 'distributed on CPU with gloo, 2 processes' in out.stdout
    assert 'unused parameters' not in out.stdout.lower()
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # mmengine's words
    assert_finite_losses(scalars(work_dir), ITERS)
    ckpt = work_dir / f'iter_{ITERS}.pth'
    assert ckpt.is_file()
    if task == 'det':
        test_dir = tmp_path / 'test'
        run(['tools/dist_test.sh', config, ckpt, '2', '--toy', '--toy-size', TOY_SIZE,
             '--data-root', toy[task], '--work-dir', test_dir, '--cfg-options', 'model.test_cfg.score_thr=0.0'],
            extra_env={'PORT': str(free_port())}, timeout=240)
        (metrics_file,) = test_dir.glob('*/*.json')
        assert 'coco/bbox_mAP' in json.loads(metrics_file.read_text())


def test_process_group_closed_after_the_runner_is_freed(tmp_path):
    """At exit the finished Runner still holds DDP (a reference cycle), and DDP the process group:
    the exit handler frees it first, so the group is really destroyed while Python is alive."""
    import gc
    import weakref

    import torch
    import torch.distributed as dist

    from mmmobilemamba.utils import compat

    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    gc.disable()  # no automatic collection between the two checks
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
        cycle = {'model': ddp}
        cycle['self'] = cycle  # like the Runner: unreachable, but only the cyclic gc frees it
        watch = weakref.ref(ddp)
        del ddp, cycle
        assert watch() is not None
        compat._close_process_group()
        assert watch() is None and not dist.is_initialized()
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
