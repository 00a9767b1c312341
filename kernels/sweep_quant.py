"""Sweep the dynamic quant kernel's launch shapes (one/two pass, rows and programs per row, block, warps) on a GPU.

Each candidate's output is compared bit for bit with the shipped launch before it is timed
(CUDA-graph replays over inputs rotated past L2). Prints GB/s and % of copy bandwidth.

    python kernels/sweep_quant.py [--m 1,4,16,256,4096] [--k 4096,14336,28672]
"""

from __future__ import annotations

import torch
import triton
from benchmark_int8_scaled_mm import copy_bandwidth_gbs
from gpu_timing import graph_time_ms, input_sets

from vllm_int8.ops.quant_kernel import _launch_shape, _scaled_int8_quant_kernel, launch_scaled_int8_quant

CANDIDATES = [  # (one pass, rows per program, block, warps, programs per row)
    (False, 1, 4096, 16, 1),
    (False, 1, 2048, 8, 1),
    (False, 1, 4096, 8, 1),
    (True, 1, None, 16, 1),
    (True, 1, None, 8, 1),
]
SMALL_M_CANDIDATES = [(True, 1, None, warps, split) for warps in (8, 16) for split in (2, 4, 8, 16)]
SPLIT_MAX_M = 512  # split candidates are tried up to this M


def launch(x, shape, symmetric=False):
    one_pass, rows, block, warps, split = shape
    m, k = x.shape
    block = block or triton.next_power_of_2(k)
    if split > 1 and (not one_pass or block // split < 16):
        raise ValueError("split needs one pass and a slice of at least 16")
    q = torch.empty_like(x, dtype=torch.int8)
    scale = torch.empty((m, 1), dtype=torch.float32, device=x.device)
    azp = torch.empty((m, 1), dtype=torch.int32, device=x.device)
    _scaled_int8_quant_kernel[(triton.cdiv(m, rows), split)](
        x, q, scale, azp, m, k, x.stride(0), STATIC=False, SYMMETRIC=symmetric, ONE_PASS=one_pass, ROWS=rows,
        BLOCK=block, SPLIT=split, num_warps=warps, enable_fp_fusion=False,
    )  # fmt: skip
    return q, scale, azp


def main() -> None:
    import argparse

    from vllm_int8.ops.launch_overlap import pdl_forced

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--m", default="1,4,16,256,4096", help="comma-separated M values")
    parser.add_argument("--k", default="4096,14336,28672", help="comma-separated K values")
    args = parser.parse_args()
    copy_gbs = copy_bandwidth_gbs()
    print(f"copy {copy_gbs:.0f} GB/s")
    with pdl_forced(False):  # every candidate launched alike (the sweep's own launches have no PDL)
        sweep([int(v) for v in args.k.split(",")], [int(v) for v in args.m.split(",")], copy_gbs)


def sweep(k_values: list[int], m_values: list[int], copy_gbs: float) -> None:
    for k in k_values:
        for m in m_values:
            xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(input_sets(m * k * 3))]
            shipped = _launch_shape(k, m)
            ref = launch_scaled_int8_quant(xs[0], symmetric=False)
            for shape in [shipped, *CANDIDATES, *(SMALL_M_CANDIDATES if m <= SPLIT_MAX_M else [])]:
                try:
                    q, s, z = launch(xs[0], shape)
                    ok = torch.equal(q, ref[0]) and torch.equal(s, ref[1]) and torch.equal(z, ref[2])
                    ms = graph_time_ms([lambda x=x, sh=shape: launch(x, sh) for x in xs]) if ok else float("nan")
                except Exception as e:  # noqa: BLE001 - a shape that cannot compile is a result
                    ok, ms = f"error {type(e).__name__}", float("nan")
                gbs = (m * k * 3 + m * 8) / ms / 1e6
                tag = "shipped" if shape is shipped else ""
                print(f"K={k:<6} M={m:<5} {str(shape):<28} {ms * 1e3:8.2f} us {gbs:7.0f} GB/s "
                      f"{gbs / copy_gbs:5.0%} {ok} {tag}", flush=True)  # fmt: skip
            del xs


if __name__ == "__main__":
    main()
