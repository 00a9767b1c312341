"""The W8A8 epilogue of one int32 tile, shared by the pointer kernel and the Hopper TMA kernel.

`(acc - azp * azp_adj)` in int32 (exact, wrapping like the hardware), then `* scale_a * scale_b + bias`
in float32, step by step (the launches disable FMA contraction): one definition, so both kernels
round the same way.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def scaled_tile(
    acc,
    scale_a,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp,
    offs_n,
    N,
    SCALE_B_PER_COL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_AZP_ADJ: tl.constexpr,
    HAS_AZP: tl.constexpr,
):
    """float32 tile; scale_a: a scalar or one value per row ([BLOCK_M, 1]); azp: int32 per row ([BLOCK_M, 1])."""
    mask_n = offs_n < N
    if HAS_AZP_ADJ:
        azp_adj = tl.load(azp_adj_ptr + offs_n, mask=mask_n, other=0)
        if HAS_AZP:
            acc -= azp * azp_adj[None, :]
        else:  # static per-tensor: azp_adj already holds azp * column sums
            acc -= azp_adj[None, :]
    out = acc.to(tl.float32) * scale_a
    if SCALE_B_PER_COL:
        out = out * tl.load(scale_b_ptr + offs_n, mask=mask_n, other=0.0)[None, :]
    else:
        out = out * tl.load(scale_b_ptr)
    if HAS_BIAS:
        out = out + tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    return out
