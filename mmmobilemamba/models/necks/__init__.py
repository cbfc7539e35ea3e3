"""Necks: the ResNet-like pyramid adapter and the release's detection FPN."""
from .adapter import MobileMambaAdapter
from .mobilemamba_fpn import MobileMambaFPN

__all__ = ['MobileMambaAdapter', 'MobileMambaFPN']
