"""Eager host cost of one int8 linear against bf16 `F.linear`, at every batch size, replays on and off.

For each M: `Int8Linear(4096 -> 4096)` (dynamic asym) called back to back (µs per call over n
calls, synchronized once at the end) and synchronized after every call, with launch replays
(`VLLM_INT8_FAST_LAUNCH`) on and off, against bf16 `F.linear` on the same shapes; and the
layer's CUDA-graph time, so that eager / graph says whether an eager call is host-bound; the
public ops (quant, then scaled_mm) the same way. The floors: the plan's two launches alone on
fixed buffers plus one output allocation (the layer) or four (the ops' fresh q, scale, zero point
and output), over bf16's time. Every figure is measured in alternation (rounds, median).

    python -m benchmarks.benchmark_host [--m 1,16,64,256,1024,4096] [--calls 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics

import torch
import torch.nn.functional as F

from benchmarks.gpu_timing import graph_time_ms, host_us_per_call
from benchmarks.results_summary import merge_summary
from vllm_int8 import ops
from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig
from vllm_int8.ops import triton_compat


def with_replays(on: bool, fn):
    def run():
        os.environ[triton_compat.FAST_LAUNCH_ENV] = "1" if on else "0"
        try:
            return fn()
        finally:
            os.environ.pop(triton_compat.FAST_LAUNCH_ENV, None)

    return run


def measure(layer, w16, m: int, k: int, calls: int, rounds: int) -> dict:
    """One batch size's row: every figure the median of `rounds` alternated rounds."""
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    bound = layer.kernel._bound
    w, ws, adj = bound.weight, bound.scale_b, bound.azp_adj
    n = w.shape[1]

    def public_ops():  # what a direct user of the ops writes
        q, s, z = ops.scaled_int8_quant(x, None, None, False)
        return ops.scaled_mm(q, w, s, ws, torch.bfloat16, None, adj, z)

    layer(x)
    launches = launches_alone(bound, x)
    measures = {
        "int8": with_replays(True, lambda: host_us_per_call(lambda: layer(x), calls)),
        "int8_no_replay": with_replays(False, lambda: host_us_per_call(lambda: layer(x), calls)),
        "bf16": lambda: host_us_per_call(lambda: F.linear(x, w16), calls),
        "int8_sync": with_replays(True, lambda: host_us_per_call(lambda: layer(x), calls, sync_each=True)),
        "bf16_sync": lambda: host_us_per_call(lambda: F.linear(x, w16), calls, sync_each=True),
        "ops": lambda: host_us_per_call(public_ops, calls),
        "launches_alone": lambda: host_us_per_call(launches, calls),
        "empty": lambda: host_us_per_call(  # the plans' own allocation (the cheapest measured)
            lambda: torch.empty_strided((m, n), (n, 1), dtype=torch.bfloat16, device=x.device), calls
        ),  # fmt: skip
    }
    samples = {name: [] for name in measures}
    for r in range(rounds):
        names = list(measures)
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order each round
            samples[name].append(measures[name]())
    med = {name: statistics.median(v) for name, v in samples.items()}
    graph_us = graph_time_ms([lambda: layer(x)]) * 1e3
    return {"m": m, **{f"{name}_us": round(v, 2) for name, v in med.items()}, "graph_us": round(graph_us, 2),
            "host_ratio_vs_bf16": round(med["int8"] / med["bf16"], 3),
            "ops_host_ratio_vs_bf16": round(med["ops"] / med["bf16"], 3),
            "floor_ratio_vs_bf16": round((med["launches_alone"] + med["empty"]) / med["bf16"], 3),
            # The public ops return four fresh tensors (q, scale, azp; the output): four allocations.
            "ops_floor_ratio_vs_bf16": round((med["launches_alone"] + 4 * med["empty"]) / med["bf16"], 3),
            "eager_over_graph": round(med["int8"] / graph_us, 3)}  # fmt: skip


