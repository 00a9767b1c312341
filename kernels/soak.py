"""Soak: 10,000 random-shape calls mixing schemes on the GPU, every result checked.

Shapes follow serving: M (tokens in a batch) uniform in [1, 512], (N, K) from real layer shapes
plus ragged ones. Each call runs quant + GEMM through the Triton kernel and is compared with the
torch reference on the same device (int8 values bit for bit, outputs within bf16 rounding).
Reports peak memory and the number of compiled kernel variants at checkpoints: both must plateau.

    python kernels/soak.py [--calls 10000] [--seconds 420]
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from vllm_int8 import ops
from vllm_int8.ops.quant_kernel import _scaled_int8_quant_kernel
from vllm_int8.ops.scaled_mm_kernel import _scaled_mm_kernel

SHAPES = [(960, 576), (576, 576), (3072, 576), (576, 1536), (4096, 4096), (6144, 4096), (100, 300), (33, 77)]


def compiled_variants() -> int:
    """Kernel variants compiled so far (Triton's per-device JIT caches of both kernels)."""
    total = 0
    for fn in (_scaled_int8_quant_kernel, _scaled_mm_kernel):
        total += sum(len(cache[0]) for cache in fn.device_caches.values())
    return total


def azp_terms(w, x_zp, symmetric: bool, static: bool):
    """(azp_adj, per-token azp) for the GEMM after a quant: static folds azp into the column sums."""
    if symmetric:
        return None, None
    if static:
        return w.sum(0, dtype=torch.int32) * x_zp, None
    return w.sum(0, dtype=torch.int32), x_zp.reshape(-1)


def one_call(rng: random.Random) -> None:
    m = rng.randint(1, 512)
    n, k = rng.choice(SHAPES)
    symmetric, static = rng.random() < 0.5, rng.random() < 0.5
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16) * 10 ** rng.uniform(-2, 2)
    scale = torch.tensor([rng.uniform(0.001, 0.1)], device="cuda") if static else None
    azp = torch.tensor([rng.randint(-20, 20)], device="cuda", dtype=torch.int32) if static and not symmetric else None
    q, x_s, x_zp = ops.triton_scaled_int8_quant(x, scale, azp, symmetric)
    q_ref, s_ref, _ = ops.torch_scaled_int8_quant(x, scale, azp, symmetric)
    assert torch.equal(q, q_ref) and torch.equal(x_s, s_ref), "quant differs from the reference"
    w = torch.randint(-128, 128, (n, k), device="cuda", dtype=torch.int8).t()
    w_s = torch.rand(n, device="cuda") * 0.01
    bias = torch.randn(n, device="cuda", dtype=torch.bfloat16) if rng.random() < 0.5 else None
    adj, per_token = azp_terms(w, x_zp, symmetric, static)
    out = ops.triton_scaled_mm(q, w, x_s, w_s, torch.bfloat16, bias, adj, per_token)
    ref = ops.torch_scaled_mm(q, w, x_s, w_s, torch.float32, bias, adj, per_token)
    err = (out.float() - ref).abs()
    bound = ref.abs() * 2**-8 + 1e-3 * (1 + ref.abs().max())
    assert (err <= bound).all(), f"GEMM off by {err.max().item():.3e} at M={m} N={n} K={k}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=420, help="stop early after this long")
    args = parser.parse_args()
    rng = random.Random(2026)
    start = time.time()
    checkpoints = {args.calls // 10, args.calls // 2, args.calls}
    done = 0
    for i in range(1, args.calls + 1):
        one_call(rng)
        done = i
        if i in checkpoints or i % 1000 == 0:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 2**20
            print(
                f"calls {i:>6}  compiled variants {compiled_variants():>4}  peak {peak:8.1f} MiB  "
                f"allocated {torch.cuda.memory_allocated() / 2**20:8.1f} MiB  {time.time() - start:6.1f} s",
                flush=True,
            )
        if time.time() - start > args.seconds:
            break
    print(f"soak: {done} calls checked, all matched the reference")


if __name__ == "__main__":
    main()
