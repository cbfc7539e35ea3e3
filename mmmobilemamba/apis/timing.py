"""Timing, peak memory and markdown tables shared by the benchmark sections.

On CUDA every timer synchronises before it reads a clock; off CUDA the GPU-only figures are NaN
(printed as ``-``).
"""
import contextlib
import statistics
import time
from typing import Callable, Dict, List

import torch

__all__ = ['PRECISIONS', 'autocast', 'synchronize', 'reset_peak', 'allocated_mib', 'peak_mib', 'first_call_peak_mib',
           'median_event_ms', 'median_wall_ms', 'interleaved_wall_ms', 'time_behind_sleep', 'queued_gpu_ms',
           'profile_cuda', 'kernel_ms', 'fmt', 'table']

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}  # name -> autocast dtype

SM_CLOCK_HZ = 2.0e9  # for sizing the sleep kernel; a faster clock only makes the sleep shorter


def autocast(device: torch.device, precision: str, cache_enabled: bool = True):
    """``torch.autocast`` to the precision's dtype (``'fp32'``: no autocast). ``cache_enabled=False``
    for CUDA-graph capture, which the weight-cast cache does not mix with."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache_enabled)


def synchronize(device: torch.device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device):
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def allocated_mib(device: torch.device) -> float:
    return torch.cuda.memory_allocated(device) / 2 ** 20 if device.type == 'cuda' else float('nan')


def peak_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == 'cuda' else float('nan')


def first_call_peak_mib(fn: Callable, device: torch.device) -> float:
    """Peak MiB of one call of ``fn()`` from a reset counter. For the first step of a module replayed
    as CUDA graphs: that step captures the graph, whose private memory pool stays in use afterwards
    but is not counted as allocated, so a peak taken after warm-up would leave it out."""
    reset_peak(device)
    fn()
    synchronize(device)
    return peak_mib(device)


def _warm_up(fn: Callable, device: torch.device, warmup: int):
    """``warmup`` calls, then the peak-memory counter is reset (cuDNN's algorithm search stays out)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    reset_peak(device)


def median_event_ms(fn: Callable, device: torch.device, warmup: int, iters: int) -> float:
    """Median ms of ``iters`` back-to-back calls, each between two CUDA events (the host queues
    ahead, so a call's time is its GPU time unless the host falls behind); wall time off CUDA."""
    if device.type != 'cuda':
        return median_wall_ms(fn, device, warmup, iters)
    _warm_up(fn, device, warmup)
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(iters)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize(device)
    return statistics.median(s.elapsed_time(e) for s, e in events)


def median_wall_ms(fn: Callable, device: torch.device, warmup: int, iters: int) -> float:
    """Median wall-clock ms of ``fn()``, synchronised after each call, after ``warmup`` calls."""
    _warm_up(fn, device, warmup)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def interleaved_wall_ms(fns: Dict[str, Callable], device: torch.device, iters: int) -> Dict[str, float]:
    """Median wall-clock ms of each ``fns[name]()`` over ``iters`` rounds, each round calling every
    function once (synchronised after each call; the order rotates from round to round), so that a
    drift in the machine's speed (clocks, neighbours) reaches every function alike. No warm-up."""
    names = list(fns)
    times = {name: [] for name in names}
    for round_index in range(iters):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def time_behind_sleep(fn: Callable, device: torch.device, iters: int, cycles: int) -> float:
    """CUDA-event ms per ``fn()`` of ``iters`` calls queued behind a sleep kernel of ``cycles``
    clock cycles (long enough that the host never waits for the GPU while queueing)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(cycles)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize(device)
    return start.elapsed_time(end) / iters


def queued_gpu_ms(fn: Callable, device: torch.device, iters: int, host_ms: float, repeats: int = 1) -> float:
    """GPU ms per ``fn()`` without host gaps or launch overhead: the calls are queued behind a sleep
    kernel that outlasts the queueing (``host_ms``: a call's wall time, an upper bound of its host
    time), then CUDA events time the queued work; median of ``repeats``. NaN off CUDA. Calls that
    synchronise the host (``.item()``) end the queue early and make this closer to the wall time, and
    so does CUDA's launch queue, which holds about a thousand launches: for calls of many kernels
    (a training step) use :func:`kernel_ms`."""
    if device.type != 'cuda':
        return float('nan')
    cycles = int(max(1e6, 1.5 * iters * host_ms * 1e-3 * SM_CLOCK_HZ))
    return statistics.median(time_behind_sleep(fn, device, iters, cycles) for _ in range(repeats))


def profile_cuda(fn: Callable, device: torch.device, steps: int = 3):
    """torch.profiler's per-kernel averages (CUDA activity only) of ``steps`` calls of ``fn()``,
    after one unprofiled call."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    synchronize(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        synchronize(device)
    return prof.key_averages()


def kernel_ms(fn: Callable, device: torch.device, steps: int = 3) -> float:
    """GPU ms per ``fn()``: the summed durations of the kernels and copies it runs (torch.profiler,
    i.e. CUPTI), over ``steps`` calls after one unprofiled call. Host launch gaps do not count, however
    many kernels a call launches; kernels replayed from a CUDA graph count like launched ones. NaN
    off CUDA."""
    if device.type != 'cuda':
        return float('nan')
    device_events = [e for e in profile_cuda(fn, device, steps) if e.device_type == torch.autograd.DeviceType.CUDA]
    return sum(e.self_device_time_total for e in device_events) / 1e3 / steps


def fmt(value) -> str:
    """A table cell: NaN as ``-``, floats to 3 significant digits (1 decimal from 10, none from 1000)."""
    if isinstance(value, float):
        if value != value:
            return '-'
        return f'{value:.3g}' if abs(value) < 10 else f'{value:,.0f}' if abs(value) >= 1000 else f'{value:.1f}'
    return str(value)


def table(title: str, header: List[str], rows: List[list]) -> str:
    """A markdown table under ``### title``, printed and returned."""
    lines = [f'### {title}', '', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in rows]
    text = '\n'.join(lines) + '\n'
    print(text, flush=True)
    return text
