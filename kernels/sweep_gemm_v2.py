"""Sweep the Hopper TMA prefill configs and the decode configs against the shipped ones (one GPU run).

For each Llama-3-8B shape: prefill M in {256, 1024, 4096, 8192} with the shipped pointer config and
the TMA candidates; decode M in {1, 16} with the shipped config and the candidates. Every candidate is
checked bit for bit against the torch reference (fp32 output) before it is timed; graph-timed over
inputs rotated past L2 (gpu_timing.py), asym epilogue. Prints one table and writes JSON.

    python kernels/sweep_gemm_v2.py [--out DIR] [--shapes 8B|qwen|all]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from benchmark_int8_scaled_mm import int8_problem
from gpu_timing import graph_time_ms, input_sets

from vllm_int8.ops.mm_configs import MMConfig, select_config
from vllm_int8.ops.reference import torch_scaled_mm
from vllm_int8.ops.scaled_mm_kernel import launch_quant_scaled_mm, launch_scaled_mm, record_launches

LLAMA8 = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]
QWEN7 = [(4608, 3584), (3584, 3584), (37888, 3584), (3584, 18944)]

TMA = [
    MMConfig(128, 256, 128, 8, 8, 3, tma=1, subtile=1),
    MMConfig(128, 256, 128, 8, 8, 4, tma=1, subtile=1),
    MMConfig(128, 256, 64, 8, 8, 5, tma=1, subtile=1),
    MMConfig(128, 256, 128, 8, 8, 3, tma=1, subtile=0),
    MMConfig(256, 128, 128, 8, 8, 3, tma=1, subtile=1),
    MMConfig(128, 128, 128, 8, 8, 4, tma=1, subtile=1),
    MMConfig(128, 128, 128, 8, 4, 4, tma=1, subtile=0),
    MMConfig(128, 256, 128, 16, 8, 3, tma=1, subtile=1),
    MMConfig(128, 256, 128, 8, 8, 3, tma=1, subtile=1, warp_specialize=1),
    MMConfig(128, 128, 128, 8, 4, 4, tma=1, subtile=1, warp_specialize=1),
]
DECODE = [
    MMConfig(16, 64, 256, 1, 4, 5),
    MMConfig(16, 64, 256, 1, 4, 6, split_k=2),
    MMConfig(16, 128, 256, 1, 4, 4, split_k=2),
    MMConfig(16, 128, 256, 1, 4, 5, split_k=4),
    MMConfig(16, 64, 512, 1, 4, 4, split_k=2),
    MMConfig(16, 32, 512, 1, 4, 4),
    MMConfig(16, 256, 128, 1, 8, 6, split_k=2),
    MMConfig(16, 128, 128, 1, 4, 8, split_k=4),
]
# C^T = B^T A^T: the weight tile is the MMA's M side (wgmma on sm_90 from 64 rows).
DECODE_SWAPPED = [
    MMConfig(16, bn, bk, 1, warps, stages, split_k=split, swap_ab=1)
    for bn, bk, warps, stages, split in [
        (64, 256, 4, 5, 1), (128, 256, 4, 4, 1), (128, 128, 4, 6, 1), (256, 128, 8, 4, 1), (64, 512, 4, 4, 1),
        (64, 256, 4, 6, 2), (128, 256, 4, 4, 2), (128, 128, 4, 8, 2), (128, 256, 4, 4, 4), (64, 128, 4, 8, 4),
    ]
]  # fmt: skip


def exact(cfg, m, n, k) -> str:
    p = int8_problem(m, n, k)
    args = (p["a"], p["w"], p["scale_a"], p["scale_b"], torch.float32, p["bias"], p["azp_adj"], p["azp"])
    try:
        with record_launches() as log:
            out = launch_scaled_mm(*args, cfg)
        ref = torch_scaled_mm(*args)
    except Exception as e:  # noqa: BLE001 - a config that fails to compile is a result
        return f"error: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
    if not torch.equal(out, ref):
        return f"WRONG max {(out - ref).abs().max().item():.3g}"
    return "fell back" if cfg.tma and not log[-1][3].tma else "exact"


def time_cfg(cfg, m, n, k, symmetric=False, fused=False) -> float:
    sets = [int8_problem(m, n, k) for _ in range(input_sets(n * k + m * k))]
    if fused:  # the one-launch decode path: float rows quantized (dynamic asym) inside the GEMM
        for p in sets:
            p["x"] = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        return graph_time_ms(
            [
                lambda p=p: launch_quant_scaled_mm(
                    p["x"], p["w"], p["scale_b"], torch.bfloat16, p["bias"], p["azp_adj"], None, None, False, cfg
                )
                for p in sets
            ]
        )
    return graph_time_ms(
        [
            lambda p=p: launch_scaled_mm(
                p["a"],
                p["w"],
                p["scale_a"],
                p["scale_b"],
                torch.bfloat16,
                p["bias"],
                None if symmetric else p["azp_adj"],
                None if symmetric else p["azp"],
                cfg,
            )  # fmt: skip
            for p in sets
        ]
    )


def bf16_ms(m, n, k) -> float:
    sets = [
        (torch.randn(m, k, device="cuda", dtype=torch.bfloat16), torch.randn(n, k, device="cuda", dtype=torch.bfloat16))
        for _ in range(input_sets(2 * (n * k + m * k)))
    ]
    return graph_time_ms([lambda x=x, w=w: torch.nn.functional.linear(x, w) for x, w in sets])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="kernels/results")
    parser.add_argument("--shapes", default="8B")
    parser.add_argument("--prefill-m", default="256,1024,4096,8192")
    parser.add_argument("--decode-m", default="1,16")
    args = parser.parse_args()
    shapes = {"8B": LLAMA8, "qwen": QWEN7, "all": LLAMA8 + QWEN7}[args.shapes]
    rows = []
    checked: dict[MMConfig, str] = {}
    for n, k in shapes:
        for m in [int(v) for v in args.prefill_m.split(",") if v] + [int(v) for v in args.decode_m.split(",") if v]:
            shipped = select_config(m, n, k, torch.device("cuda"))
            cands = [("shipped", shipped)] + [(str(c), c) for c in (TMA if m >= 128 else DECODE + DECODE_SWAPPED)]
            base = bf16_ms(m, n, k)
            for name, cfg in cands:
                key = dataclasses.replace(cfg, split_k=cfg.split_k)
                if key not in checked:
                    checked[key] = exact(cfg, 200 if m >= 128 else 5, n, k)
                status = checked[key]
                ms = time_cfg(cfg, m, n, k) if status == "exact" else float("nan")
                # M = 1 decodes on the one-launch path (quant_mm.fused_fits): time that too
                fused_ms = time_cfg(cfg, m, n, k, fused=True) if status == "exact" and m == 1 else float("nan")
                row = {"N": n, "K": k, "M": m, "config": name, "cfg": cfg.to_dict(), "status": status, "ms": ms,
                       "tops": 2 * m * n * k / ms / 1e9, "weight_gbs": n * k / ms / 1e6, "bf16_ms": base,
                       "fused_weight_gbs": n * k / fused_ms / 1e6}  # fmt: skip
                rows.append(row)
                print(f"{n:>6} {k:>6} {m:>5} {row['tops']:7.0f} TOPS {row['weight_gbs']:6.0f} GB/s "
                      f"(one launch {row['fused_weight_gbs']:6.0f}) bf16 {2 * m * n * k / base / 1e9:5.0f} TFLOPS  "
                      f"{status:<10} {name}", flush=True)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"sweep_gemm_v2_{args.shapes}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
