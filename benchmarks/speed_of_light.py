"""How fast can a decode GEMM be on this GPU? Time kernels that only read the weight's bytes.

A decode GEMM (M <= 16) must read its whole int8 weight once, so no GEMM launched per linear
can beat the fastest kernel that just reads those bytes, timed the same way (CUDA-graph replays
back to back over inputs rotated past L2, gpu_timing.py). This times several such read kernels
(Triton flat streaming reads, with and without programmatic dependent launch as our decode GEMMs
use it, and torch reductions) per weight shape, keeps the fastest as the speed of light, and sets
our decode GEMM (asym, shipped config) and bf16 `F.linear` beside it.

    python -m benchmarks.speed_of_light [--shapes 8B,qwen]
"""

from __future__ import annotations

import argparse
import math

import torch
import triton
import triton.language as tl

from benchmarks.benchmark_int8_scaled_mm import SHAPES, int8_problem
from benchmarks.gpu_timing import graph_time_ms, input_sets
from benchmarks.results_summary import merge_summary
from vllm_int8 import ops
from vllm_int8.ops.pdl import PDL_EARLY, pdl_enabled, wait_for_previous_kernel

MODELS = {"8B": "Llama-3-8B", "70B": "Llama-3-70B", "qwen": "Qwen2.5-7B"}
# (int32 elements per load step, unrolled steps per program, warps)
FLAT_READS = [(1024, 8, 4), (2048, 8, 8), (4096, 4, 8), (1024, 16, 4), (2048, 16, 8), (4096, 16, 8)]


@triton.jit
def _read_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr, STEPS: tl.constexpr, PDL: tl.constexpr = 0):
    """Read BLOCK * STEPS int32 words (all loads issued before any is used) and store their sum.
    With PDL, launched like our decode GEMM: the next launch's programs are placed early and each
    waits for the previous kernel before its first load."""
    wait_for_previous_kernel(PDL)
    start = tl.program_id(0).to(tl.int64) * BLOCK * STEPS
    acc = tl.zeros((BLOCK,), dtype=tl.int32)
    for step in tl.static_range(STEPS):
        offs = start + step * BLOCK + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + offs, mask=offs < n, other=0)
    tl.store(out_ptr + tl.program_id(0), tl.sum(acc, axis=0))


def read_calls(weights: list[torch.Tensor], block: int, steps: int, warps: int, pdl: bool = False):
    words = [w.view(torch.int32).reshape(-1) for w in weights]
    n = words[0].numel()
    grid = (triton.cdiv(n, block * steps),)
    out = torch.empty(grid[0], dtype=torch.int32, device="cuda")
    options = {"PDL": PDL_EARLY, "launch_pdl": True} if pdl else {}
    return [
        lambda x=x: _read_kernel[grid](x, out, n, BLOCK=block, STEPS=steps, num_warps=warps, **options) for x in words
    ]


def shape_row(model: str, layer: str, n: int, k: int) -> dict:
    weights = [torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda") for _ in range(input_sets(n * k))]
    reads = {f"triton {b}x{s} w{w}": graph_time_ms(read_calls(weights, b, s, w)) for b, s, w in FLAT_READS}
    if pdl_enabled(torch.device("cuda")):  # chained like our decode GEMMs: launch latency overlapped
        for b, s, w in FLAT_READS:
            reads[f"triton {b}x{s} w{w} PDL"] = graph_time_ms(read_calls(weights, b, s, w, pdl=True))
    reads["torch int32 sum"] = graph_time_ms([lambda w=w: w.view(torch.int32).sum() for w in weights])
    reads["torch fp32 amax"] = graph_time_ms([lambda w=w: w.view(torch.float32).amax() for w in weights])
    best = min(reads, key=reads.get)
    del weights
    row = {"model": model, "layer": layer, "N": n, "K": k, "read_best": best, "read_ms": reads[best]}
    for m in (1, 16):
        sets = [int8_problem(m, n, k) for _ in range(input_sets(n * k))]
        row[f"ours_m{m}_ms"] = graph_time_ms(
            [
                lambda p=p: ops.triton_scaled_mm(
                    p["a"], p["w"], p["scale_a"], p["scale_b"], torch.bfloat16, p["bias"], p["azp_adj"], p["azp"]
                )
                for p in sets
            ]
        )
        del sets
    bf16 = [
        (torch.randn(1, k, device="cuda", dtype=torch.bfloat16), torch.randn(n, k, device="cuda", dtype=torch.bfloat16))
        for _ in range(input_sets(2 * n * k))
    ]
    row["bf16_m1_ms"] = graph_time_ms([lambda x=x, w=w: torch.nn.functional.linear(x, w) for x, w in bf16])
    return row


def gbs(n_bytes: int, ms: float) -> float:
    return n_bytes / ms / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="8B,qwen")
    args = parser.parse_args()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
    print(f"{'model':12s} {'layer':8s} {'MB':>6s} {'read us':>8s} {'read GB/s':>9s} {'ours M=1':>9s} {'M=16':>6s} "
          f"{'of SOL':>7s} {'bf16 GB/s':>9s}  fastest read")  # fmt: skip
    for key in args.shapes.split(","):
        model = MODELS[key]
        rows = [shape_row(model, layer, *nk) for (mdl, layer), nk in SHAPES.items() if mdl == model]
        for r in rows:
            size = r["N"] * r["K"]
            ours = [gbs(size, r[f"ours_m{m}_ms"]) for m in (1, 16)]
            sol = gbs(size, r["read_ms"])
            print(f"{r['model']:12s} {r['layer']:8s} {size / 1e6:6.1f} {r['read_ms'] * 1e3:8.1f} {sol:9.0f} "
                  f"{ours[0]:9.0f} {ours[1]:6.0f} {max(ours) / sol:7.2f} {gbs(2 * size, r['bf16_m1_ms']):9.0f}  "
                  f"{r['read_best']}")  # fmt: skip

        def geo(values):
            return math.exp(sum(math.log(v) for v in values) / len(values))

        sol = geo([gbs(r["N"] * r["K"], r["read_ms"]) for r in rows])
        ours = geo([gbs(r["N"] * r["K"], r[f"ours_m{m}_ms"]) for r in rows for m in (1, 16)])
        print(f"{model}: geomean GB/s, read-only speed of light {sol:.0f}, ours (M=1,16) {ours:.0f} ({ours / sol:.2f})")
        if model == "Llama-3-8B":
            merge_summary(torch.cuda.get_device_name(), {"speed_of_light_decode_gbps": round(sol, 1)})


if __name__ == "__main__":
    main()
