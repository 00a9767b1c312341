"""GPU timing that measures the kernel, not the host: CUDA-graph replays over rotating inputs.

Eager `do_bench` on this VM is host-bound below ~100 us (Python + launch overhead exceeds the
kernel), and a weight that fits in L2 (50 MB on H100) is served from cache on repeats. So every
call is captured in a CUDA graph, round-robin over enough input sets to exceed L2 several times;
the graph is replayed by `triton.testing.do_bench` (median) and divided by its calls.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import torch
import triton

L2_FLUSH_BYTES = 3 * 50 * 2**20  # three times an H100's L2: rotated inputs never hit in cache
MAX_SETS = 24


def input_sets(bytes_per_set: int) -> int:
    """How many input copies to rotate through so repeats cannot be served from L2."""
    return max(1, min(MAX_SETS, math.ceil(L2_FLUSH_BYTES / max(bytes_per_set, 1))))


def capture(calls: list[Callable[[], object]]) -> tuple[torch.cuda.CUDAGraph, int]:
    """A CUDA graph of the calls in turn (at least 8), and how many calls it holds."""
    for call in calls:  # compile and allocate outside the capture
        call()
    torch.cuda.synchronize()
    per_graph = max(len(calls), 8)
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for call in calls:
            call()
    torch.cuda.current_stream().wait_stream(stream)
    with torch.cuda.graph(graph):
        for i in range(per_graph):
            calls[i % len(calls)]()
    return graph, per_graph


def replay_ms(graph: torch.cuda.CUDAGraph, per_graph: int, rep_ms: int = 40) -> float:
    """Median milliseconds of one call of a captured graph."""
    return triton.testing.do_bench(graph.replay, warmup=10, rep=rep_ms, return_mode="median") / per_graph


def graph_time_ms(calls: list[Callable[[], object]], rep_ms: int = 40) -> float:
    """Median milliseconds of one call, each call of `calls` (one per input set) in turn."""
    return replay_ms(*capture(calls), rep_ms)


def paired_graph_times_ms(
    calls_a: list[Callable[[], object]], calls_b: list[Callable[[], object]], rounds: int = 4, rep_ms: int = 20
) -> tuple[float, float]:
    """Times of two variants measured in alternation (a, b, a, b, ...), medians of the rounds.

    One measurement after the other lets the GPU's clocks drift between them (under sustained
    INT8 load an H100's clock moves by several percent within seconds); alternating short
    measurements gives both variants the same conditions, so their ratio is the kernels'.
    """
    a, b = alternating_graph_times_ms([calls_a, calls_b], rounds, rep_ms)
    return a, b


def alternating_graph_times_ms(
    variants: list[list[Callable[[], object]]], rounds: int = 4, rep_ms: int = 20, settle_s: float = 0.0
) -> list[float]:
    """`paired_graph_times_ms` for any number of variants: each captured once, then replayed in
    turn for `rounds` rounds; the median of each variant's rounds."""
    graphs = [capture(calls) for calls in variants]
    return alternating_ms([lambda graph=graph: replay_ms(*graph, rep_ms) for graph in graphs], rounds, settle_s)


def alternating_ms(measures: list[Callable[[], float]], rounds: int, settle_s: float = 0.0) -> list[float]:
    """Run each measurement in turn, `rounds` times over; the median of each one's results.

    The order rotates each round, so each variant takes every place in a round (first, last).
    `settle_s`: the GPU idles that long before each measurement, so none starts in the power
    state another left: in one H100 run (2026-11-26) the variant measured right after the bf16
    GEMMs (the asym layer) came out 8-10% slower than sym at M = 1024; paired without bf16 in
    the cycle, asym/sym was 1.01-1.04 in either order.
    """
    times: list[list[float]] = [[] for _ in measures]
    for r in range(rounds):
        for i in range(len(measures)):
            j = (i + r) % len(measures)
            if settle_s:
                torch.cuda.synchronize()
                time.sleep(settle_s)
            times[j].append(measures[j]())
    return [statistics.median(t) for t in times]


def host_us_per_call(
    call: Callable[[], object], n: int = 300, sync_each: bool = False, host_only: bool = False
) -> float:
    """Wall-clock microseconds per eager call (host overhead when the kernel is tiny): back to
    back, synchronized once at the end, or (`sync_each`) synchronized after every call, or
    (`host_only`) the Python loop alone, the clock read before the final synchronization."""
    for _ in range(10):
        call()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        call()
        if sync_each:
            torch.cuda.synchronize()
    if host_only:
        elapsed = time.perf_counter() - start
        torch.cuda.synchronize()
        return elapsed / n * 1e6
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / n * 1e6
