"""Importing this package registers every backbone and neck (see ``mmmobilemamba.registry``)."""
from . import backbones, necks  # noqa: F401
