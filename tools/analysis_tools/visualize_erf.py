#!/usr/bin/env python
"""Effective receptive field heat maps of backbone stages, side by side.

Options: ``--help``; the engine is :mod:`mmmobilemamba.apis.erf`.
"""
from mmmobilemamba.apis.erf import main

if __name__ == '__main__':
    main()
