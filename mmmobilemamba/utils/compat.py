"""Workarounds for upstream behaviour, in one place.

Each workaround is a function that the code needing it calls; each checks the upstream version
(or the missing feature) it is written for and does nothing elsewhere, and its docstring names
the upstream behaviour it works around.
"""
import atexit
import os.path as osp
import sys
import types

import torch
from mmengine.utils import digit_version

__all__ = ['close_process_group_at_exit', 'fix_mmdet_ssd_head', 'install_mmcv_ext_stub', 'logger_hook_dumps_on_rank0_only',
           'read_mmengine_checkpoints_strictly', 'setup_cpu_distributed']


def _version(package: str):
    return digit_version(sys.modules[package].__version__ if package in sys.modules
                         else __import__(package).__version__)


def fix_mmdet_ssd_head() -> bool:
    """mmdet <= 3.3.0: ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which
    ``SSDHead`` never defines (it skips ``AnchorHead.__init__``), so every SSD predict step raises
    ``AttributeError: 'SSDHead' object has no attribute 'loss_cls'`` (open-mmlab/mmdetection
    #11305, #11780). A class-level ``loss_cls = None`` makes that check false, as intended.
    Returns whether it was applied."""
    from mmdet.models.dense_heads.ssd_head import SSDHead
    if _version('mmdet') > digit_version('3.3.0') or hasattr(SSDHead, 'loss_cls'):
        return False
    SSDHead.loss_cls = None
    return True


def install_mmcv_ext_stub() -> bool:
    """mmcv-lite (mmcv >= 2.0 built without ops) has no ``mmcv._ext``, and mmdet / mmseg import
    ``mmcv.ops`` (hence ``mmcv._ext``) at import time even for models that call none of its ops.
    Registers a stub module whose every function raises when called; returns whether it did
    (False where the compiled ops exist)."""
    try:
        import mmcv._ext  # noqa: F401
        return False
    except ImportError:
        pass
    if _version('mmcv') < digit_version('2.0.0'):
        return False
    stub = types.ModuleType('mmcv._ext')

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)

        def missing(*args, **kwargs):
            raise RuntimeError(f'mmcv compiled op {name!r} is not available (mmcv without ops; '
                               'a stub mmcv._ext is registered)')
        return missing

    stub.__getattr__ = __getattr__
    sys.modules['mmcv._ext'] = stub
    return True


def logger_hook_dumps_on_rank0_only(runner) -> bool:
    """mmengine 0.10: ``LoggerHook.after_test_epoch`` writes WORK_DIR/<timestamp>/<timestamp>.json
    from every rank into the same file, so a distributed test can leave interleaved copies. Turns
    that dump off on the ranks other than 0; returns whether it did."""
    import mmengine
    from mmengine.hooks import LoggerHook
    if runner.rank == 0 or digit_version(mmengine.__version__) >= digit_version('0.11.0'):
        return False
    for hook in runner.hooks:
        if isinstance(hook, LoggerHook):
            hook.after_test_epoch = lambda runner, metrics=None: None
    return True


def read_mmengine_checkpoints_strictly():
    """Route mmengine's checkpoint loading (``load_from``, ``--resume``, ``Pretrained`` init of other
    modules) through :func:`mmmobilemamba.utils.checkpoint.read_checkpoint`.

    Works around: mmengine < 1.0 (checked on 0.10.7) reads local and http(s) checkpoints with a
    bare ``torch.load(filename)``. Before torch 2.6 that unpickles anything the file names; since 2.6
    it refuses with torch's advice to pass ``weights_only=False``. Through ``read_checkpoint`` every
    torch version reads with ``weights_only=True``, and a refusal names the offending global and the
    per-file opt-in (``--trust-checkpoint FILE``). Called before the Runner is built; returns whether
    it applied.
    """
    if _version('mmengine') >= digit_version('1.0.0'):
        return False
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import read_checkpoint

    @CheckpointLoader.register_scheme(prefixes=('', 'http://', 'https://'), force=True)
    def load_strictly(filename, map_location=None):
        if '://' not in filename:
            filename = osp.expanduser(filename)
            if not osp.isfile(filename):
                raise FileNotFoundError(f'{filename} can not be found.')
        return read_checkpoint(filename, map_location)
    return True


def _replace_sync_bn(node):
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        for value in node.values():
            _replace_sync_bn(value)
    elif isinstance(node, list):
        for value in node:
            _replace_sync_bn(value)


def _close_process_group():
    import gc

    import torch.distributed as dist
    gc.collect()  # frees the finished Runner and with it DDP's reference to the process group
    if dist.is_initialized():
        dist.destroy_process_group()


def close_process_group_at_exit():
    """Destroy the process group at interpreter exit, after the finished Runner is freed.

    mmengine never destroys the process group it (or we) created, and its Runner sits in a reference
    cycle, so at exit the DDP wrapper still holds the group: ``destroy_process_group()`` alone only
    drops torch's own references, and the group's C++ threads are torn down later, during interpreter
    finalisation, where gloo can abort a run that finished ("terminate called without an active
    exception", SIGABRT), which torchrun then reports as a failed rank. Registered once per process.
    """
    atexit.unregister(_close_process_group)  # a second call keeps one registration
    atexit.register(_close_process_group)


def setup_cpu_distributed(cfg, log=print) -> bool:
    """mmengine < 1.0 assumes CUDA for ``--launcher pytorch``: ``init_dist`` calls
    ``torch.cuda.set_device`` and its DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail on
    a machine without a GPU. There, this creates the gloo process group first (mmengine then finds
    it initialised and skips its own), builds BatchNorm for SyncBN and a DDP
    wrapper without ``device_ids``. Returns whether it applied (False with CUDA)."""
    import mmengine
    if torch.cuda.is_available() or digit_version(mmengine.__version__) >= digit_version('1.0.0'):
        return False
    import torch.distributed as dist
    if not isinstance(cfg.get('env_cfg'), dict):
        cfg.env_cfg = {}
    if not isinstance(cfg.env_cfg.get('dist_cfg'), dict):
        cfg.env_cfg.dist_cfg = {}
    dist_cfg = cfg.env_cfg.dist_cfg
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k not in ('backend',)}
        if 'timeout' in kwargs:
            import datetime
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)
    _replace_sync_bn(cfg.get('model', {}))
    cfg.pop('sync_bn', None)  # sync_bn=torch|mmcv: SyncBatchNorm has no CPU implementation
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False),
        **{k: v for k, v in (cfg.get('model_wrapper_cfg') or {}).items()
           if k not in ('type', 'device_ids', 'broadcast_buffers', 'find_unused_parameters')})
    if dist.get_rank() == 0:
        log(f'no GPU: distributed on CPU with gloo, {dist.get_world_size()} processes '
            '(SyncBN -> BN, DDP without device_ids)')
    return True
