"""Triton int8 x int8 -> int32 GEMM with the whole W8A8 epilogue in the same launch.

out = scale_a * scale_b * (A @ B - azp * azp_adj) + bias

The zero-point correction is applied to the int32 accumulator (exact, wrapping like the
hardware), then the tile is scaled in float32 and stored once in the output dtype.

Split-K (for decode, where M is small and too few output tiles would leave SMs idle) stays one
launch and exact: each K-slice stores its int32 partial tile in its own workspace slot, then
bumps the tile's arrival counter (acq_rel); the last slice to arrive sums the slots in int32,
resets the counter and runs the epilogue. `split_k_workspace.py` says where the buffers live and
why that is safe under CUDA graphs and concurrent streams.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
import triton
import triton.language as tl

from vllm_int8.ops.epilogue import scaled_tile
from vllm_int8.ops.mm_configs import MMConfig, select_config
from vllm_int8.ops.pdl import (
    early_weight_steps,
    gemm_pdl_options,
    wait_for_previous_kernel,
)
from vllm_int8.ops.quant_kernel import block_stats, dynamic_scale_and_azp, quantize_rows, row_constants
from vllm_int8.ops.split_k_workspace import arrival_counters
from vllm_int8.ops.tma_mm_kernel import launch_tma_scaled_mm, tma_available, tma_layout_problem

# How the kernel gets its A operand: int8 already, or float rows it quantizes itself (the one-launch
# decode path: static scale/azp, or per-row scale/azp computed in the prologue over all of K).
A_INT8, A_QUANT_STATIC, A_QUANT_DYNAMIC = 0, 1, 2


@triton.jit
def _epilogue(
    acc,
    c_ptr,
    scale_a,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp,
    offs_m,
    offs_n,
    M,
    N,
    stride_cm,
    SCALE_B_PER_COL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_AZP_ADJ: tl.constexpr,
    HAS_AZP: tl.constexpr,
):
    """acc (int32) -> `(acc - azp*azp_adj) * scale_a * scale_b + bias`, stored once.

    scale_a: a scalar or one value per row ([BLOCK_M, 1]); azp: int32 per row ([BLOCK_M, 1]).
    """
    out = scaled_tile(acc, scale_a, scale_b_ptr, bias_ptr, azp_adj_ptr, azp, offs_n, N, SCALE_B_PER_COL, HAS_BIAS,
                      HAS_AZP_ADJ, HAS_AZP)  # fmt: skip
    mask_m = offs_m < M
    mask_n = offs_n < N
    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :]
    tl.store(c_ptrs, out.to(c_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


@triton.jit
def _row_scale_and_azp(a_ptr, offs_m, M, K, stride_am, stride_ak, BLOCK_K: tl.constexpr, SYMMETRIC: tl.constexpr):
    """Per-row dynamic scale and azp of rows `offs_m` over all of K, with the quant kernel's own
    helpers (so the values are the quant kernel's bit for bit: max/min are exact in any order)."""
    rows = offs_m < M
    hi = tl.zeros((offs_m.shape[0],), dtype=tl.float32)  # the range always contains 0
    lo = tl.zeros((offs_m.shape[0],), dtype=tl.float32)
    for start in range(0, K, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        mask = rows[:, None] & (offs_k < K)[None, :]
        ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :].to(tl.int64) * stride_ak
        x = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
        block_hi, block_lo = block_stats(x, 1)
        hi = tl.maximum(hi, block_hi)
        lo = tl.minimum(lo, block_lo)
    # Rows past M (never stored) read only zeros: scale 0.
    scale, azp = dynamic_scale_and_azp(hi, lo, SYMMETRIC)
    return scale[:, None], azp[:, None]


@triton.jit
def _a_tile(a_ptrs, mask, MASKED: tl.constexpr, A_MODE: tl.constexpr, A_ROWS: tl.constexpr, BLOCK_M: tl.constexpr,
            BLOCK_K: tl.constexpr, divisor, recip, fast, azp_q, lo_q, hi_q):  # fmt: skip
    """One K-step's activation tile as int8, quantized here where the kernel quantizes A (masked
    K lanes quantize to azp, but meet b == 0 there)."""
    if MASKED:
        a = tl.load(a_ptrs, mask=mask, other=0)
    else:
        a = tl.load(a_ptrs)
    if A_MODE != 0:
        a = quantize_rows(a.to(tl.float32), divisor, recip, fast, azp_q, lo_q, hi_q, LOW_BYTE=False)
        if A_ROWS == 1:
            a = tl.broadcast_to(a, (BLOCK_M, BLOCK_K))
    return a


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
    A_MODE: tl.constexpr = 0,  # A_INT8 / A_QUANT_STATIC / A_QUANT_DYNAMIC
    SYMMETRIC: tl.constexpr = True,  # quantizing A: without a zero point
    A_ROWS: tl.constexpr = 0,  # quantizing A: rows to quantize per tile, 1 when M == 1 (else BLOCK_M)
    SWAP_AB: tl.constexpr = False,  # decode: C^T = B^T A^T, so the weight fills the MMA's wide M side
    MASK_A_ROWS: tl.constexpr = False,  # M < BLOCK_M: load rows < M only (see kernel_constexprs)
    PDL: tl.constexpr = 0,  # launched with PDL: wait for the kernel before; 2: trigger the next early
    EARLY_B: tl.constexpr = 0,  # static weights: K-steps of the weight loaded before the PDL wait (0-2)
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
    a_rows = offs_m % M
    a_row_ok = (offs_m < M)[:, None]  # used only with MASK_A_ROWS
    if A_ROWS == 1:  # M == 1: quantize the one row once and broadcast it, not BLOCK_M copies of it
        a_rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, 1)
    a_ptrs = a_ptr + a_rows[:, None] * stride_am + offs_k[None, :].to(tl.int64) * stride_ak
    b_ptrs = b_ptr + offs_k[:, None].to(tl.int64) * stride_bk + (offs_n % N)[None, :] * stride_bn

    # A weight no kernel writes (a layer's, after loading) may be read before the wait: its first
    # EARLY_B K-steps stream while the previous kernel ends, and are multiplied after the main loop.
    # Every other load and every store comes after the wait. (EVEN_K only: see early_weight_steps.)
    if EARLY_B >= 1:
        step = (tl.arange(0, BLOCK_K) * 0 + k_first)[:, None]  # as a column: masks of the tile's shape
        b_early0 = tl.load(b_ptrs, mask=step < k_last, other=0)
    if EARLY_B >= 2:
        b_early1 = tl.load(b_ptrs + BLOCK_K * stride_bk, mask=step + 1 < k_last, other=0)
    wait_for_previous_kernel(PDL)

    # The rows' scale and zero point: quantizing A needs them first; else the epilogue loads them.
    if A_MODE == 2:
        # M == 1: wide statistics loads (each is a dependent round trip the main loop waits on; 256
        # wide made the decode GEMM 2x slower). Several rows: BLOCK_K wide (wider ones spilled and
        # failed to compile with Triton 3.6).
        STATS_K: tl.constexpr = 8192 if A_ROWS == 1 else BLOCK_K
        scale_a, azp_f = _row_scale_and_azp(a_ptr, a_rows, M, K, stride_am, stride_ak, STATS_K, SYMMETRIC)
    elif A_MODE == 1:
        scale_a = tl.load(scale_a_ptr)
        azp_f = 0.0 if SYMMETRIC else tl.load(azp_ptr).to(tl.float32)  # the static azp (folded in azp_adj)
    if A_MODE != 0:
        # IEEE division per element, not the reciprocal (whose choice is a branch per tile): only
        # one row is quantized per tile (A_ROWS == 1 in use), so the division costs little here.
        divisor, recip, fast, azp_q, lo_q, hi_q = row_constants(scale_a, azp_f, False)
    else:  # unused: A is int8 already
        divisor, recip, fast, azp_q, lo_q, hi_q = 1.0, 1.0, False, 0, 0.0, 0.0

    if SWAP_AB:
        acc_t = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.int32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    a_early = a_ptrs
    a_ptrs += EARLY_B * BLOCK_K * stride_ak
    b_ptrs += EARLY_B * BLOCK_K * stride_bk
    for k in range(k_first + EARLY_B, k_last):
        if EVEN_K:
            a = _a_tile(a_ptrs, a_row_ok, MASK_A_ROWS, A_MODE, A_ROWS, BLOCK_M, BLOCK_K, divisor, recip, fast, azp_q,
                        lo_q, hi_q)  # fmt: skip
            b = tl.load(b_ptrs)
        else:  # only when K has no power-of-two factor >= MIN_BLOCK_K (see fit_block_k)
            k_left = K - k * BLOCK_K
            a_mask = tl.arange(0, BLOCK_K)[None, :] < k_left
            if MASK_A_ROWS:
                a_mask = a_mask & a_row_ok
            a = _a_tile(a_ptrs, a_mask, True, A_MODE, A_ROWS, BLOCK_M, BLOCK_K, divisor, recip, fast, azp_q, lo_q,
                        hi_q)  # fmt: skip
            b = tl.load(b_ptrs, mask=tl.arange(0, BLOCK_K)[:, None] < k_left, other=0)
        if SWAP_AB:  # both operands stay K-major (what int8 MMAs need); only the roles change
            acc_t = tl.dot(tl.trans(b), tl.trans(a), acc_t, out_dtype=tl.int32)
        else:
            acc = tl.dot(a, b, acc, out_dtype=tl.int32)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    # The early weight steps last (int32 sums are exact in any order); a step past a short K-slice
    # loaded zeros and reads no activation.
    if EARLY_B >= 1:
        if k_first < k_last:
            a = _a_tile(a_early, a_row_ok, MASK_A_ROWS, A_MODE, A_ROWS, BLOCK_M, BLOCK_K, divisor, recip, fast,
                        azp_q, lo_q, hi_q)  # fmt: skip
            if SWAP_AB:
                acc_t = tl.dot(tl.trans(b_early0), tl.trans(a), acc_t, out_dtype=tl.int32)
            else:
                acc = tl.dot(a, b_early0, acc, out_dtype=tl.int32)
    if EARLY_B >= 2:
        if k_first + 1 < k_last:
            a = _a_tile(a_early + BLOCK_K * stride_ak, a_row_ok, MASK_A_ROWS, A_MODE, A_ROWS, BLOCK_M, BLOCK_K,
                        divisor, recip, fast, azp_q, lo_q, hi_q)  # fmt: skip
            if SWAP_AB:
                acc_t = tl.dot(tl.trans(b_early1), tl.trans(a), acc_t, out_dtype=tl.int32)
            else:
                acc = tl.dot(a, b_early1, acc, out_dtype=tl.int32)
    if SWAP_AB:
        acc = tl.trans(acc_t)

    if SPLIT_K > 1:
        tile_elems: tl.constexpr = BLOCK_M * BLOCK_N
        tile_offs = tl.arange(0, BLOCK_M)[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
        tile_slots = workspace_ptr + pid.to(tl.int64) * (SPLIT_K * tile_elems) + tile_offs
        tl.store(tile_slots + tl.program_id(1) * tile_elems, acc)
        # Every thread's slot stores must be done before one thread publishes the arrival: the
        # counter's release orders only that thread's own writes, and AMD's lowering puts its
        # barrier after a scalar atomic, not before. The barrier makes all of them prior to it.
        tl.debug_barrier()
        arrived = tl.atomic_add(counter_ptr + pid, 1, sem="acq_rel")
        is_last = arrived == SPLIT_K - 1
        if is_last:
            tl.atomic_xchg(counter_ptr + pid, 0, sem="relaxed")  # zero again for the next launch
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
            for s in tl.static_range(SPLIT_K):  # ".cg": read the other SMs' slots from L2
                acc += tl.load(tile_slots + s * tile_elems, cache_modifier=".cg")
    else:
        is_last = True

    if is_last:
        if A_MODE == 0:
            if SCALE_A_PER_ROW:
                scale_a = tl.load(scale_a_ptr + offs_m, mask=offs_m < M, other=0.0)[:, None]
            else:
                scale_a = tl.load(scale_a_ptr)
        if HAS_AZP:
            if A_MODE == 2:
                azp = azp_f.to(tl.int32)
            else:
                azp = tl.load(azp_ptr + offs_m, mask=offs_m < M, other=0)[:, None]
        else:
            azp = 0
        _epilogue(
            acc, c_ptr, scale_a, scale_b_ptr, bias_ptr, azp_adj_ptr, azp, offs_m, offs_n, M, N, stride_cm,
            SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP,
        )  # fmt: skip


_launch_log: list[tuple[int, int, int, MMConfig]] | None = None


@contextlib.contextmanager
def record_launches() -> Iterator[list[tuple[int, int, int, MMConfig]]]:
    """Collect (M, N, K, config) of every GEMM launch in the block (tests and the stress test use
    it to show which split_k a launch, captured or not, really used)."""
    global _launch_log
    previous, _launch_log = _launch_log, []
    try:
        yield _launch_log
    finally:
        _launch_log = previous


def flat_contiguous(t: torch.Tensor | None) -> torch.Tensor | None:
    """A 1-D contiguous view (or copy) of a small per-row/per-column vector: the kernels index
    scales, bias and zero-point terms as dense arrays, so a strided view must be copied first."""
    if t is None:
        return None
    t = t.reshape(-1)
    return t if t.stride(0) == 1 or t.numel() <= 1 else t.contiguous()


def kernel_constexprs(
    m: int,
    n: int,
    k: int,
    cfg: MMConfig,
    scale_a_numel: int,
    scale_b_numel: int,
    has_bias: bool,
    has_azp_adj: bool,
    has_azp: bool,
    a_mode: int = A_INT8,
    symmetric: bool = True,
) -> tuple[tuple[int, int], dict[str, int | bool]]:
    """(grid, constexprs and compile options) of one launch: the launcher and the ROCm compile
    gate both build launches here, so what the gate compiles is what a launch runs."""
    tiles = triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n)
    constexprs = {
        "SCALE_A_PER_ROW": scale_a_numel > 1,
        "SCALE_B_PER_COL": scale_b_numel > 1,
        "HAS_BIAS": has_bias,
        "HAS_AZP_ADJ": has_azp_adj,
        "HAS_AZP": has_azp,
        "EVEN_K": k % cfg.block_k == 0,
        "BLOCK_M": cfg.block_m,
        "BLOCK_N": cfg.block_n,
        "BLOCK_K": cfg.block_k,
        "GROUP_M": cfg.group_m,
        "SPLIT_K": cfg.split_k,
        "A_MODE": a_mode,
        "SYMMETRIC": symmetric,
        "A_ROWS": 0 if a_mode == A_INT8 else (1 if m == 1 else cfg.block_m),
        "SWAP_AB": bool(cfg.swap_ab),
        # A single tile row with fewer rows than the tile (decode): the re-read rows would be copies
        # of the few real ones, every program asking the same L2 lines for them at once. On the
        # H100 (2026-11-26, Llama-3-8B qkv, one config): 15.8 us at M = 1 against 13.4 at M = 16;
        # masked, 13.2. One-row quantizing launches already load the row once (A_ROWS == 1).
        "MASK_A_ROWS": m < cfg.block_m and not (a_mode != A_INT8 and m == 1),
        **cfg.compile_options(),
    }
    return (tiles, cfg.split_k), constexprs


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
    static_weight: bool = False,
) -> torch.Tensor:
    """One launch of the fused GEMM (arguments already validated; `config` overrides the tile choice).

    Scales, bias and zero-point terms may be strided views: they are made dense here (cheap, they
    are vectors). `input` and `weight` strides are passed to the kernel as they are.
    `static_weight`: no kernel writes `weight` (a layer's), so it may be read before the PDL wait.
    """
    return _launch(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp, azp is not None, A_INT8, True,
                   config, static_weight)  # fmt: skip


