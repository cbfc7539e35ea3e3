"""CPU inference latency, batch 1: PyTorch eager, PyTorch deploy mode and ONNX Runtime, side by side.

For each arch and square input size, four forms of one model (norms randomised, seeded) are timed
side by side in one run, in blocks that take turns (:func:`time_in_blocks`), so that a machine whose
speed drifts slows them alike:

* ``eager``: the model as built (``torch.inference_mode``);
* ``deploy``: after ``switch_to_deploy()`` (BatchNorm folded; plain convolutions on the CPU);
* ``ORT``: ONNX Runtime on the graph exported at that size (graph optimisations at level ALL);
* ``ORT dynamic``: the same on the graph exported with dynamic H and W.

PyTorch and ONNX Runtime use ``--threads`` intra-op threads (default: all cores). Each form runs
``--warmup`` times, then ``--iters`` timed runs; the table gives the median in milliseconds
(``--time``: this process's CPU time instead of wall time, for shared machines with 1 thread).

    python -m mmmobilemamba.apis.benchmark_cpu --archs S6 --sizes 224 512
"""
import argparse
import copy
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List

import torch

__all__ = ['add_arguments', 'run', 'main']

FORMS = ('eager', 'deploy', 'ORT', 'ORT dynamic')


def add_arguments(parser: argparse.ArgumentParser, prefix: str = '') -> argparse.ArgumentParser:
    """Add this benchmark's options to ``parser`` as ``--{prefix}archs`` etc. (``prefix='cpu-'`` keeps
    them apart from another tool's options); :func:`run` reads them as ``args.cpu_archs`` etc."""
    def option(name, **kwargs):
        parser.add_argument(f'--{prefix}{name}', dest=f'cpu_{name.replace("-", "_")}', **kwargs)

    option('archs', nargs='+', default=['S6'], type=str.upper, help='MobileMamba variants')
    option('sizes', nargs='+', type=int, default=[224, 512], help='square input sizes')
    option('threads', type=int, default=os.cpu_count(), help='intra-op threads (default: all cores)')
    option('warmup', type=int, default=3)
    option('iters', type=int, default=20)
    option('forms', nargs='+', default=list(FORMS), choices=FORMS)
    option('time', action='store_true',
           help='time with this process\'s CPU time instead of wall time: with 1 thread it is nearly '
                'independent of other load on a shared machine')
    return parser


def _ort_session(path: str, threads: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def _runners(arch: str, size: int, forms, threads: int, workdir: str) -> Dict[str, Callable[[], object]]:
    """One zero-argument callable per form, each running batch 1 at ``size`` x ``size``."""
    from mmmobilemamba.apis import onnx_export as ox

    target = ox.load_target(arch, randomize_seed=0)
    x = torch.randn(1, 3, size, size)
    runners = {}
    if 'eager' in forms:
        eager = target.reference.eval()
        runners['eager'] = lambda: eager(x)
    if 'deploy' in forms:
        deployed = copy.deepcopy(target.reference).switch_to_deploy().eval()
        runners['deploy'] = lambda: deployed(x)
    feed = {ox.INPUT_NAME: x.numpy()}
    for form, dynamic in (('ORT', False), ('ORT dynamic', True)):
        if form in forms:
            path = os.path.join(workdir, f'{arch}_{size}_{"dynamic" if dynamic else "fixed"}.onnx')
            ox.export_onnx(target, path, (size, size), dynamic=dynamic)
            session = _ort_session(path, threads)
            runners[form] = lambda session=session: session.run(None, feed)
    return runners


def time_in_blocks(runners: Dict[str, Callable], warmup: int, iters: int, blocks: int = 3,
                   pause_s: float = 0.5, clock: Callable[[], float] = time.perf_counter) -> Dict[str, float]:
    """Median milliseconds per call of each runner. The runners take turns in ``blocks`` rounds of
    about ``iters / blocks`` timed calls each, every block after a pause and one untimed call.

    Not call by call: after a call, PyTorch's OpenMP threads and ONNX Runtime's pool threads keep
    spinning for a while, and on a machine with few cores they take them from the next runtime
    (with 2 threads on 2 cores, interleaving call by call slowed ONNX Runtime's second session by
    25-55% and not at all with 1 thread). The pause lets them go idle.
    """
    times: Dict[str, List[float]] = {name: [] for name in runners}
    per_block = [iters // blocks + (b < iters % blocks) for b in range(blocks)]
    with torch.inference_mode():
        for fn in runners.values():
            for _ in range(warmup):
                fn()
        for count in filter(None, per_block):
            for name, fn in runners.items():
                time.sleep(pause_s)
                fn()
                for _ in range(count):
                    start = clock()
                    fn()
                    times[name].append((clock() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def run(args: argparse.Namespace) -> str:
    """Time every (arch, size) and return the markdown table (also printed)."""
    import mmmobilemamba  # noqa: F401  (registers the modules)
    import onnxruntime

    torch.set_num_threads(args.cpu_threads)
    forms = [f for f in FORMS if f in args.cpu_forms]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for arch in args.cpu_archs:
            for size in args.cpu_sizes:
                runners = _runners(arch, size, forms, args.cpu_threads, workdir)
                ms = time_in_blocks(runners, args.cpu_warmup, args.cpu_iters,
                                    clock=time.process_time if args.cpu_time else time.perf_counter)
                speedup = (f'{ms["eager"] / ms["deploy"]:.2f}x' if {'eager', 'deploy'} <= set(ms) else '-')
                rows.append([arch, f'{size}x{size}'] + [f'{ms[f]:.1f}' for f in forms] + [speedup])
                print(f'{arch} {size}x{size}: ' + ', '.join(f'{f} {ms[f]:.1f} ms' for f in forms), flush=True)
    header = ['model', 'input'] + [f'{f} ms' for f in forms] + ['eager / deploy']
    clock = 'process CPU time' if args.cpu_time else 'wall time'
    lines = [f'CPU latency, batch 1, {args.cpu_threads} threads, {clock}, median of {args.cpu_iters} '
             f'(torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} cores)', '',
             '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    table = '\n'.join(lines)
    print(table)
    return table


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    return run(add_arguments(parser).parse_args(argv))


if __name__ == '__main__':
    main()
