"""Config preparation shared by tools/train.py and tools/test.py.

Everything here edits an mmengine ``Config`` before the Runner is built (loading the config and
telling its task: :mod:`mmmobilemamba.apis.config`):

* ``set_data_root``      -- moves every dataset / evaluator path under a new data root;
* ``apply_toy``          -- the ``--toy`` preset (toy data, short schedule, small images, CPU);
* ``check_data``         -- fails early, naming the missing path and the fix;
* ``setup_distributed``  -- gloo + CPU DDP when there is no GPU (mmengine assumes CUDA);
* ``apply_command_line`` -- the options train.py and test.py share;
* ``trust_checkpoints``  -- ``--trust-checkpoint FILE``: the one opt-in for a file beyond weights;
* ``check_checkpoint_matches`` -- test.py: every key and shape of the checkpoint before loading;
* ``build_runner``       -- the Runner, once the above and checkpoint loading are set up.
"""
import contextlib
import glob
import os
import os.path as osp

import torch

from mmmobilemamba.utils.compat import (close_process_group_at_exit, read_mmengine_checkpoints_strictly,
                                        setup_cpu_distributed)

from .config import ToolError, detect_task, load_config, register_modules

__all__ = ['ToolError', 'load_config', 'detect_task', 'register_modules', 'set_data_root', 'apply_toy',
           'apply_command_line', 'check_data', 'check_pretrained', 'check_checkpoint', 'setup_distributed',
           'TRUST_HELP', 'add_runner_arguments', 'checkpoint_errors_as_messages', 'trust_checkpoints', 'check_checkpoint_matches',
           'deploy_backbone_after_loading', 'build_runner', 'TOY_DATA_ROOTS', 'TOY_ITERS', 'TOY_SIZE', 'TOY_BATCH']

# --toy defaults (the README and tools/train.py --help describe them)
TOY_DATA_ROOTS = {'det': 'data/toy/coco/', 'seg': 'data/toy/ade/ADEChallengeData2016'}
TOY_ITERS = 20
TOY_SIZE = 256
TOY_BATCH = 2

DATASET_HELP = {
    'det': 'COCO 2017 (annotations/instances_{train,val}2017.json, {train,val}2017/*.jpg)',
    'seg': 'ADE20K (images/{training,validation}/*.jpg, annotations/{training,validation}/*.png)',
}


# ----------------------------------------------------------------------------- walking configs
def _section(node, key):
    """node[key], created as an empty dict if missing (ConfigDict.setdefault returns a copy)."""
    if not isinstance(node.get(key), dict):
        node[key] = {}
    return node[key]


