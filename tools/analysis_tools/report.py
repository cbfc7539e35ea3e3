#!/usr/bin/env python
"""One markdown report: params, FLOPs, metrics of runs, published results, training curves.

Options: ``--help``; the engine is :mod:`mmmobilemamba.apis.report`.
"""
from mmmobilemamba.apis.report import main

if __name__ == '__main__':
    main()
