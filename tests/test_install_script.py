"""tools/install.sh's decisions (DRY_RUN=1: it prints the pip commands instead of running them),
with a stand-in `torch` module on PYTHONPATH so that the GPU cases run on a machine without a GPU."""
import os
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_CUDA_TORCH = '''
__version__ = '2.11.0+cu130'
class version:
    cuda = '13.0'
class cuda:
    @staticmethod
    def is_available():
        return True
    @staticmethod
    def device_count():
        return 3
    @staticmethod
    def get_device_capability(i):
        return [(9, 0), (8, 6), (9, 0)][i]
def tensor(data, device=None):
    return data
'''
FAKE_CPP_EXTENSION = 'CUDA_HOME = {cuda_home!r}\n'


def _executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _fake_torch(tmp_path, cuda_home):
    pkg = tmp_path / 'fake' / 'torch'
    (pkg / 'utils').mkdir(parents=True)
    (pkg / '__init__.py').write_text(FAKE_CUDA_TORCH)
    (pkg / 'utils' / '__init__.py').write_text('')
    (pkg / 'utils' / 'cpp_extension.py').write_text(FAKE_CPP_EXTENSION.format(cuda_home=cuda_home))
    return pkg.parent


def _fake_mmcv(fake_dir, nms_runs_on_cuda):
    """An installed mmcv 2.1.0 whose NMS runs on the GPU or raises as a CPU-only build's does."""
    pkg = fake_dir / 'mmcv'
    (pkg / 'ops').mkdir(parents=True)
    (pkg / '__init__.py').write_text("__version__ = '2.1.0'\n")
    body = 'return boxes' if nms_runs_on_cuda else "raise RuntimeError('nms is not compiled with GPU support')"
    (pkg / 'ops' / '__init__.py').write_text(f'def nms(boxes, scores, iou_threshold):\n    {body}\n')


def _no_torch(tmp_path):
    pkg = tmp_path / 'fake' / 'torch'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text("raise ImportError('no torch here')\n")
    return pkg.parent


def _run(python_path, wheel_dir, extra_path=None, **env):
    e = {k: v for k, v in os.environ.items() if k not in ('TORCH_CUDA_ARCH_LIST', 'FORCE_CUDA', 'MMCV_SOURCE')}
    e.update(DRY_RUN='1', PYTHONPATH=str(python_path), MMCV_WHEEL_DIR=str(wheel_dir), **env)
    if extra_path:
        e['PATH'] = f'{extra_path}{os.pathsep}{e["PATH"]}'
    return subprocess.run(['bash', 'tools/install.sh'], cwd=ROOT, env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)


@pytest.fixture
def cuda_home(tmp_path):
    home = tmp_path / 'cuda'
    (home / 'bin').mkdir(parents=True)
    _executable(home / 'bin' / 'nvcc', '#!/bin/sh\necho nvcc\n')
    return home


def test_cuda_torch_is_kept_and_mmcv_is_built_for_the_visible_gpus(tmp_path, cuda_home):
    out = _run(_fake_torch(tmp_path, str(cuda_home)), tmp_path / 'wheels')
    assert out.returncode == 0, out.stdout
    assert 'torch==' not in out.stdout  # the CUDA torch is neither replaced nor reinstalled
    build = [line for line in out.stdout.splitlines() if ' pip wheel ' in line]
    assert len(build) == 1, out.stdout
    assert 'FORCE_CUDA=1' in build[0] and 'TORCH_CUDA_ARCH_LIST=8.6;9.0' in build[0]
    assert 'CFLAGS' not in build[0]  # the CPU build's -O1 does not apply to the CUDA build
    key_dir = tmp_path / 'wheels' / 'py{}.{}-torch2.11.0+cu130-cuda13.0-sm8.6_9.0'.format(*sys.version_info[:2])
    assert f'-w {key_dir} mmcv==2.1.0' in build[0]
    assert f'--find-links {key_dir} --only-binary mmcv mmcv==2.1.0' in out.stdout


