"""Where an eager Int8Linear call spends its time, per batch size: host time of each layer of the
call, back-to-back time (the larger of host and GPU), and GPU time (CUDA graph), then cProfile.

"host" times `n` calls without synchronizing (launches are asynchronous and the queue does not
fill at these counts), so it is the Python and launcher cost alone; "b2b" synchronizes once at
the end, so it is what an eager caller sees; "graph" is the GPU's own time.

    python -m benchmarks.profile_host [--m 1,16,64,256] [--n 4096] [--k 4096] [--calls 200]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats

import torch
import torch.nn.functional as F

from benchmarks.gpu_timing import graph_time_ms, host_us_per_call
from vllm_int8 import ops
from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig
from vllm_int8.ops import op_plans, triton_compat
from vllm_int8.ops import scaled_mm_kernel as mm
from vllm_int8.ops.split_k_workspace import tensor_stream


def public_ops(x, w, ws, adj) -> torch.Tensor:
    """What a direct user of the ops writes."""
    q, s, z = ops.scaled_int8_quant(x, None, None, False)
    return ops.scaled_mm(q, w, s, ws, torch.bfloat16, None, adj, z)


def rows_for(layer, w16, m: int, k: int, calls: int) -> dict:
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    bound = layer.kernel._bound
    layer(x)
    layer(x)
    plan = next(reversed(bound._plans.values()))
    stream = tensor_stream(x)
    n = bound.weight.shape[1]
    kernel = layer.kernel
    rows = {
        "F.linear bf16": lambda: F.linear(x, w16),
        "Int8Linear(x)": lambda: layer(x),
        "kernel.apply_weights(layer, x)": lambda: kernel.apply_weights(layer, x, None),
        "bound.replay(x) (key, gate, plan)": lambda: bound.replay(x, x.dtype, None),
        "plan.run(x) (launches, output, scratch)": lambda: plan.run(x, stream),
        "torch.empty (the output)": lambda: torch.empty((m, n), dtype=x.dtype, device=x.device),
        "torch.empty, device index": lambda: torch.empty((m, n), dtype=x.dtype, device=0),
        "x.new_empty": lambda: x.new_empty((m, n)),
        "replay_stream(x) (the per-call gate)": lambda: triton_compat.replay_stream(x),
    }
    w, ws, adj = bound.weight, bound.scale_b, bound.azp_adj
    q, sa, za = ops.scaled_int8_quant(x, None, None, False)
    rows["ops.scaled_int8_quant (dynamic asym)"] = lambda: ops.scaled_int8_quant(x, None, None, False)
    rows["ops.scaled_mm"] = lambda: ops.scaled_mm(q, w, sa, ws, torch.bfloat16, None, adj, za)
    rows["ops pair (quant, then scaled_mm)"] = lambda: public_ops(x, w, ws, adj)
    mm_args, quant_args = (q, w, sa, ws, torch.bfloat16, None, adj, za), (x, None, None, False)
    rows["op_plans.replay_quant (key, gate, outputs, launch)"] = lambda: op_plans.replay_quant(*quant_args)
    rows["op_plans.replay_mm (key, gate, output, launch)"] = lambda: op_plans.replay_mm(*mm_args)
    rows["op_plans.quant_key"] = lambda: op_plans.quant_key(*quant_args)
    rows["op_plans.mm_key"] = lambda: op_plans.mm_key(*mm_args)
    rows["torch.empty_strided (the plans' outputs)"] = lambda: torch.empty_strided((m, n), (n, 1), dtype=x.dtype,
                                                                                    device=x.device)  # fmt: skip
    gemm = plan.gemm
    if hasattr(plan, "quant"):  # two launches: each alone, on fixed buffers
        buf = torch.empty(plan.nbytes, dtype=torch.int8, device=x.device)
        out = torch.empty((m, n), dtype=x.dtype, device=x.device)
        base = buf.data_ptr()
        scale, azp = base + plan.scale_at, base + plan.azp_at
        rows["quant replay alone"] = lambda: plan.quant.addresses(stream, x.data_ptr(), base, scale, azp)
        if not plan.tma and gemm.split_k == 1:
            rows["GEMM replay alone"] = lambda: gemm.replay.addresses(stream, base, out.data_ptr(), None, None, scale,
                                                                       azp)  # fmt: skip
    graphed = ("F.linear", "Int8Linear", "ops pair")  # the replays launch on the eager stream: no capture
    result = {}
    for name, call in rows.items():
        graph = graph_time_ms([call]) * 1e3 if name.startswith(graphed) else float("nan")
        result[name] = (host_us_per_call(call, calls, host_only=True), host_us_per_call(call, calls), graph)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--m", default="1,16,64,256")
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--k", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--profile-m", type=int, default=64)
    args = parser.parse_args()
    n, k = args.n, args.k
    layer = Int8Linear(k, n, Int8ScaledMMLinearLayerConfig(False, True, False), device="cuda")
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-128, 128, (n, k), dtype=torch.int8))
        layer.weight_scale.copy_(torch.rand(n, 1) * 1e-3 + 1e-4)
    layer.process_weights_after_loading()
    w16 = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    print(f"{n}x{k} dynamic asym, bf16; µs per call: host (loop alone) / b2b (synchronized at the end) / graph")
    for m in map(int, args.m.split(",")):
        cfg = mm.select_config(m, n, k, torch.device("cuda"))
        print(f"M={m}  config {cfg}")
        for name, (host, b2b, graph) in rows_for(layer, w16, m, k, args.calls).items():
            print(f"  {name:<44} {host:7.1f} {b2b:7.1f} {graph:7.1f}")
    x = torch.randn(args.profile_m, k, device="cuda", dtype=torch.bfloat16)
    bound = layer.kernel._bound
    for name, call in (("Int8Linear", lambda: layer(x)),
                       ("ops pair", lambda: public_ops(x, bound.weight, bound.scale_b, bound.azp_adj))):  # fmt: skip
        call()
        call()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(2000):
            call()
        torch.cuda.synchronize()
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(16)
        print(f"cProfile, {name}, M={args.profile_m}:\n{text.getvalue()}")


if __name__ == "__main__":
    main()
