"""One launch of each kernel a point runs, ours and its cuBLAS peers, for Nsight Compute.

Every call runs three times first (compile, plan, the plans' checked first replays), then once
more between `cudaProfilerStart` and `cudaProfilerStop`, synchronized, so an `ncu
--profile-from-start off` run reports exactly one launch per kernel. Points (dynamic asym, bf16):

- prefill: Llama-3-8B gate_up at M = 4096: ours sym, ours asym, cuBLAS FP8 (`torch._scaled_mm`);
- mid_qkv / mid_o: Qwen2.5-7B qkv, Llama-3-8B o at M = 256: the same three and bf16 `F.linear`;
- decode: Llama-3-8B qkv at M = 1: ours (quant, then GEMM) and bf16 `F.linear`.

    ncu --clock-control none --profile-from-start off python -m benchmarks.profile_kernels prefill
(`bash benchmarks/gpu_steps.sh profile` runs every point with the sections the records hold.)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

from vllm_int8 import ops

POINTS = {  # name: (M, N, K)
    "prefill": (4096, 28672, 4096),
    "mid_qkv": (256, 4608, 3584),
    "mid_o": (256, 4096, 4096),
    "decode": (1, 6144, 4096),
}


def point_calls(m: int, n: int, k: int) -> list[Callable[[], object]]:
    """The calls of one point on random operands: at M > 1 the int8 GEMMs on int8 rows and the FP8
    peer on FP8 rows; at M = 1 the whole quant + GEMM; bf16 below prefill."""
    dev, bf16 = "cuda", torch.bfloat16
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device=dev).t()
    scale_b = torch.rand(n, 1, device=dev) * 1e-2
    azp_adj = w.sum(0, dtype=torch.int32)
    bias = torch.randn(n, device=dev, dtype=bf16)
    x = torch.randn(m, k, device=dev, dtype=bf16)
    w16 = torch.randn(n, k, device=dev, dtype=bf16)
    bf16_linear = lambda: F.linear(x, w16, bias)  # noqa: E731
    if m == 1:

        def ours():
            q, s, z = ops.scaled_int8_quant(x, None, None, False)
            return ops.triton_scaled_mm(q, w, s, scale_b, bf16, bias, azp_adj, z)

        return [ours, bf16_linear]
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device=dev)
    scale_a = torch.rand(m, 1, device=dev) * 1e-2
    azp = torch.randint(-128, 128, (m,), dtype=torch.int32, device=dev)
    fp8 = torch.float8_e4m3fn
    fa, fb = torch.randn(m, k, device=dev).to(fp8), torch.randn(n, k, device=dev).to(fp8).t()
    fsa, fsb = torch.rand(m, 1, device=dev), torch.rand(1, n, device=dev)
    calls = [
        lambda: ops.triton_scaled_mm(a, w, scale_a, scale_b, bf16, bias),
        lambda: ops.triton_scaled_mm(a, w, scale_a, scale_b, bf16, bias, azp_adj, azp),
        lambda: torch._scaled_mm(fa, fb, scale_a=fsa, scale_b=fsb, bias=bias, out_dtype=bf16),
    ]
    return calls if m >= 1024 else [*calls, bf16_linear]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("point", choices=sorted(POINTS))
    calls = point_calls(*POINTS[parser.parse_args().point])
    for _ in range(3):
        for call in calls:
            call()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    for call in calls:
        call()
        torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()


if __name__ == "__main__":
    main()
