#!/usr/bin/env python
"""Speed benchmarks: classifier throughput, resolution scaling, scan kernels, det/seg configs.

Options: ``--help``; the engine is :mod:`mmmobilemamba.apis.benchmark`.
"""
from mmmobilemamba.apis.benchmark import main

if __name__ == '__main__':
    main()