def launch_quant_scaled_mm(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None,
    azp_adj: torch.Tensor | None,
    input_scale: torch.Tensor | None,
    input_zero_point: torch.Tensor | None,
    symmetric: bool,
    config: MMConfig | None = None,
    static_weight: bool = False,
) -> torch.Tensor:
    """Quantize float rows x [M, K] inside the GEMM and multiply, in one launch (the decode path).

    Equal bit for bit to `scaled_int8_quant` followed by `launch_scaled_mm`. Dynamic
    (`input_scale` None): each program computes its rows' scale and azp over all of K first.
    Static: `input_scale` (and `input_zero_point` when asymmetric; then `azp_adj` is already
    folded with it, as the layer stores it).
    """
    mode, scale_a, azp, has_azp = quant_a_operands(scale_b, input_scale, input_zero_point, symmetric)
    return _launch(x, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp, has_azp, mode, symmetric, config,
                   static_weight)  # fmt: skip


def quant_a_operands(scale_b, input_scale, input_zero_point, symmetric: bool):
    """(A mode, scale_a, azp pointer, HAS_AZP) of a launch that quantizes A in the kernel.

    Dynamic: scale_a and the per-row azp are computed in the kernel (any small tensor fills the
    unused scale_a pointer). Static: the input scale, and the zero point for quantizing (its
    correction is already folded into azp_adj, so the epilogue has no per-row azp).
    """
    if input_scale is None:
        return A_QUANT_DYNAMIC, scale_b, None, not symmetric
    return A_QUANT_STATIC, input_scale, input_zero_point, False