def test_a_built_wheel_is_reused_not_rebuilt(tmp_path, cuda_home):
    first = _run(_fake_torch(tmp_path, str(cuda_home)), tmp_path / 'wheels')
    assert not (tmp_path / 'wheels').exists(), 'a dry run must not write the wheel folder'
    target = first.stdout.split('building the wheel into ')[1].split(' ')[0]
    os.makedirs(target)
    open(os.path.join(target, 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'), 'w').close()
    again = _run(tmp_path / 'fake', tmp_path / 'wheels')
    assert 'reusing the wheel built earlier' in again.stdout, again.stdout
    assert ' pip wheel ' not in again.stdout
    assert f'--find-links {target} --only-binary mmcv' in again.stdout


def test_arch_list_from_the_environment_wins(tmp_path, cuda_home):
    out = _run(_fake_torch(tmp_path, str(cuda_home)), tmp_path / 'wheels', TORCH_CUDA_ARCH_LIST='8.0 9.0')
    assert 'TORCH_CUDA_ARCH_LIST=8.0;9.0' in out.stdout, out.stdout


def test_cuda_torch_without_nvcc_stops_with_the_fixes(tmp_path):
    path = [d for d in os.environ['PATH'].split(os.pathsep) if not os.path.exists(os.path.join(d, 'nvcc'))]
    if shutil.which('python', path=os.pathsep.join(path)) is None:
        pytest.skip('python shares its folder with nvcc here')
    out = _run(_fake_torch(tmp_path, None), tmp_path / 'wheels', PATH=os.pathsep.join(path))
    assert out.returncode == 1
    assert 'nvcc' in out.stdout and 'FORCE_CUDA=0' in out.stdout and ' pip wheel ' not in out.stdout


@pytest.mark.skipif(shutil.which('nvidia-smi') is not None, reason='this machine has nvidia-smi')
def test_no_torch_no_gpu_installs_the_cpu_build_explicitly(tmp_path):
    out = _run(_no_torch(tmp_path), tmp_path / 'wheels')
    assert out.returncode == 0, out.stdout
    lines = [line for line in out.stdout.splitlines() if 'torch==' in line]
    assert lines and all('torch==2.13.0+cpu' in line for line in lines), lines
    assert '--extra-index-url https://download.pytorch.org/whl/cpu' in lines[0]
    build = next(line for line in out.stdout.splitlines() if ' pip wheel ' in line)
    assert 'FORCE_CUDA=0 CUDA_VISIBLE_DEVICES= ' in build and 'CFLAGS=-g0 -O1' in build


def test_no_torch_with_a_gpu_gets_the_cuda_build(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    _executable(bin_dir / 'nvidia-smi', '#!/bin/sh\necho "GPU 0: NVIDIA H200 (UUID: GPU-0)"\n')
    out = _run(_no_torch(tmp_path), tmp_path / 'wheels', extra_path=bin_dir)
    assert out.returncode == 0, out.stdout
    assert '-q torch==2.13.0\n' in out.stdout + '\n' and '+cpu' not in out.stdout


def test_force_cuda_0_builds_cpu_ops_with_the_gpus_hidden(tmp_path, cuda_home):
    out = _run(_fake_torch(tmp_path, str(cuda_home)), tmp_path / 'wheels', FORCE_CUDA='0')
    assert out.returncode == 0, out.stdout
    build = next(line for line in out.stdout.splitlines() if ' pip wheel ' in line)
    assert 'FORCE_CUDA=0 CUDA_VISIBLE_DEVICES= ' in build and 'TORCH_CUDA_ARCH_LIST' not in build
    assert '-torch2.11.0+cu130-cpu' in build


@pytest.mark.parametrize('cuda_nms', [True, False])
def test_installed_mmcv_is_kept_only_with_cuda_ops(tmp_path, cuda_home, cuda_nms):
    fake = _fake_torch(tmp_path, str(cuda_home))
    _fake_mmcv(fake, nms_runs_on_cuda=cuda_nms)
    out = _run(fake, tmp_path / 'wheels')
    assert out.returncode == 0, out.stdout
    kept = 'mmcv 2.1.0 with cuda ops is installed: kept' in out.stdout
    assert kept == cuda_nms, out.stdout
    assert (' pip wheel ' in out.stdout) != cuda_nms, out.stdout


@pytest.mark.parametrize('numpy_version', [None, '2.5.2'])
def test_an_installed_numpy_is_kept_a_new_one_is_pinned(tmp_path, cuda_home, numpy_version):
    fake = _fake_torch(tmp_path, str(cuda_home))
    (fake / 'numpy').mkdir()
    (fake / 'numpy' / '__init__.py').write_text(
        f'__version__ = {numpy_version!r}\n' if numpy_version else "raise ImportError('no numpy here')\n")
    out = _run(fake, tmp_path / 'wheels')
    assert out.returncode == 0, out.stdout
    first_pip = next(line for line in out.stdout.splitlines() if line.startswith('+ python -m pip install'))
    if numpy_version:
        assert f'numpy {numpy_version} is installed: kept' in out.stdout
        assert '-c requirements/constraints.txt' not in out.stdout  # a copy without the numpy pin
    else:
        assert not any(line.startswith('numpy ') for line in out.stdout.splitlines())
        assert '-c requirements/constraints.txt' in first_pip
