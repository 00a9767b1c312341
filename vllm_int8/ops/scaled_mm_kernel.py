"""Triton int8 x int8 -> int32 GEMM with the whole W8A8 epilogue in the same launch.

out = scale_a * scale_b * (A @ B - azp * azp_adj) + bias

The zero-point correction is applied to the int32 accumulator (exact, wrapping like the
hardware), then the tile is scaled in float32 and stored once in the output dtype.

Split-K (for decode, where M is small and too few output tiles would leave SMs idle) stays one
launch and exact: each K-slice adds its int32 partial tile into a workspace with atomics, and
the last slice to arrive (an acq_rel counter per tile) takes the sum, zeroes the workspace for
the next launch, and runs the epilogue.
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from vllm_int8.ops.mm_configs import MMConfig, select_config


@triton.jit
def _epilogue(
    acc,
    c_ptr,
    scale_a_ptr,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp_ptr,
    offs_m,
    offs_n,
    M,
    N,
    stride_cm,
    SCALE_A_PER_ROW: tl.constexpr,
    SCALE_B_PER_COL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_AZP_ADJ: tl.constexpr,
    HAS_AZP: tl.constexpr,
):
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


@triton.jit(do_not_specialize=["M"])  # M only bounds masks: one compiled variant for every batch size
def _scaled_mm_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    scale_a_ptr,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp_ptr,
    workspace_ptr,
    counter_ptr,
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
    SPLIT_K: tl.constexpr,
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

    # This program's K-slice, in whole BLOCK_K steps (all of K without split-K).
    k_steps = tl.cdiv(K, BLOCK_K)
    if SPLIT_K == 1:
        k_first = 0
        k_last = k_steps
    else:
        per_slice = tl.cdiv(k_steps, SPLIT_K)
        k_first = tl.program_id(1) * per_slice
        k_last = tl.minimum(k_first + per_slice, k_steps)

    # 64-bit offsets: M*K or K*N may pass 2**31 elements.
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = k_first * BLOCK_K + tl.arange(0, BLOCK_K)
    # Out-of-range rows/columns re-read valid ones (no load masks); their results are not stored.
    a_ptrs = a_ptr + (offs_m % M)[:, None] * stride_am + offs_k[None, :].to(tl.int64) * stride_ak
    b_ptrs = b_ptr + offs_k[:, None].to(tl.int64) * stride_bk + (offs_n % N)[None, :] * stride_bn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for k in range(k_first, k_last):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = K - k * BLOCK_K
            a = tl.load(a_ptrs, mask=tl.arange(0, BLOCK_K)[None, :] < k_left, other=0)
            b = tl.load(b_ptrs, mask=tl.arange(0, BLOCK_K)[:, None] < k_left, other=0)
        acc = tl.dot(a, b, acc, out_dtype=tl.int32)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    if SPLIT_K == 1:
        _epilogue(
            acc, c_ptr, scale_a_ptr, scale_b_ptr, bias_ptr, azp_adj_ptr, azp_ptr, offs_m, offs_n, M, N, stride_cm,
            SCALE_A_PER_ROW, SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP,
        )  # fmt: skip
    else:
        # Exact int32 reduction of the slices; the last to arrive finishes the tile.
        tile_offs = tl.arange(0, BLOCK_M)[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
        ws_ptrs = workspace_ptr + pid.to(tl.int64) * (BLOCK_M * BLOCK_N) + tile_offs
        tl.atomic_add(ws_ptrs, acc, sem="relaxed")
        arrived = tl.atomic_add(counter_ptr + pid, 1, sem="acq_rel")
        if arrived == SPLIT_K - 1:
            total = tl.atomic_xchg(ws_ptrs, tl.zeros_like(acc), sem="relaxed")  # read and reset
            tl.atomic_xchg(counter_ptr + pid, 0, sem="relaxed")
            _epilogue(
                total, c_ptr, scale_a_ptr, scale_b_ptr, bias_ptr, azp_adj_ptr, azp_ptr, offs_m, offs_n, M, N,
                stride_cm, SCALE_A_PER_ROW, SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP,
            )  # fmt: skip


# Split-K workspaces, one per (device, stream): zero between launches (the kernel re-zeroes them).
_workspaces: dict[tuple[torch.device, int], tuple[torch.Tensor, torch.Tensor]] = {}


def split_k_workspace(device: torch.device, tiles: int, tile_elems: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(int32 partial sums, int32 arrival counters) for `tiles` tiles, or None while a CUDA graph is
    being captured and the cached workspace is too small (no allocation may happen then)."""
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    key = (device, stream)
    cached = _workspaces.get(key)
    if cached is not None and cached[0].numel() >= tiles * tile_elems and cached[1].numel() >= tiles:
        return cached
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return None
    size = max(tiles * tile_elems, 0 if cached is None else cached[0].numel())
    count = max(tiles, 0 if cached is None else cached[1].numel())
    _workspaces[key] = (
        torch.zeros(size, dtype=torch.int32, device=device),
        torch.zeros(count, dtype=torch.int32, device=device),
    )
    return _workspaces[key]


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
    tiles = triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n)
    workspace = counters = None
    if cfg.split_k > 1:
        buffers = split_k_workspace(input.device, tiles, cfg.block_m * cfg.block_n)
        if buffers is None:
            cfg = dataclasses.replace(cfg, split_k=1)
        else:
            workspace, counters = buffers
    _scaled_mm_kernel[(tiles, cfg.split_k)](
        input,
        weight,
        out,
        scale_a,
        scale_b,
        bias,
        azp_adj,
        azp,
        workspace,
        counters,
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
        SPLIT_K=cfg.split_k,
        num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
    )
    return out
