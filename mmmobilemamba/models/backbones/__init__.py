from .mobilemamba import MobileMamba

__all__ = ['MobileMamba']
