"""GPU soak check: random-shape calls mixing schemes, every result checked against the reference.

Shapes follow serving: M (tokens in a batch) uniform in [1, 512], (N, K) from real layer shapes
plus ragged ones. Each call runs quant + GEMM through the Triton kernel and is compared with the
torch reference on the same device (int8 values bit for bit, outputs within bf16 rounding).
Peak memory and the number of compiled kernel variants must stop growing in the second half.
Part of the GPU suite (skipped without CUDA); `VLLM_INT8_SOAK_CALLS` sets the length (default 2000).
"""

from __future__ import annotations

import os
import random

import pytest
import torch

from tests.problems import azp_terms
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a GPU soak check")
def test_random_calls_match_the_reference_and_plateau():
    calls = int(os.environ.get("VLLM_INT8_SOAK_CALLS", "2000"))
    rng = random.Random(2026)
    half = calls // 2
    for _ in range(half):
        one_call(rng)
    torch.cuda.synchronize()
    variants, peak = compiled_variants(), torch.cuda.max_memory_allocated()
    for _ in range(calls - half):
        one_call(rng)
    torch.cuda.synchronize()
    grown = compiled_variants() - variants
    assert torch.cuda.max_memory_allocated() <= peak * 1.25 + (64 << 20), "peak memory kept growing"
    # New (M-bucket, shape, scheme) combinations still compile a few variants late in a short soak
    # (H200, 2000 calls: 188 in the first half, 32 in the second): the rate must fall, not stop.
    assert grown <= variants // 4, f"{grown} new kernel variants in the second half (first: {variants})"
