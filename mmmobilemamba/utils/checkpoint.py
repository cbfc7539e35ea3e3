"""Reading official / converted MobileMamba checkpoints and loading them strictly.

Accepted layouts: the release's ImageNet files (``{'model': state_dict, ...}``), mmengine
checkpoints (``{'state_dict': ...}``), a bare state_dict; keys may carry ``module.`` (DDP) or a
``backbone.`` prefix (a detector/segmentor checkpoint). Classifier heads (``head.*``,
``head_dist.*``) are dropped with a one-line note. Anything else that does not match the
model is an error listing the differences: no partial, silent load.
"""
import os
import pickle
import zipfile
from collections import OrderedDict
from typing import Dict, Optional

import torch
from mmengine.logging import print_log
from torch import nn

__all__ = ['CheckpointMismatchError', 'read_checkpoint', 'extract_state_dict', 'check_state_dict',
           'load_pretrained']

HEAD_PREFIXES = ('head.', 'head_dist.')
_LISTED = 10


class CheckpointMismatchError(KeyError):
    """The checkpoint's keys or shapes differ from the model's."""

    def __str__(self):  # KeyError would print the message with quotes
        return str(self.args[0])


def read_checkpoint(path: str, map_location='cpu') -> dict:
    """Load a checkpoint file or URL; clear errors for missing, truncated or foreign files."""
    is_url = '://' in str(path)
    if not is_url and not os.path.isfile(path):
        raise FileNotFoundError(
            f'checkpoint {path!r} does not exist. Download the official MobileMamba ImageNet weights '
            f'(see README, "Pretrained weights") to that path, or build without them '
            f'(backbone init_cfg=None).')
    try:
        if is_url:
            from mmengine.runner.checkpoint import CheckpointLoader
            return CheckpointLoader.load_checkpoint(path, map_location=map_location)
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            if 'weights_only' not in str(err):
                raise
            # Release checkpoints also pickle training arguments; they are trusted files here.
            return torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise RuntimeError(f'checkpoint {path!r} could not be read ({type(err).__name__}: {err}). '
                           f'The file is truncated or not a PyTorch checkpoint; download it again.') from err


def extract_state_dict(checkpoint: dict, prefix: Optional[str] = None) -> 'OrderedDict[str, torch.Tensor]':
    """The backbone state_dict inside ``checkpoint``.

    Unwraps ``model``/``state_dict``/``model_ema`` containers, strips ``module.``, keeps only
    keys under ``prefix`` (e.g. ``'backbone.'``; detected automatically when every backbone
    key carries it) and drops classifier heads.
    """
    for key in ('state_dict', 'model', 'model_ema'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise CheckpointMismatchError('checkpoint holds no state_dict (expected a dict of tensors, '
                                      "or one under 'model' / 'state_dict')")
    state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in checkpoint.items())
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if prefix:
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
    heads = [k for k in state if k.startswith(HEAD_PREFIXES)]
    if heads:
        print_log(f'MobileMamba checkpoint: ignoring {len(heads)} classifier-head tensors '
                  f'({", ".join(sorted({k.split(".")[0] for k in heads}))}).', logger='current')
        for k in heads:
            del state[k]
    return state


def _listing(title: str, items) -> str:
    items = sorted(items)
    more = f' ... and {len(items) - _LISTED} more' if len(items) > _LISTED else ''
    return f'\n  {title} ({len(items)}): ' + ', '.join(items[:_LISTED]) + more


def check_state_dict(model: nn.Module, state: Dict[str, torch.Tensor], source: str = 'checkpoint'):
    """Raise :class:`CheckpointMismatchError` listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    shapes = [f'{k} {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
              for k in set(state) & set(expected) if state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        arch = getattr(model, 'arch', None)
        hint = f' The model is MobileMamba with embed_dims {arch["embed_dims"]};' if arch else ''
        message = (f'{source} does not match the model.{hint} Is it a checkpoint of another variant '
                   f'or another network?')
        if missing:
            message += _listing('missing in checkpoint', missing)
        if unexpected:
            message += _listing('unexpected in checkpoint', unexpected)
        if shapes:
            message += _listing('shape mismatch', shapes)
        raise CheckpointMismatchError(message)


def load_pretrained(model: nn.Module, path: str, prefix: Optional[str] = None) -> nn.Module:
    """Load ``path`` into ``model`` strictly (heads ignored); see the module doc."""
    state = extract_state_dict(read_checkpoint(path), prefix)
    check_state_dict(model, state, source=f'checkpoint {path!r}')
    model.load_state_dict(state, strict=True)
    print_log(f'MobileMamba: loaded {len(state)} tensors from {path}', logger='current')
    return model