def launches_alone(bound, x):
    """The plan's kernel launches alone, with fixed addresses: Triton's launcher and the driver,
    the floor under any Python a replay adds (an output allocation comes on top)."""
    from vllm_int8.ops.split_k_workspace import tensor_stream

    plan = next(reversed(bound._plans.values()))
    gemm, device = plan.gemm, x.device
    keep = [torch.empty((x.shape[0], bound.weight.shape[1]), dtype=x.dtype, device=device)]  # alive while timed
    stream, out = tensor_stream(x), keep[0].data_ptr()
    ws = counters = None
    if gemm.split_k > 1:
        keep += [torch.empty(gemm.workspace_bytes, dtype=torch.int8, device=device),
                 torch.zeros(gemm.tiles, dtype=torch.int32, device=device)]  # fmt: skip
        ws, counters = keep[1].data_ptr(), keep[2].data_ptr()
    if not hasattr(plan, "quant"):
        return lambda keep=keep: gemm.replay.addresses(stream, x.data_ptr(), out, ws, counters)
    keep.append(torch.empty(plan.nbytes, dtype=torch.int8, device=device))
    base = keep[-1].data_ptr()
    scale, azp = base + plan.scale_at, base + plan.azp_at
    if plan.tma:  # the quant launch only: TMA descriptors are built per call
        return lambda keep=keep: plan.quant.addresses(stream, x.data_ptr(), base, scale, azp)

    def two(keep=keep):
        plan.quant.addresses(stream, x.data_ptr(), base, scale, azp)
        gemm.replay.addresses(stream, base, out, ws, counters, scale, azp)

    return two


def summary_figures(rows: list[dict]) -> dict:
    """The figures `summary.json` carries, per M: host time over bf16's for the layer, for the
    public ops and for the launch floor, and eager time over CUDA-graph time."""
    keys = {
        "host_ratio_vs_bf16": "host_ratio_vs_bf16",
        "host_ops_ratio_vs_bf16": "ops_host_ratio_vs_bf16",
        "host_launch_floor_ratio_vs_bf16": "floor_ratio_vs_bf16",
        "host_ops_floor_ratio_vs_bf16": "ops_floor_ratio_vs_bf16",
        "host_eager_over_graph": "eager_over_graph",
    }
    figures = {name: {str(r["m"]): round(r[key], 2) for r in rows} for name, key in keys.items()}
    return figures | {"host_date": datetime.date.today().isoformat()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--m", default="1,16,64,256,1024,4096")
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--k", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    n, k = args.n, args.k
    layer = Int8Linear(k, n, Int8ScaledMMLinearLayerConfig(False, True, False), device="cuda")
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-128, 128, (n, k), dtype=torch.int8))
        layer.weight_scale.copy_(torch.rand(n, 1) * 1e-3 + 1e-4)
    layer.process_weights_after_loading()
    w16 = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    rows = []
    print(f"{n}x{k}, dynamic asym, bf16 activations; µs per call (median of {args.rounds} alternated rounds)")
    print(f"{'M':>5} {'int8 b2b':>9} {'no replay':>9} {'bf16 b2b':>9} {'ratio':>6} | {'ops b2b':>8} {'ratio':>6} "
          f"{'floor':>6} | {'launches':>8} {'empty':>6} {'floor':>6} | {'int8 sync':>9} {'bf16 sync':>9} | "
          f"{'graph':>7} {'eager/graph':>11}")  # fmt: skip
    for m in map(int, args.m.split(",")):
        row = measure(layer, w16, m, k, max(20, min(args.calls, int(args.calls * 64 / max(m, 64)))), args.rounds)
        rows.append(row)
        print(f"{m:>5} {row['int8_us']:9.1f} {row['int8_no_replay_us']:9.1f} {row['bf16_us']:9.1f} "
              f"{row['host_ratio_vs_bf16']:6.2f} | {row['ops_us']:8.1f} {row['ops_host_ratio_vs_bf16']:6.2f} "
              f"{row['ops_floor_ratio_vs_bf16']:6.2f} | "
              f"{row['launches_alone_us']:8.1f} {row['empty_us']:6.1f} {row['floor_ratio_vs_bf16']:6.2f} | "
              f"{row['int8_sync_us']:9.1f} {row['bf16_sync_us']:9.1f} | {row['graph_us']:7.1f} "
              f"{row['eager_over_graph']:11.2f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "n": n, "k": k, "rows": rows}, f, indent=1)
    if (n, k) == (4096, 4096):
        merge_summary(torch.cuda.get_device_name(), summary_figures(rows))


if __name__ == "__main__":
    main()
