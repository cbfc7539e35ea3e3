"""Config, scope and task resolution shared by every tool, and the one input-size rule.

* :func:`load_config`   -- a config file, or ``mmdet::path`` / ``mmseg::path`` from the installed
  package (``mmengine.hub.get_config``); a missing file names the nearest configs of this repo;
* :func:`detect_task`   -- ``'det'`` or ``'seg'``;
* :func:`register_modules` -- registers mmdet's or mmseg's modules and makes it the default scope;
* :func:`build_model`   -- the config's model (detector / segmentor) in its scope, without weights;
* :func:`input_shape`   -- the (H, W) input that FLOPs counting and speed benchmarks both use.
"""
import difflib
import glob
import math
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository

DET_SHAPE = (800, 1280)   # (H, W): mmdet's usual 1280x800, as the paper counts detectors
SEG_SHAPE = (512, 512)


class ToolError(SystemExit):
    """Exit with a message (no traceback): something the user has to fix."""

    def __init__(self, message):
        super().__init__('error: ' + message)


def load_config(path, cfg_options: Optional[dict] = None):
    """The mmengine ``Config`` of ``path`` (a ``Config`` is passed through), ``cfg_options`` merged."""
    from mmengine.config import Config
    if isinstance(path, Config):
        cfg = path
    elif '::' in str(path):
        from mmengine.hub import get_config
        cfg = get_config(path)
    elif osp.isfile(path):
        cfg = Config.fromfile(path)
    else:
        known = sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*.py')))
        rel = [osp.relpath(p) for p in known]
        close = difflib.get_close_matches(osp.basename(path), [osp.basename(p) for p in known], n=3, cutoff=0.5)
        hint = ''
        if close:
            hint = '\n  did you mean: ' + ', '.join(r for r in rel if osp.basename(r) in close)
        configs = osp.relpath(osp.join(ROOT, 'configs'))
        raise ToolError(f'config file {path!r} not found (working directory: {os.getcwd()}).{hint}\n'
                        f'  configs of this repository: {configs}/det/*.py, {configs}/seg/*.py')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def detect_task(cfg) -> str:
    """'det' (mmdet) or 'seg' (mmseg): from ``default_scope``, else the model type."""
    scope = cfg.get('default_scope')
    if scope in ('mmdet', 'mmseg'):
        return scope[2:]
    model_type = str(cfg.get('model', {}).get('type', ''))
    if model_type in ('EncoderDecoder', 'CascadeEncoderDecoder', 'SegTTAModel'):
        return 'seg'
    if model_type:
        return 'det'
    raise ToolError('cannot tell whether the config is for mmdet or mmseg: set '
                    "default_scope = 'mmdet' or 'mmseg' in it")


def register_modules(task: str):
    """Register mmdet's or mmseg's modules (and this package's) and make it the default scope."""
    if task == 'det':
        from mmdet.utils import register_all_modules
    elif task == 'seg':
        from mmseg.utils import register_all_modules
    else:
        raise ValueError(f'task must be det or seg, not {task!r}')
    register_all_modules(init_default_scope=True)
    import mmmobilemamba  # noqa: F401  (MobileMamba for configs that name it without custom_imports)


def build_model(cfg, model_cfg=None):
    """Build ``model_cfg`` (default: the config's model) in the config's scope; ``pretrained`` keys
    are dropped (no weights are read)."""
    from mmengine.registry import MODELS
    register_modules(detect_task(cfg))
    model_cfg = dict(cfg.model if model_cfg is None else model_cfg)
    model_cfg.pop('pretrained', None)
    return MODELS.build(model_cfg)


def input_shape(cfg, shape: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """The (H, W) input of one image for FLOPs and speed: ``shape`` if given, else SSD-style configs
    their ``input_size``, segmentors their ``crop_size`` (else 512x512), detectors 1280x800; padded
    up to a multiple of the data preprocessor's ``pad_size_divisor``, as the pipeline does."""
    if shape:
        h, w = shape
    elif cfg.get('input_size'):
        size = cfg['input_size']
        h, w = (size, size) if isinstance(size, int) else tuple(size)
    elif cfg.get('default_scope') == 'mmseg':
        h, w = tuple(cfg.get('crop_size') or SEG_SHAPE)
    else:
        h, w = DET_SHAPE
    divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1
    return math.ceil(h / divisor) * divisor, math.ceil(w / divisor) * divisor