def _launch(a, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp, has_azp, a_mode, symmetric, config,
            static_weight):  # fmt: skip
    m, n = a.shape[0], weight.shape[1]
    out = torch.empty((m, n), dtype=out_dtype, device=a.device)
    if m == 0 or n == 0:
        return out
    cfg = gemm_config(m, n, a.shape[1], a.device, config)
    if a_mode == A_INT8 and runs_tma(cfg, a, weight, out):
        if _launch_log is not None:
            _launch_log.append((m, n, a.shape[1], cfg))
        vectors = (flat_contiguous(t) for t in (scale_a, scale_b, bias, azp_adj, azp))
        return launch_tma_scaled_mm(a, weight, out, *vectors, cfg)
    cfg = pointer_config(cfg)
    grid, args, constexprs = launch_arguments(
        a, weight, out, scale_a, scale_b, bias, azp_adj, azp, has_azp, a_mode, symmetric, cfg, static_weight
    )
    if _launch_log is not None:
        _launch_log.append((m, n, a.shape[1], cfg))
    _scaled_mm_kernel[grid](*args, **constexprs)
    return out


def gemm_config(m: int, n: int, k: int, device: torch.device, config: MMConfig | None = None) -> MMConfig:
    """The tiles a GEMM of this size launches with, for ordinary launches and both kinds of plan:
    `config`, else the tuned table's or the rule's (`select_config`), BLOCK_K fitted to K."""
    return fit_block_k(config or select_config(m, n, k, device), k)


