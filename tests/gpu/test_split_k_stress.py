"""GPU stress check: the split-K workspace under graphs, streams and eager calls interleaved at random.

Each step picks one of: an eager call (decode or prefill shape, shipped config or forced split-K),
a CUDA-graph capture (default capture stream or a side stream, several launches per graph), a
replay of any graph captured so far (after eager calls on ever larger grids, which once regrew a
shared workspace under the graphs), or two streams running at once. Every output is compared with
the exact integer result (unit scales, fp32 output, so the int32 accumulator is visible). At the
end every counter buffer must read zero, and split-K must have run under capture. Part of the GPU
suite (skipped without CUDA); `VLLM_INT8_STRESS_STEPS` sets the length (default 300).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random

import pytest
import torch

from vllm_int8.ops.mm_configs import MMConfig
from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm, record_launches
from vllm_int8.ops.split_k_workspace import all_counters

DECODE = [(1, 4096, 14336), (16, 4096, 14336), (4, 6144, 4096), (1, 28672, 4096), (8, 1000, 3000), (3, 576, 1536)]
PREFILL = [(256, 4096, 4096), (1024, 6144, 4096), (300, 960, 576)]
FORCED = [None, MMConfig(16, 64, 256, 1, 4, 4, split_k=4), MMConfig(16, 32, 128, 1, 4, 3, split_k=8),
          MMConfig(32, 64, 128, 1, 4, 3, split_k=2)]  # fmt: skip


@dataclasses.dataclass
class Problem:
    args: tuple
    exact: torch.Tensor  # float64 on the GPU
    config: MMConfig | None


def make_problem(rng: random.Random, decode: bool) -> Problem:
    m, n, k = rng.choice(DECODE if decode else PREFILL)
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda")
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda").t()
    azp = torch.randint(-128, 128, (m,), dtype=torch.int32, device="cuda")
    azp_adj = w.sum(0, dtype=torch.int32)
    ones = torch.ones(1, device="cuda")
    exact = a.double() @ w.double() - azp.double()[:, None] * azp_adj.double()[None, :]
    assert exact.abs().max() < 2**24  # fp32 holds it exactly
    config = rng.choice(FORCED) if decode else None
    return Problem((a, w, ones, ones, torch.float32, None, azp_adj, azp), exact, config)


def check(out: torch.Tensor, problem: Problem, what: str, stats: collections.Counter) -> None:
    if not torch.equal(out.double(), problem.exact):
        raise AssertionError(f"{what}: max error {(out.double() - problem.exact).abs().max().item()}")
    stats["checked"] += 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a GPU stress check: CUDA graphs and streams")
def test_split_k_workspace_under_graphs_streams_and_eager_calls():
    steps, seed = int(os.environ.get("VLLM_INT8_STRESS_STEPS", "300")), 0
    rng = random.Random(seed)
    torch.manual_seed(seed)
    side = torch.cuda.Stream()
    graphs: list[tuple[torch.cuda.CUDAGraph, list[torch.Tensor], list[Problem]]] = []
    stats: collections.Counter = collections.Counter()
    captured_split = collections.Counter()
    for step in range(steps):
        action = rng.choice(["eager", "eager", "capture", "replay", "replay", "two_streams"])
        if action == "eager":
            p = make_problem(rng, decode=rng.random() < 0.7)
            check(launch_scaled_mm(*p.args, config=p.config), p, f"step {step} eager", stats)
        elif action == "capture" and len(graphs) < 40:
            problems = [make_problem(rng, decode=rng.random() < 0.8) for _ in range(rng.randint(1, 4))]
            graph, outs = torch.cuda.CUDAGraph(), []
            stream = side if rng.random() < 0.5 else None  # None: torch's default capture stream
            with record_launches() as log, torch.cuda.graph(graph, stream=stream):
                for p in problems:
                    outs.append(launch_scaled_mm(*p.args, config=p.config))
            for m, n, k, cfg in log:
                captured_split[(m, n, k, cfg.split_k)] += 1
            graphs.append((graph, outs, problems))
            stats["captures"] += 1
        elif action == "replay" and graphs:
            graph, outs, problems = rng.choice(graphs)
            for out in outs:
                out.fill_(float("nan"))
            stream = side if rng.random() < 0.5 else torch.cuda.current_stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                graph.replay()
            torch.cuda.current_stream().wait_stream(stream)
            for out, p in zip(outs, problems):
                check(out, p, f"step {step} replay", stats)
            stats["replays"] += 1
        elif action == "two_streams":
            problems = [make_problem(rng, decode=True) for _ in range(2)]
            streams = [torch.cuda.Stream(), torch.cuda.Stream()]
            for s in streams:
                s.wait_stream(torch.cuda.current_stream())
            outs = [[], []]
            for _ in range(5):
                for i, s in enumerate(streams):
                    with torch.cuda.stream(s):
                        outs[i].append(launch_scaled_mm(*problems[i].args, config=problems[i].config))
            for s in streams:
                torch.cuda.current_stream().wait_stream(s)
            for i in range(2):
                for out in outs[i]:
                    check(out, problems[i], f"step {step} stream {i}", stats)
            stats["two_stream_rounds"] += 1
    torch.cuda.synchronize()
    dirty = sum(int(c.count_nonzero()) for c in all_counters())
    print("captured launches by (M, N, K, split_k):")
    for key, count in sorted(captured_split.items()):
        print(f"  M={key[0]:<5} N={key[1]:<6} K={key[2]:<6} split_k={key[3]}  x{count}")
    used = sum(c for key, c in captured_split.items() if key[3] > 1)
    print(f"split-K launches captured: {used} of {sum(captured_split.values())}")
    print(f"{dict(stats)}; nonzero counters after the run: {dirty}")
    assert dirty == 0, f"{dirty} split-K arrival counters left nonzero"
    assert used > 0, "no split-K launch was captured: the stress check tested nothing"
