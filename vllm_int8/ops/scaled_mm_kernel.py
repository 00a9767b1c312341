"""Triton int8 x int8 -> int32 GEMM with the whole W8A8 epilogue in the same launch.

out = scale_a * scale_b * (A @ B - azp * azp_adj) + bias

The zero-point correction is applied to the int32 accumulator (exact, wrapping like the
hardware), then the tile is scaled in float32 and stored once in the output dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vllm_int8.ops.mm_configs import MMConfig, select_config


@triton.jit
def _scaled_mm_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    scale_a_ptr,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_cm,
    SCALE_A_PER_ROW: tl.constexpr,
    SCALE_B_PER_COL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_AZP_ADJ: tl.constexpr,
    HAS_AZP: tl.constexpr,
    EVEN_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    # Grouped tile order: GROUP_M row-tiles share each column of B while it is in L2.
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    group_size = GROUP_M * tiles_n
    first_m = (pid // group_size) * GROUP_M
    rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group_size) % rows_in_group
    pid_n = (pid % group_size) // rows_in_group

    # 64-bit offsets: M*K or K*N may pass 2**31 elements.
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # Out-of-range rows/columns re-read valid ones (no load masks); their results are not stored.
    a_ptrs = a_ptr + (offs_m % M)[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + (offs_n % N)[None, :] * stride_bn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = K - k * BLOCK_K
            a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0)
        acc = tl.dot(a, b, acc, out_dtype=tl.int32)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    mask_m = offs_m < M
    mask_n = offs_n < N
    if HAS_AZP_ADJ:
        azp_adj = tl.load(azp_adj_ptr + offs_n, mask=mask_n, other=0)
        if HAS_AZP:
            azp = tl.load(azp_ptr + offs_m, mask=mask_m, other=0)
            acc -= azp[:, None] * azp_adj[None, :]
        else:  # static per-tensor: azp_adj already holds azp * column sums
            acc -= azp_adj[None, :]

    out = acc.to(tl.float32)
    if SCALE_A_PER_ROW:
        out = out * tl.load(scale_a_ptr + offs_m, mask=mask_m, other=0.0)[:, None]
    else:
        out = out * tl.load(scale_a_ptr)
    if SCALE_B_PER_COL:
        out = out * tl.load(scale_b_ptr + offs_n, mask=mask_n, other=0.0)[None, :]
    else:
        out = out * tl.load(scale_b_ptr)
    if HAS_BIAS:
        out = out + tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]

    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :]
    tl.store(c_ptrs, out.to(c_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


def launch_scaled_mm(
    input: torch.Tensor,
    weight: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
    azp_adj: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    config: MMConfig | None = None,
) -> torch.Tensor:
    """One launch of the fused GEMM (arguments already validated; `config` overrides the tile choice)."""
    m, k = input.shape
    n = weight.shape[1]
    out = torch.empty((m, n), dtype=out_dtype, device=input.device)
    if m == 0 or n == 0:
        return out
    scale_a, scale_b = scale_a.reshape(-1), scale_b.reshape(-1)  # kernels index them flat
    bias = None if bias is None else bias.reshape(-1)
    azp_adj = None if azp_adj is None else azp_adj.reshape(-1)
    azp = None if azp is None else azp.reshape(-1)
    cfg = config or select_config(m, n, k, input.device)
    grid = (triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n),)
    _scaled_mm_kernel[grid](
        input,
        weight,
        out,
        scale_a,
        scale_b,
        bias,
        azp_adj,
        azp,
        m,
        n,
        k,
        input.stride(0),
        input.stride(1),
        weight.stride(0),
        weight.stride(1),
        out.stride(0),
        SCALE_A_PER_ROW=scale_a.numel() > 1,
        SCALE_B_PER_COL=scale_b.numel() > 1,
        HAS_BIAS=bias is not None,
        HAS_AZP_ADJ=azp_adj is not None,
        HAS_AZP=azp is not None,
        EVEN_K=k % cfg.block_k == 0,
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        BLOCK_K=cfg.block_k,
        GROUP_M=cfg.group_m,
        num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
    )
    return out
