"""A training run killed with SIGKILL resumes (tools/train.py --resume) from its last checkpoint and
ends exactly like an uninterrupted run: same final iteration, lr at every resumed iteration,
optimizer step counts, scheduler state and weights."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import mmmobilemamba  # noqa: F401  (allow-lists what mmengine checkpoints hold for weights_only loading)
from _toolrun import DET_CONFIG, ROOT, env, make_toy, run, scalars, toy_train_args, train_records

ITERS = 12  # lr warm-up over the first 6 (--toy), so the lr changes at every resumable checkpoint
# checkpoint every 2 iterations; no stochastic depth (it draws from the torch RNG, whose state a
# checkpoint does not hold); seeded
OPTIONS = ('default_hooks.checkpoint.interval=2', 'model.backbone.drop_path_rate=0.0', 'randomness.seed=0')


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.mark.timeout(400)
def test_resume_after_sigkill(tmp_path):
    toy = make_toy(tmp_path / 'toy')
    ref_dir, killed_dir = tmp_path / 'reference', tmp_path / 'killed'
    run(toy_train_args(DET_CONFIG, toy['det'], ref_dir, ITERS, *OPTIONS))

    # the same run, killed (SIGKILL: no clean-up of any kind) right after its first checkpoint
    args = toy_train_args(DET_CONFIG, toy['det'], killed_dir, ITERS, *OPTIONS)
    proc = subprocess.Popen([sys.executable] + [str(a) for a in args], cwd=ROOT, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed_dir / 'last_checkpoint'
    deadline = time.time() + 240
    # mmengine creates last_checkpoint, then writes the path into it: wait for the path
    while not (last.exists() and last.read_text().strip()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, 'the run ended before it could be killed'
    resume_from = last.read_text().strip()
    done = _load(resume_from)['meta']['iter']
    assert 0 < done < ITERS // 2, f'killed too late (checkpoint of iteration {done})'

    out = run(['tools/train.py', *args[1:], '--resume'])
    assert f'resumed epoch: 0, iter: {done}' in out.stdout

    # lr of every resumed iteration equals the uninterrupted run's (scheduler state restored)
    ref_train = train_records(scalars(ref_dir))
    resumed = train_records(scalars(killed_dir))
    assert sorted(resumed) == list(range(done + 1, ITERS + 1))
    for it in resumed:
        assert resumed[it]['lr'] == pytest.approx(ref_train[it]['lr'], rel=1e-9), it

    ref, res = _load(ref_dir / f'iter_{ITERS}.pth'), _load(killed_dir / f'iter_{ITERS}.pth')
    assert res['meta']['iter'] == ref['meta']['iter'] == ITERS
    # optimizer: every parameter took ITERS AdamW steps, lr and moments as in the reference
    steps = {float(s['step']) for s in res['optimizer']['state'].values()}
    assert steps == {float(ITERS)}
    assert res['optimizer']['param_groups'][0]['lr'] == ref['optimizer']['param_groups'][0]['lr']
    assert res['param_schedulers'] == ref['param_schedulers']  # last_step, last lr, ...
    # weights: the resumed run repeats the reference run (same data order and augmentations)
    for name, value in ref['state_dict'].items():
        torch.testing.assert_close(res['state_dict'][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for key, state in ref['optimizer']['state'].items():
        torch.testing.assert_close(res['optimizer']['state'][key]['exp_avg'], state['exp_avg'],
                                   rtol=1e-3, atol=1e-6)
