"""SyncBN as an option (``--cfg-options sync_bn=torch``): mmengine converts every BatchNorm of the
model when it wraps it for distributed training; the MobileMamba backbone's BatchNorms (plain
``nn.BatchNorm2d`` inside its Conv-BN pairs) must convert, keep the checkpoint layout, and keep
``norm_eval``. On CPU (gloo) mmmobilemamba.apis.runner_setup drops the option: SyncBatchNorm needs GPUs."""
import os
import subprocess
import sys

from torch import nn

from _toolrun import DET_CONFIG, ROOT, SEG_CONFIG, free_port


def _build(config):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(os.path.join(ROOT, config))
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def test_backbone_batchnorms_convert_to_syncbn():
    from mmengine.model import convert_sync_batchnorm
    model = _build(DET_CONFIG)
    before = {k: v.shape for k, v in model.state_dict().items()}
    bn_names = [n for n, m in model.backbone.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bn_names) > 50
    model = convert_sync_batchnorm(model, 'torch')
    synced = {n for n, m in model.backbone.named_modules() if isinstance(m, nn.SyncBatchNorm)}
    assert synced == set(bn_names)
    assert {k: v.shape for k, v in model.state_dict().items()} == before  # checkpoints interchange
    model.train()  # the config's norm_eval=True keeps the backbone's statistics frozen
    assert not any(m.training for n, m in model.backbone.named_modules() if n in synced)
    assert model.bbox_head.training


def _setup_on_cpu(config, options):
    """mmmobilemamba.apis.runner_setup's setup_distributed in a 1-process gloo group; the resulting config."""
    script = (
        'from mmmobilemamba.apis import runner_setup as rs\n'
        f'cfg = rs.load_config({config!r}); cfg.merge_from_dict({options!r})\n'
        'rs.setup_distributed(cfg, "pytorch", log=lambda *_: None)\n'
        'print(cfg.get("sync_bn"), cfg.model.decode_head.norm_cfg.type)\n')
    env = dict(os.environ, PYTHONPATH=ROOT, MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()),
               RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    return out.stdout.strip().splitlines()[-1]


def test_cpu_distributed_drops_sync_bn():
    assert _setup_on_cpu(SEG_CONFIG, {'sync_bn': 'torch'}) == 'None BN'


def test_single_process_keeps_the_config():
    from mmmobilemamba.apis import runner_setup as rs
    cfg = rs.load_config(os.path.join(ROOT, SEG_CONFIG))
    cfg.merge_from_dict({'sync_bn': 'torch'})
    rs.setup_distributed(cfg, 'none')
    assert cfg.sync_bn == 'torch' and cfg.model.decode_head.norm_cfg.type == 'SyncBN'
