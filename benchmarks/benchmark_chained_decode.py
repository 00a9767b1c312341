"""Decode as a server runs it: a layer's four linears (quant + GEMM each) chained over several
layers inside one CUDA graph, against bf16 `F.linear` chained the same way.

Each layer has its own weights (8 Llama-3-8B layers: 1.75 GB of int8 weights, past any L2), so
every GEMM streams its weight from HBM while the launches before it finish (PDL where on). The
figure is int8 weight bytes per second over the whole chain, and bf16's chain time over ours.
Alternated rounds, medians. Merges `decode_chained_gbps` and `decode_chained_speedup_vs_bf16`
(geomeans over M) into benchmarks/results/<device>/summary.json under the device name.

    python -m benchmarks.benchmark_chained_decode [--m 1,16] [--layers 8] [--early-steps 0,1,2] [--one-launch]
        [--parts]

`--parts` also times the chain's halves alone, in the same alternation: the GEMMs on rows
quantized once outside the graph (`ops.triton_scaled_mm`), and the quant kernels alone; the
whole chain's time less the GEMMs' alone is what the quant launches cost between the weights.
(At M = 16 the GEMMs back to back measured slower than the whole chain: there the difference
is not the quants' cost.)
"""

from __future__ import annotations

import argparse
import math
import os

import torch
import torch.nn.functional as F

from benchmarks.gpu_timing import alternating_graph_times_ms
from benchmarks.results_summary import merge_summary
from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig
from vllm_int8.ops import quant_mm, scaled_int8_quant, triton_scaled_mm
from vllm_int8.ops.pdl import DEFAULT_EARLY_WEIGHT_STEPS, EARLY_WEIGHT_ENV

LINEARS = {"qkv": (6144, 4096), "o": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)}  # (N, K)


def int8_linear(n: int, k: int) -> Int8Linear:
    layer = Int8Linear(k, n, Int8ScaledMMLinearLayerConfig(False, True, False), device="cuda")
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda"))
        layer.weight_scale.copy_(torch.rand(n, 1, device="cuda") * 1e-3 + 1e-4)
    layer.process_weights_after_loading()
    return layer


def chain_parts(int8: list[list[Int8Linear]], inputs: dict, ks: list[int]):
    """(GEMMs alone, quants alone) of the chain: each linear's GEMM on its row quantized once
    here, with the layer's own weight side; and each linear's dynamic quant alone."""
    rows = {k: scaled_int8_quant(x, symmetric=False) for k, x in inputs.items()}

    def gemms():
        for layer in int8:
            for linear, k in zip(layer, ks):
                bound = linear.kernel._bound
                x_q, x_s, x_zp = rows[k]
                triton_scaled_mm(x_q, bound.weight, x_s, bound.scale_b, torch.bfloat16, None, bound.azp_adj, x_zp)

    def quants():
        for _ in int8:
            for k in ks:
                scaled_int8_quant(inputs[k], symmetric=False)

    return gemms, quants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", default="1,16")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--early-steps", default=str(DEFAULT_EARLY_WEIGHT_STEPS),
                        help="weight K-steps each GEMM loads before its PDL wait; a list compares")  # fmt: skip
    parser.add_argument("--one-launch", action="store_true",
                        help="also: at M=1 the GEMM quantizing its own row in the graph (eager's path)")  # fmt: skip
    parser.add_argument("--parts", action="store_true", help="also: the chain's GEMMs alone and its quants alone")
    args = parser.parse_args()
    torch.manual_seed(0)
    int8 = [[int8_linear(n, k) for n, k in LINEARS.values()] for _ in range(args.layers)]
    bf16 = [[torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for n, k in LINEARS.values()]
            for _ in range(args.layers)]  # fmt: skip
    weight_bytes = args.layers * sum(n * k for n, k in LINEARS.values())
    device = torch.cuda.get_device_name()
    print(f"{device}: {args.layers} Llama-3-8B layers x (qkv, o, gate_up, down), {weight_bytes / 1e9:.2f} GB int8")
    default = (DEFAULT_EARLY_WEIGHT_STEPS, False)
    settings = [(int(e), False) for e in args.early_steps.split(",")]
    if args.one_launch:
        settings += [(e, True) for e, _ in settings]
    gbps, speedups = [], []
    for m in map(int, args.m.split(",")):
        inputs = {k: torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for k in {k for _, k in LINEARS.values()}}
        ks = [k for _, k in LINEARS.values()]
        here = [s for s in settings if not s[1] or m == 1]

        def chain_int8(setting, inputs=inputs, ks=ks):
            early, one_launch = setting
            os.environ[EARLY_WEIGHT_ENV] = str(early)  # read by each launch while the graph is captured
            saved = quant_mm.capturing
            if one_launch:
                quant_mm.capturing = lambda x: False
            try:
                for layer in int8:
                    for linear, k in zip(layer, ks):
                        linear(inputs[k])
            finally:
                quant_mm.capturing = saved
                os.environ.pop(EARLY_WEIGHT_ENV, None)

        def chain_bf16(inputs=inputs, ks=ks):
            for layer in bf16:
                for w, k in zip(layer, ks):
                    F.linear(inputs[k], w)

        variants = [[lambda s=s: chain_int8(s)] for s in here] + [[chain_bf16]]
        if args.parts:
            variants += [[lambda f=f: f()] for f in chain_parts(int8, inputs, ks)]
        times = alternating_graph_times_ms(variants, rounds=args.rounds, rep_ms=60)
        parts = times[len(here) + 1 :]  # (GEMMs alone, quants alone) with --parts
        *t_int8s, t_bf16 = times[: len(here) + 1]
        t_int8 = t_int8s[here.index(default)] if default in here else min(t_int8s)
        if parts:
            t_gemms, t_quants = parts
            print(f"M={m:<3} parts  GEMMs alone {t_gemms * 1e3:8.1f} us ({weight_bytes / (t_gemms * 1e-3) / 1e9:6.0f}"
                  f" GB/s)   quants alone {t_quants * 1e3:8.1f} us   whole chain - GEMMs alone"
                  f" {(t_int8 - t_gemms) * 1e3:7.1f} us ({(t_int8 - t_gemms) * 1e3 / len(int8) / len(ks):.2f} us"
                  " per linear)", flush=True)  # fmt: skip
        for (early, one), t in zip(here, t_int8s):
            label = f"early steps {early}  {'one launch  ' if one else 'two launches'}"
            print(f"M={m:<3} {label}  int8 {t * 1e3:8.1f} us ({weight_bytes / (t * 1e-3) / 1e9:6.0f} GB/s)"
                  f"   bf16 {t_bf16 * 1e3:8.1f} us ({2 * weight_bytes / (t_bf16 * 1e-3) / 1e9:6.0f} GB/s)"
                  f"   bf16/int8 {t_bf16 / t:.2f}x", flush=True)  # fmt: skip
        gbps.append(weight_bytes / (t_int8 * 1e-3) / 1e9)
        speedups.append(t_bf16 / t_int8)
    geo = lambda v: math.exp(sum(map(math.log, v)) / len(v))  # noqa: E731
    figures = {"decode_chained_gbps": round(geo(gbps), 1), "decode_chained_speedup_vs_bf16": round(geo(speedups), 3)}
    print(figures, "(the shipped defaults)" if default in settings else "(the fastest setting)")
    merge_summary(device, figures)


if __name__ == "__main__":
    main()
