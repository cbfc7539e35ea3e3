"""Reading official / converted MobileMamba checkpoints safely and loading them strictly.

Accepted layouts: the release's ImageNet files (``{'model': state_dict, ...}``), mmengine
checkpoints (``{'state_dict': ...}``), a bare state_dict; keys may carry ``module.`` (DDP) or a
``backbone.`` prefix (a detector/segmentor checkpoint). Classifier heads (``head.*``,
``head_dist.*``) are dropped with a one-line note. Anything else that does not match the
model is an error listing the differences: no partial, silent load.

Safety: a ``.pth`` file is a pickle, and unpickling can run any code the file names. Every file is
read with ``torch.load(weights_only=True)``: tensors, containers and primitives, plus the few
non-tensor objects that real checkpoints hold, allow-listed here and registered on
``import mmmobilemamba`` (so mmengine's own loader, which follows torch's default, reads
``--resume`` / ``load_from`` files too). A file naming any other global is refused with
:class:`CheckpointNotTrustedError`, which names the global. The one opt-in for a file you trust
is to name it: :func:`trust_checkpoint` (``--trust-checkpoint FILE`` on the tools,
``trusted=True`` in a backbone's ``init_cfg``); only that file is then unpickled in full.
"""
import argparse
import hashlib
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Dict, Optional
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.utils import digit_version
from torch import nn

__all__ = ['CheckpointError', 'CheckpointMismatchError', 'CheckpointNotTrustedError', 'CheckpointReadError',
           'register_safe_globals', 'trust_checkpoint', 'file_sha256', 'download_checkpoint', 'read_checkpoint',
           'extract_state_dict', 'check_state_dict', 'load_pretrained']

HEAD_PREFIXES = ('head.', 'head_dist.')
_LISTED = 10
TRUST_HINT = ('--trust-checkpoint {path} (tools/train.py, test.py, convert_checkpoint.py, visualize_erf.py); '
              "in a config, the backbone's init_cfg=dict(type='Pretrained', checkpoint=..., trusted=True); "
              'in Python, mmmobilemamba.utils.checkpoint.trust_checkpoint(path)')


class CheckpointError(Exception):
    """A checkpoint that cannot be used as it is; the message says why and what to do."""


class CheckpointMismatchError(CheckpointError, KeyError):
    """The checkpoint's keys or shapes differ from the model's."""

    def __str__(self):  # KeyError would print the message with quotes
        return str(self.args[0])


class CheckpointNotTrustedError(CheckpointError, pickle.UnpicklingError):
    """The file names globals outside the allow-list and was not named as trusted."""


class CheckpointReadError(CheckpointError, RuntimeError):
    """The file is missing, truncated or not a PyTorch checkpoint."""


# ----------------------------------------------------------------------------- allow-list
def _history_buffer_method(owner, name):
    """Stands in for ``builtins.getattr`` while unpickling: mmengine's message hub pickles the
    statistics methods of ``HistoryBuffer`` (``min``, ``max``, ``mean``, ``current``) as
    ``getattr(HistoryBuffer, name)``. Nothing else may be looked up."""
    if owner is HistoryBuffer and name in ('min', 'max', 'mean', 'current'):
        return getattr(owner, name)
    raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not allowed in a checkpoint')


def _numpy_globals() -> list:
    """numpy arrays, scalars and dtypes (the message hub's histories, ``eta``), under numpy 1's
    (``numpy.core``) and numpy 2's (``numpy._core``) module names, so a file written with either
    reads with either."""
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    named = [(fn, f'{module}.multiarray.{fn.__name__}')
             for fn in (reconstruct, scalar) for module in ('numpy.core', 'numpy._core')]
    codes = np.typecodes['AllInteger'] + np.typecodes['AllFloat'] + '?'
    dtype_classes = sorted({type(np.dtype(code)) for code in codes} - {np.dtype}, key=str)
    return named + [np.ndarray, np.dtype] + dtype_classes


def _allowed_globals() -> list:
    """What real checkpoints hold besides tensors and containers (found by ``torch.serialization.
    get_unsafe_globals_in_checkpoint`` on mmengine 0.10 det/seg training checkpoints): mmengine's
    ``HistoryBuffer`` (with its methods, see :func:`_history_buffer_method`), numpy arrays / scalars
    / dtypes, and ``argparse.Namespace`` (training arguments saved beside ``'model'``)."""
    return [HistoryBuffer, (_history_buffer_method, 'builtins.getattr'), argparse.Namespace] + _numpy_globals()


_OLD_TORCH_NOTE = ('' if digit_version(torch.__version__) >= digit_version('2.6.0') else
                   f'. With torch {torch.__version__} the allow-list is not registered (it needs torch >= 2.6), '
                   'so mmengine training checkpoints are refused too: upgrade torch')


