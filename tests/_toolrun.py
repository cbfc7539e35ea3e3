"""Helpers for the tests that run tools/*.py as a user does (subprocesses on tiny toy data)."""
import glob
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DET_CONFIG = 'configs/det/retinanet_mobilemamba_s6.py'
SEG_CONFIG = 'configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py'
TOY_SIZE = '128'  # --toy-size: short side of the test images (px); MobileMamba needs >= 64


def load_tool(name):
    """tools/NAME.py (NAME may hold a folder) as a module, loaded by path (``test`` would clash with
    Python's test package)."""
    path = os.path.join(ROOT, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_mmm_tool_{name.replace("/", "_")}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_toy(out):
    """4 train / 2 val images of 96-128 px for each dataset; returns {'det': root, 'seg': root}."""
    out = str(out)
    run(['tools/dataset_converters/make_toy_data.py', '--out', out, '--train', '4', '--val', '2',
         '--min-size', '96', '--max-size', '128'], timeout=60)
    return {'det': os.path.join(out, 'coco'), 'seg': os.path.join(out, 'ade', 'ADEChallengeData2016')}


def env():
    e = dict(os.environ)
    e['PYTHONPATH'] = ROOT + os.pathsep + e.get('PYTHONPATH', '')
    e.setdefault('PYTHONUNBUFFERED', '1')
    return e


def run(args, timeout=240, check=True, extra_env=None):
    """Run `python ARGS...` (or `bash X.sh ...`) in the repository root; return CompletedProcess."""
    cmd = (['bash'] if str(args[0]).endswith('.sh') else [sys.executable]) + [str(a) for a in args]
    e = env()
    e.update(extra_env or {})
    proc = subprocess.run(cmd, cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited with {proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


def toy_train_args(config, data_root, work_dir, iters=3, *cfg_options):
    args = ['tools/train.py', config, '--toy', '--toy-iters', str(iters), '--toy-size', TOY_SIZE,
            '--data-root', data_root, '--work-dir', work_dir]
    if cfg_options:
        args += ['--cfg-options', *cfg_options]
    return args


def scalars(work_dir, run_index=-1):
    """The records of WORK_DIR/<timestamp>/vis_data/scalars.json of one run (default: the latest)."""
    files = sorted(glob.glob(os.path.join(str(work_dir), '*', 'vis_data', 'scalars.json')))
    assert files, f'no scalars.json under {work_dir}'
    with open(files[run_index]) as f:
        return [json.loads(line) for line in f if line.strip()]


def train_records(records):
    """{iteration: record} of the training-iteration records (those with a loss)."""
    return {r['iter']: r for r in records if 'loss' in r}


def assert_finite_losses(records, iters):
    train = train_records(records)
    assert sorted(train) == list(range(1, iters + 1)), sorted(train)
    for it, r in train.items():
        for k, v in r.items():
            if k.startswith('loss'):
                assert math.isfinite(v), f'iteration {it}: {k} = {v}'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