def runs_tma(cfg: MMConfig, a: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether a GEMM of int8 rows `a` with tiles `cfg` runs the TMA kernel: the one place that
    decides it for ordinary launches and for the layer's and the ops' launch plans. A TMA config
    runs on the pointer kernel (`pointer_config`) where this GPU or these layouts cannot take TMA."""
    return bool(cfg.tma) and tma_available(a.device) and tma_layout_problem(a, weight, out) is None


def pointer_config(cfg: MMConfig) -> MMConfig:
    """The same tiles on the pointer kernel (a TMA config where TMA cannot run)."""
    return dataclasses.replace(cfg, tma=0, subtile=0, warp_specialize=0) if cfg.tma else cfg


MIN_BLOCK_K = 32


def fit_block_k(cfg: MMConfig, k: int) -> MMConfig:
    """Halve BLOCK_K (not below MIN_BLOCK_K) until it divides K, so the main loop needs no masks.

    Masked loads in the pipelined loop cost registers and pipelining: compiled for gfx942, every
    ragged-K variant of the heuristic's tiles spilled (80-190 VGPRs). Real layers have K a multiple
    of 64 or more; only K with no power-of-two factor >= 32 keeps the masked loop.
    """
    block_k = cfg.block_k
    while k % block_k and block_k > MIN_BLOCK_K:
        block_k //= 2
    return cfg if block_k == cfg.block_k else dataclasses.replace(cfg, block_k=block_k)


def launch_arguments(a, weight, out, scale_a, scale_b, bias, azp_adj, azp, has_azp, a_mode, symmetric, cfg,
                     static_weight=False):  # fmt: skip
    """(grid, positional arguments, constexprs and options) of one kernel launch.

    The launcher runs exactly this; the ROCm compile gate calls it with meta tensors, so what the
    gate compiles is what a launch would run (same specialization, constexprs and options).
    """
    m, k = a.shape
    n = weight.shape[1]
    cfg = fit_block_k(cfg, k)
    scale_a, scale_b = flat_contiguous(scale_a), flat_contiguous(scale_b)
    bias, azp_adj, azp = flat_contiguous(bias), flat_contiguous(azp_adj), flat_contiguous(azp)
    grid, constexprs = kernel_constexprs(
        m, n, k, cfg, scale_a.numel() if a_mode == A_INT8 else 1, scale_b.numel(), bias is not None,
        azp_adj is not None, has_azp, a_mode, symmetric,
    )  # fmt: skip
    constexprs.update(gemm_pdl_options(out.device, m))
    early = early_weight_steps(out.device, m, static_weight, constexprs["EVEN_K"])
    if early:
        constexprs["EARLY_B"] = early
    workspace = counters = None
    if cfg.split_k > 1:
        tiles = grid[0]
        workspace = torch.empty(tiles * cfg.split_k * cfg.block_m * cfg.block_n, dtype=torch.int32, device=out.device)
        counters = arrival_counters(out.device, tiles)
    args = (a, weight, out, scale_a, scale_b, bias, azp_adj, azp, workspace, counters, m, n, k,
            a.stride(0), a.stride(1), weight.stride(0), weight.stride(1), out.stride(0))  # fmt: skip
    return grid, args, constexprs