def register_safe_globals() -> bool:
    """Add :func:`_allowed_globals` to torch's ``weights_only`` allow-list (done on import).

    Needs torch >= 2.6 (named entries in ``add_safe_globals``); on older versions nothing is added
    and such checkpoints are refused (with the opt-in named). Returns whether it registered.
    """
    if digit_version(torch.__version__) < digit_version('2.6.0'):
        return False
    torch.serialization.add_safe_globals(_allowed_globals())
    return True


# ----------------------------------------------------------------------------- trusted files
_TRUSTED_FILES = set()  # real paths named by the user as trusted


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def trust_checkpoint(path: str):
    """Name ``path`` as a file you trust: if it holds objects outside the allow-list it is
    unpickled in full (its code runs). Only for files you made or whose SHA-256 you checked."""
    _TRUSTED_FILES.add(os.path.realpath(os.path.expanduser(path)))


# what torch's weights_only unpickler says when a file names something outside the allow-list
# (as opposed to a damaged file, which it reports in the same exception type)
_REFUSAL = re.compile(r'GLOBAL|unrecognized function|Can only build|unsupported class|not allowed')


def _unpickler_reason(message: str) -> str:
    """The unpickler's own words in torch's weights_only error (without torch's advice around them)."""
    paragraphs = [p.strip() for p in message.split('\n\n')[1:]]
    reason = ' '.join(p for p in paragraphs if p and not p.startswith('Check the documentation')) or message
    return reason.split('WeightsUnpickler error:')[-1].strip()


def _refused_objects(path: str, reason: str) -> str:
    """The globals outside the allow-list that ``path`` names, else the unpickler's reason."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # torch < 2.5, or a file it cannot parse
        names = re.findall(r'GLOBAL ([\w.]+)', reason)[:1]
    return ', '.join(names) if names else f'an object it may not ({reason})'


def _load_local(path: str, map_location, trusted: bool):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickler_reason(str(err))
        if not _REFUSAL.search(reason):
            raise
        if not (trusted or os.path.realpath(path) in _TRUSTED_FILES):
            raise CheckpointNotTrustedError(
                f'checkpoint {path!r} was not loaded: besides weights it names '
                f'{_refused_objects(path, reason)}, and unpickling that can run code from the file. '
                f'Checkpoints are read with torch.load(weights_only=True) and the objects that MobileMamba '
                f'release and mmengine checkpoints hold (README, "Pretrained weights"). If you trust this '
                f'file (you made it, or its SHA-256 {file_sha256(path)} matches the publisher\'s), name it as '
                f'trusted: ' + TRUST_HINT.format(path=path) + _OLD_TORCH_NOTE) from None
    print_log(f'checkpoint {path} (SHA-256 {file_sha256(path)}) is named as trusted: unpickling it in full',
              logger='current', level=30)
    return torch.load(path, map_location=map_location, weights_only=False)


def download_checkpoint(url: str) -> str:
    """The file behind ``url`` in torch's hub cache (downloaded once)."""
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(urlparse(url).path))
    if not os.path.isfile(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(url, cached)
    return cached


def read_checkpoint(path: str, map_location='cpu', trusted: bool = False) -> dict:
    """Load a checkpoint file or URL with ``weights_only=True`` (see the module doc); clear errors
    for missing, truncated, foreign and untrusted files. ``trusted``: as :func:`trust_checkpoint`."""
    if '://' in str(path):
        path = download_checkpoint(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'checkpoint {path!r} does not exist. Download the official MobileMamba ImageNet weights '
            f'(see README, "Pretrained weights") to that path, or build without them '
            f'(backbone init_cfg=None).')
    try:
        return _load_local(path, map_location, trusted)
    except CheckpointNotTrustedError:
        raise
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointReadError(f'checkpoint {path!r} could not be read ({type(err).__name__}: {err}). '
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
        hint = f' The model is MobileMamba with embed_dims {arch["embed_dims"]};' if isinstance(arch, dict) else ''
        message = (f'{source} does not match the model.{hint} Is it a checkpoint of another variant '
                   f'or another network?')
        if missing:
            message += _listing('missing in checkpoint', missing)
        if unexpected:
            message += _listing('unexpected in checkpoint', unexpected)
        if shapes:
            message += _listing('shape mismatch', shapes)
        raise CheckpointMismatchError(message)


def load_pretrained(model: nn.Module, path: str, prefix: Optional[str] = None,
                    trusted: bool = False) -> nn.Module:
    """Load ``path`` into ``model`` strictly (heads ignored); see the module doc."""
    state = extract_state_dict(read_checkpoint(path, trusted=trusted), prefix)
    check_state_dict(model, state, source=f'checkpoint {path!r}')
    model.load_state_dict(state, strict=True)
    print_log(f'MobileMamba: loaded {len(state)} tensors from {path}', logger='current')
    return model
