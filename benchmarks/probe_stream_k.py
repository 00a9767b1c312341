"""Stream-K against the pointer kernel's whole tiles, same tile, mid batch (CUDA-graph replays over
rotated inputs): the shipped config, its stream-K twin at 1 and 2 programs per SM, and the stream-K
kernel launched with one program per tile (its structure alone, no shared tiles).

    python -m benchmarks.probe_stream_k [--shapes 6144x4096,4096x4096] [--m 256,512]
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from benchmarks.benchmark_int8_scaled_mm import int8_problem
from benchmarks.gpu_timing import graph_time_ms, input_sets
from vllm_int8.ops import scaled_mm_kernel as mm
from vllm_int8.ops import stream_k_kernel


def _launcher(cfg, programs=None):
    def call(p):
        if programs is None:
            return mm.launch_scaled_mm(p["a"], p["w"], p["scale_a"], p["scale_b"], torch.bfloat16, p["bias"],
                                       p["azp_adj"], p["azp"], cfg)  # fmt: skip
        m, n = p["a"].shape[0], p["w"].shape[1]
        out = torch.empty((m, n), dtype=torch.bfloat16, device="cuda")
        _, args, constexprs = mm.launch_arguments(p["a"], p["w"], out, p["scale_a"], p["scale_b"], p["bias"],
                                                  p["azp_adj"], p["azp"], True, mm.A_INT8, True, cfg)  # fmt: skip
        stream_k_kernel._stream_k_mm_kernel[(programs, 1)](*args, **constexprs)
        return out

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="6144x4096,4096x4096,4608x3584,4096x14336")
    parser.add_argument("--m", default="256,512")
    args = parser.parse_args()
    for shape in args.shapes.split(","):
        n, k = (int(v) for v in shape.split("x"))
        for m in (int(v) for v in args.m.split(",")):
            sets = [int8_problem(m, n, k) for _ in range(input_sets(n * k + m * k))]
            base = mm.pointer_config(mm.fit_block_k(mm.select_config(m, n, k, torch.device("cuda")), k))
            plain = dataclasses.replace(base, split_k=1, swap_ab=0)
            tiles = -(-m // plain.block_m) * -(-n // plain.block_n)
            # Stream-K over all tiles needs counters zeroed: the largest grid the tiles allow, per SM count.
            variants = {"shipped": _launcher(mm.select_config(m, n, k, torch.device("cuda")))}
            for per_sm in (1, 2):
                variants[f"stream-K x{per_sm}"] = _launcher(dataclasses.replace(plain, stream_k=per_sm))
            variants["stream-K, 1 program/tile"] = _launcher(dataclasses.replace(plain, stream_k=1), tiles)
            times = {name: graph_time_ms([lambda p=p, c=call: c(p) for p in sets], rep_ms=20) for name, call in
                     variants.items()}  # fmt: skip
            row = "  ".join(f"{name} {t * 1e3:6.1f} us" for name, t in times.items())
            print(f"N={n:<6} K={k:<6} M={m:<4} tiles {tiles:<4} {plain.block_m}x{plain.block_n}  {row}", flush=True)


if __name__ == "__main__":
    main()
