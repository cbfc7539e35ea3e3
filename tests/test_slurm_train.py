"""tools/slurm_train.sh without a cluster: --help, argument errors, the srun command of a dry run,
and the command a stand-in `srun` on PATH receives."""
import os
import stat
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'configs/det/retinanet_mobilemamba_s6.py'


def _slurm(*args, path_prefix=None, **env):
    e = {k: v for k, v in os.environ.items() if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS', 'PORT')}
    e.update(env)
    if path_prefix:
        e['PATH'] = f'{path_prefix}{os.pathsep}{e["PATH"]}'
    return subprocess.run(['bash', 'tools/slurm_train.sh', *map(str, args)], cwd=ROOT, env=e,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)


def test_help_names_the_arguments_and_variables():
    out = _slurm('--help')
    assert out.returncode == 0
    for word in ('PARTITION JOB_NAME CONFIG WORK_DIR', 'GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS', 'DRY_RUN'):
        assert word in out.stdout, word
    assert not out.stdout.startswith('#') and 'set -' not in out.stdout


def test_missing_arguments_exit_2_with_usage():
    out = _slurm('partition', 'job')
    assert out.returncode == 2
    assert 'expected PARTITION JOB_NAME CONFIG WORK_DIR' in out.stderr and 'GPUS_PER_NODE' in out.stderr


def test_dry_run_prints_the_srun_command():
    out = _slurm('gpu', 'r_s6', CONFIG, 'work_dirs/r_s6', '--amp', '--cfg-options', 'sync_bn=torch',
                 DRY_RUN='1', GPUS='16', GPUS_PER_NODE='8', SRUN_ARGS='--time=1:00:00 --exclusive', PORT='29611')
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        'MASTER_PORT=29611 srun -p gpu --job-name=r_s6 --gres=gpu:8 --ntasks=16 --ntasks-per-node=8 '
        '--cpus-per-task=5 --kill-on-bad-exit=1 --time=1:00:00 --exclusive python -u tools/train.py '
        f'{CONFIG} --work-dir work_dirs/r_s6 --launcher slurm --amp --cfg-options sync_bn=torch')


def test_fewer_gpus_than_a_node_ask_for_that_many(tmp_path):
    out = _slurm('gpu', 'r', CONFIG, 'w', DRY_RUN='1', GPUS='2')
    assert '--gres=gpu:2 --ntasks=2 --ntasks-per-node=2 ' in out.stdout


def test_srun_receives_the_arguments_and_the_port(tmp_path):
    fake = tmp_path / 'srun'
    fake.write_text('#!/bin/sh\necho "port=$MASTER_PORT"\nfor a in "$@"; do echo "arg=$a"; done\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = _slurm('gpu', 'job name', CONFIG, tmp_path / 'work dir', path_prefix=tmp_path, GPUS='4')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == 'port=29500'
    args = [line[4:] for line in lines[1:]]
    assert args[:3] == ['-p', 'gpu', '--job-name=job name']
    assert args[args.index('tools/train.py') - 2:] == [
        'python', '-u', 'tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'work dir'), '--launcher', 'slurm']