def _walk(node, fn, key=None):
    """Call fn(container, key, value) for every item of nested dicts/lists (depth first)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in list(items):
        fn(node, k, v)
        if isinstance(v, (dict, list)):
            _walk(v, fn, k)


def _datasets(cfg, loader_names):
    """(loader name, dataset dict) for the innermost datasets of the named dataloaders."""
    out = []

    def visit(name, ds):
        if not isinstance(ds, dict):
            return
        if isinstance(ds.get('dataset'), dict):
            visit(name, ds['dataset'])
        elif isinstance(ds.get('datasets'), list):
            for d in ds['datasets']:
                visit(name, d)
        else:
            out.append((name, ds))

    for name in loader_names:
        loader = cfg.get(name)
        if isinstance(loader, dict):
            visit(name, loader.get('dataset'))
    return out


# ----------------------------------------------------------------------------- data root
def config_data_roots(cfg):
    roots = {ds.get('data_root') for _, ds in _datasets(cfg, ('train_dataloader', 'val_dataloader',
                                                               'test_dataloader'))}
    roots.discard(None)
    if cfg.get('data_root'):
        roots.add(cfg.data_root)
    return {r.rstrip('/') for r in roots if isinstance(r, str)} or set()


def set_data_root(cfg, new_root):
    """Point every path derived from the config's data root(s) at new_root.

    Changes every ``data_root`` value and every string that starts with an old data root
    (e.g. the CocoMetric's ``ann_file='data/coco/annotations/...'``).
    """
    olds = config_data_roots(cfg)
    if not olds:
        raise ToolError('--data-root: the config has no data_root to replace')
    if len(olds) > 1:
        raise ToolError(f'--data-root: the config uses several data roots {sorted(olds)}; '
                        'set them one by one with --cfg-options')
    old = olds.pop()
    new = new_root.rstrip('/')

    def fix(container, key, value):
        if not isinstance(value, str):
            return
        if key == 'data_root':
            container[key] = new + ('/' if value.endswith('/') else '')
        elif value == old or value.startswith(old + '/'):
            container[key] = new + value[len(old):]

    _walk(cfg._cfg_dict, fix)
    return old, new


# ----------------------------------------------------------------------------- --toy
def _scaled(value, f):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(1, int(round(value * f)))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return tuple(max(1, int(round(v * f))) for v in value)
    if isinstance(value, (list, tuple)):  # e.g. RandomChoiceResize scales=[(w, h), ...]
        return [_scaled(v, f) for v in value]
    return value


def _test_scale(cfg):
    """The short side of the first Resize scale of the test (or val) pipeline, or None."""
    for _, ds in _datasets(cfg, ('test_dataloader', 'val_dataloader')):
        found = []

        def find(container, key, value):
            if key == 'scale' and isinstance(container, dict) and 'Resize' in str(container.get('type', '')):
                found.append(value)

        _walk(ds.get('pipeline', []), find)
        for scale in found:
            if isinstance(scale, (int, float)):
                return scale
            if isinstance(scale, (list, tuple)) and len(scale) == 2:
                return min(scale)
    return None


def scale_images(cfg, f):
    """Multiply every image size in pipelines, the data preprocessor and slide inference by f."""
    size_keys = ('scale', 'scales', 'img_scale', 'crop_size')

    def fix_transform(container, key, value):
        if isinstance(value, dict) and 'type' in value:
            for k in size_keys:
                if k in value:
                    value[k] = _scaled(value[k], f)
            if 'Pad' in str(value['type']) and 'size' in value:
                value['size'] = _scaled(value['size'], f)

    def fix_pipelines(container, key, value):
        if key in ('pipeline', 'transforms') and isinstance(value, list):
            _walk(value, fix_transform)

    _walk(cfg._cfg_dict, fix_pipelines)
    model = cfg.get('model', {})
    pre = model.get('data_preprocessor') or {}
    if pre.get('size'):
        pre['size'] = _scaled(pre['size'], f)
    divisor = pre.get('pad_size_divisor') or 1

    def scaled_buckets(sizes):  # a bucket size padded to the divisor still holds its batches
        return [tuple(-(-v // divisor) * divisor for v in _scaled(size, f)) for size in sizes]

    if pre.get('bucket_sizes'):  # BucketPadDetDataPreprocessor
        pre['bucket_sizes'] = scaled_buckets(pre['bucket_sizes'])
    for aug in pre.get('batch_augments') or []:
        if isinstance(aug, dict) and aug.get('size'):
            aug['size'] = _scaled(aug['size'], f)
        if isinstance(aug, dict) and aug.get('sizes'):  # BatchBucketPad
            aug['sizes'] = scaled_buckets(aug['sizes'])
    test_cfg = model.get('test_cfg') or {}
    if isinstance(test_cfg, dict) and test_cfg.get('mode') == 'slide':
        for k in ('crop_size', 'stride'):
            if k in test_cfg:
                test_cfg[k] = _scaled(test_cfg[k], f)
    if isinstance(cfg.get('crop_size'), (list, tuple)):
        cfg.crop_size = _scaled(cfg.crop_size, f)


def apply_toy(cfg, task, iters=TOY_ITERS, size=TOY_SIZE, data_root=None, training=True, log=print):
    """The --toy preset: train/test on the generated toy data in minutes on a CPU.

    1. data root -> data/toy/coco/ or data/toy/ade/ADEChallengeData2016 (or ``data_root``);
    2. image sizes x f, f = size / (short side of the test Resize scale): every Resize /
       RandomResize scale, crop size, Pad size, the preprocessor's fixed and bucket sizes, slide window
       (``size=0`` keeps the config's sizes, e.g. on a GPU);
    3. schedule: IterBasedTrainLoop of ``iters`` iterations (InfiniteSampler), validation and a
       checkpoint at the end, lr warm-up (LinearLR from 0.1x) over the first half, then constant;
    4. logging every iteration (no smoothing window);
    5. batch size 2 for training, 1 for testing, data loading in the main process;
    6. random seed 0 (unless the config sets one), so a toy run repeats on the same machine;
    7. a backbone ``Pretrained`` checkpoint that does not exist is dropped (trained from scratch), and
       a backbone trained from scratch gets ``norm_eval=False``: frozen BatchNorm statistics suit
       pretrained weights; frozen at their initial values (mean 0, variance 1) they do not normalise.

    With ``training=False`` (tools/test.py) only 1, 2 and 5 apply.
    """
    changes = []
    root = data_root or TOY_DATA_ROOTS[task]
    old, new = set_data_root(cfg, root)
    changes.append(f'data root {old!r} -> {new!r}')

    short = _test_scale(cfg)
    if short and size:  # size 0: keep the config's image sizes
        f = size / short
        scale_images(cfg, f)
        changes.append(f'image sizes x{f:.3g} (test short side {short} -> {size} px)')

    for name, batch in (('train_dataloader', TOY_BATCH), ('val_dataloader', 1), ('test_dataloader', 1)):
        loader = cfg.get(name)
        if isinstance(loader, dict):
            loader.update(batch_size=batch, num_workers=0, persistent_workers=False)
    changes.append(f'batch size {TOY_BATCH} (test 1), num_workers 0')
    if not training:
        log('--toy: ' + '; '.join(changes))
        return

    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
    train_loader = cfg.get('train_dataloader')
    if isinstance(train_loader, dict):  # no dataloader restart (and its 2 s pause) every epoch
        train_loader['sampler'] = dict(type='InfiniteSampler', shuffle=True)
    cfg.setdefault('val_cfg', dict(type='ValLoop'))
    cfg.setdefault('test_cfg', dict(type='TestLoop'))
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=max(2, iters // 2))]
    hooks = _section(cfg, 'default_hooks')
    hooks['checkpoint'] = dict(type='CheckpointHook', by_epoch=False, interval=iters)
    hooks['logger'] = dict(type='LoggerHook', interval=1, log_metric_by_epoch=False)
    cfg.log_processor = dict(type='LogProcessor', window_size=1, by_epoch=False)
    changes.append(f'{iters} iterations (IterBasedTrainLoop), warm-up {max(2, iters // 2)} iters, '
                   'validation + checkpoint at the end, log every iteration')

    randomness = _section(cfg, 'randomness')
    if randomness.get('seed') is None:
        randomness['seed'] = 0
        changes.append('seed 0')

    backbone = cfg.get('model', {}).get('backbone') or {}
    init = backbone.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        ckpt = str(init.get('checkpoint', ''))
        if '://' not in ckpt and not osp.isfile(ckpt):
            backbone['init_cfg'] = None
            changes.append(f'backbone weights {ckpt!r} not found: training from scratch')
    if 'init_cfg' in backbone and backbone['init_cfg'] is None and backbone.get('norm_eval'):
        backbone['norm_eval'] = False
        changes.append('backbone norm_eval=False (from scratch, BatchNorm learns its statistics)')
    log('--toy: ' + '; '.join(changes))


# ----------------------------------------------------------------------------- checks
def apply_command_line(cfg, args, task, log=print, **toy_kwargs):
    """The options train.py and test.py share, in order: ``--launcher``, ``--toy`` (with
    ``toy_kwargs`` for :func:`apply_toy`) or ``--data-root``, ``--cfg-options`` (last, so they win),
    then the work dir (``--work-dir``, else work_dirs/[toy/]CONFIG_NAME unless the config sets one)."""
    cfg.launcher = args.launcher
    if args.toy:
        apply_toy(cfg, task, size=args.toy_size, data_root=args.data_root, log=log, **toy_kwargs)
    elif args.data_root:
        old, new = set_data_root(cfg, args.data_root)
        log(f'data root {old!r} -> {new!r}')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    name = osp.splitext(osp.basename(args.config))[0]
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif args.toy:
        cfg.work_dir = osp.join('work_dirs', 'toy', name)
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', name)


def _join(root, path):
    if not path or osp.isabs(path) or not root:
        return path
    return osp.join(root, path)


def check_data(cfg, task, loader_names, toy=False):
    """Raise ToolError naming every missing dataset path and how to fix it."""
    missing = []
    for name, ds in _datasets(cfg, loader_names):
        root = ds.get('data_root') or ''
        if root and not osp.isdir(root):
            missing.append((name, root))
            continue
        paths = [_join(root, ds.get('ann_file', ''))]
        prefix = ds.get('data_prefix') or {}
        paths += [_join(root, p) for p in prefix.values() if isinstance(p, str)] if isinstance(prefix, dict) else []
        missing += [(name, p) for p in paths if p and not osp.exists(p)]
    for name in ('val_evaluator', 'test_evaluator'):
        if name.split('_')[0] + '_dataloader' not in loader_names:
            continue
        evaluators = cfg.get(name)
        for ev in evaluators if isinstance(evaluators, list) else [evaluators]:
            if isinstance(ev, dict) and isinstance(ev.get('ann_file'), str) and ev['ann_file'] \
                    and not osp.exists(ev['ann_file']):
                missing.append((name, ev['ann_file']))
    if not missing:
        return
    users = {}
    for name, path in missing:
        users.setdefault(path, []).append(name)
    lines = '\n'.join(f'  {p}  (needed by {", ".join(dict.fromkeys(n))})' for p, n in users.items())
    roots = sorted(config_data_roots(cfg)) or ['?']
    if toy:
        fix = ('generate the toy data first:  python tools/dataset_converters/make_toy_data.py'
               '  (writes data/toy/coco and data/toy/ade; with --out DIR, pass the matching --data-root)')
    else:
        fix = (f'put {DATASET_HELP[task]} at {roots[0]!r} (or a symlink to your copy there), or pass '
               '--data-root DIR;\n  for a try-out on generated data:  python tools/dataset_converters/make_toy_data.py  '
               'and add --toy')
    raise ToolError(f'dataset files not found (working directory {os.getcwd()}):\n{lines}\n  fix: {fix}')


def check_pretrained(cfg):
    backbone = cfg.get('model', {}).get('backbone') or {}
    init = backbone.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        ckpt = str(init.get('checkpoint', ''))
        if ckpt and '://' not in ckpt and not osp.isfile(ckpt):
            raise ToolError(
                f'backbone weights {ckpt!r} not found (working directory {os.getcwd()}).\n  fix: download '
                'the release ImageNet checkpoint to that path (README, "Pretrained weights"), or train '
                'from scratch with  --cfg-options model.backbone.init_cfg=None')


def check_checkpoint(path, what='checkpoint'):
    if osp.isfile(path):
        return
    hint = ''
    folder = osp.dirname(path) or '.'
    if osp.isdir(folder):
        found = sorted(glob.glob(osp.join(folder, '*.pth')))
        if found:
            hint = '\n  checkpoints in that folder: ' + ', '.join(osp.basename(p) for p in found[-5:])
        last = osp.join(folder, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as fh:
                hint += f'\n  the latest one (from {last}): {fh.read().strip()}'
    raise ToolError(f'{what} {path!r} not found.{hint}')


# ----------------------------------------------------------------------------- distributed
def setup_distributed(cfg, launcher, log=print):
    """Make ``--launcher pytorch`` work without a GPU (gloo, CPU DDP, BatchNorm for SyncBN; see
    :func:`mmmobilemamba.utils.compat.setup_cpu_distributed`); other launchers need GPUs. With any
    launcher the process group is destroyed at exit (:func:`~mmmobilemamba.utils.compat.close_process_group_at_exit`)."""
    if launcher == 'none':
        return
    close_process_group_at_exit()
    if torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ToolError(f'--launcher {launcher} needs GPUs here; on CPU use --launcher pytorch '
                        '(tools/dist_train.sh, tools/dist_test.sh)')
    setup_cpu_distributed(cfg, log=log)


# ----------------------------------------------------------------------------- checkpoints
TRUST_HELP = ('a checkpoint file you trust: if it holds objects beyond weights (which are refused '
              'otherwise: unpickling them can run code), it is unpickled in full. Repeatable')


def add_runner_arguments(parser, dist_script):
    """The options train.py and test.py share last: ``--trust-checkpoint``, ``--launcher`` (which
    ``dist_script`` sets to pytorch) and ``--local_rank``."""
    parser.add_argument('--trust-checkpoint', action='append', default=[], metavar='FILE', help=TRUST_HELP)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help=f'job launcher ({dist_script} uses pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


@contextlib.contextmanager
def checkpoint_errors_as_messages():
    """A checkpoint that cannot be used (untrusted, unreadable, of another model) ends the tool with
    its message, not a traceback through the Runner."""
    from mmmobilemamba.utils.checkpoint import CheckpointError
    try:
        yield
    except CheckpointError as err:
        raise ToolError(str(err)) from None


def trust_checkpoints(paths):
    from mmmobilemamba.utils.checkpoint import trust_checkpoint
    for path in paths:
        check_checkpoint(path, '--trust-checkpoint file')
        trust_checkpoint(path)


def check_checkpoint_matches(runner, path):
    """mmengine loads ``load_from`` non-strictly (a checkpoint of another variant would be evaluated
    with some weights missing): check every key and shape first, and stop with the differences."""
    from mmengine.model import is_model_wrapper

    from mmmobilemamba.utils.checkpoint import check_state_dict, read_checkpoint
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    checkpoint = read_checkpoint(path)
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    check_state_dict(model, state, source=f'checkpoint {path!r}')


# ----------------------------------------------------------------------------------- runner
def deploy_backbone_after_loading(runner):
    """Switch the backbone to deploy mode once the checkpoint is loaded (mmengine loads it inside
    ``runner.test()``, before the test loop's ``before_test`` hooks)."""
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    backbone = getattr(model, 'backbone', None)
    if not hasattr(backbone, 'switch_to_deploy'):
        raise ToolError(f'--deploy: the backbone ({type(backbone).__name__}) has no switch_to_deploy(); '
                        'it applies to MobileMamba backbones')

    class DeployBackbone(Hook):
        def before_test(self, runner):
            backbone.switch_to_deploy()
            runner.logger.info('--deploy: backbone switched to deploy mode (BN folded, inference convolutions)')
    runner.register_hook(DeployBackbone(), priority='LOWEST')


def build_runner(cfg, launcher):
    """The config's Runner, after the process group (``--launcher``) and checkpoint loading are set up
    (mmengine reads checkpoints through the package's weights_only loader)."""
    setup_distributed(cfg, launcher)
    read_mmengine_checkpoints_strictly()
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
