"""Workarounds for upstream behaviour, each version-guarded and naming what it works around."""
import os.path as osp

import mmengine
from mmengine.utils import digit_version

__all__ = ['read_mmengine_checkpoints_strictly']


# ----------------------------------------------------------------------------- mmengine checkpoints
def read_mmengine_checkpoints_strictly():
    """Route mmengine's checkpoint loading (``load_from``, ``--resume``, ``Pretrained`` init of other
    modules) through :func:`mmmobilemamba.utils.checkpoint.read_checkpoint`.

    Works around: mmengine < 1.0 (checked on 0.10.7) reads local and http(s) checkpoints with a
    bare ``torch.load(filename)``. Before torch 2.6 that unpickles anything the file names; since 2.6
    it refuses with torch's advice to pass ``weights_only=False``. Through ``read_checkpoint`` every
    torch version reads with ``weights_only=True``, and a refusal names the offending global and the
    per-file opt-in (``--trust-checkpoint FILE``). Called by the tools before the Runner is built.
    """
    if digit_version(mmengine.__version__) >= digit_version('1.0.0'):
        return
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import read_checkpoint

    @CheckpointLoader.register_scheme(prefixes=('', 'http://', 'https://'), force=True)
    def load_strictly(filename, map_location=None):
        if '://' not in filename:
            filename = osp.expanduser(filename)
            if not osp.isfile(filename):
                raise FileNotFoundError(f'{filename} can not be found.')
        return read_checkpoint(filename, map_location)
