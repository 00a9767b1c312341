"""Triton int8 activation quantization: static per-tensor or dynamic per-token, with or without azp.

The math is the reference's (`reference.py`) step for step, so results match it bit for bit:
IEEE division (`div_rn`, not the approximate `/`), round half to even through the fp32
magic-number trick (portable to CUDA, ROCm and the interpreter, unlike libdevice's rint).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vllm_int8.ops.launch_overlap import quant_pdl_options, wait_for_previous_kernel
from vllm_int8.ops.reference import QUOTIENT_CLAMP

# Rows up to this many elements are quantized from registers in one pass over memory; longer
# rows are read twice (statistics, then quantization), the second read mostly hitting cache.
MAX_ONE_PASS_BLOCK = 32768
MAX_ONE_PASS_BLOCK_LARGE_M = 8192  # for batches over ONE_PASS_LONG_ROWS_MAX_M rows (see _launch_shape)
ONE_PASS_LONG_ROWS_MAX_M = 128
TWO_PASS_BLOCK_MAX_K, TWO_PASS_BLOCK_SHORT, TWO_PASS_BLOCK_LONG, TWO_PASS_WARPS = 16384, 2048, 4096, 8
MIN_PROGRAM_ELEMENTS = 4096
# Small batches of long rows: a row's quantization (an IEEE division per element) is spread over
# SPLIT programs (at most MAX_SPLIT), each quantizing at least MIN_SLICE elements; every program
# reads the whole row for its statistics (from L2 after the first), so M * SPLIT programs share the
# work of M. H100, 2026-11-26 (kernels/results/sweep_quant_*.log): K=28672, M=1: 10.0 -> 6.9 µs;
# K=14336: 6.5 -> 3.3 µs; K=4096: 3.1 -> 2.5 µs.
SPLIT_ROWS_MAX_M, SPLIT_TARGET_PROGRAMS, MIN_SLICE, MAX_SPLIT = 16, 128, 512, 16
_CLAMP = tl.constexpr(QUOTIENT_CLAMP)


@triton.jit
def round_half_even(v):
    """Round fp32 |v| < 2**22 to the nearest integer, ties to even (adding 1.5 * 2**23 does it)."""
    return (v + 12582912.0) - 12582912.0


@triton.jit
def quantize_block(x, scale, azp):
    """clamp(round(x / scale) + azp, -128, 127) as int8; zero scale or NaN quotient -> azp."""
    nonzero = scale != 0.0
    v = tl.where(nonzero, tl.math.div_rn(x, tl.where(nonzero, scale, 1.0)), 0.0)
    v = tl.where(v == v, v, 0.0)
    v = tl.minimum(tl.maximum(v, -_CLAMP), _CLAMP)
    q = round_half_even(v) + azp
    return tl.minimum(tl.maximum(q, -128.0), 127.0).to(tl.int8)


@triton.jit
def block_stats(x, mask, axis: tl.constexpr):
    """(max, min) of the valid lanes along `axis`; a NaN counts as +inf, so one reduction each catches it."""
    x = tl.where(x == x, x, float("inf"))
    hi = tl.max(tl.where(mask, x, float("-inf")), axis=axis)
    lo = tl.min(tl.where(mask, x, float("inf")), axis=axis)
    return hi, lo


@triton.jit
def dynamic_scale_and_azp(hi, lo, SYMMETRIC: tl.constexpr):
    """Row scale (and azp) from its range; a range with +-inf or NaN (seen as inf) -> (NaN, 0)."""
    if SYMMETRIC:
        scale = tl.math.div_rn(tl.maximum(hi, -lo), 127.0)
        azp = 0.0
    else:
        hi = tl.maximum(hi, 0.0)
        lo = tl.minimum(lo, 0.0)
        scale = tl.math.div_rn(hi - lo, 255.0)
        nonzero = scale != 0.0
        azp = tl.where(nonzero, -128.0 - tl.math.div_rn(lo, tl.where(nonzero, scale, 1.0)), 0.0)
    bad = scale == float("inf")
    azp = tl.where(bad, 0.0, round_half_even(azp))
    scale = tl.where(bad, float("nan"), scale)
    return scale, azp


@triton.jit(do_not_specialize=["M"])
def _scaled_int8_quant_kernel(
    x_ptr,
    q_ptr,
    scale_ptr,
    azp_ptr,
    M,
    K,
    stride_xm,
    STATIC: tl.constexpr,
    SYMMETRIC: tl.constexpr,
    ONE_PASS: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SPLIT: tl.constexpr,
    PDL: tl.constexpr = 0,  # launched with PDL: wait for the kernel before; 2: trigger the next early
):
    wait_for_previous_kernel(PDL)  # before any load or store
    if ONE_PASS:  # ROWS whole rows per program, each read once from memory into registers
        rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
        offs = tl.arange(0, BLOCK)
        mask = (rows < M)[:, None] & (offs < K)[None, :]
        x = tl.load(x_ptr + rows[:, None] * stride_xm + offs[None, :], mask=mask, other=0.0).to(tl.float32)
        if STATIC:
            scale = tl.load(scale_ptr)
            azp = 0.0 if SYMMETRIC else tl.load(azp_ptr).to(tl.float32)
        else:
            hi, lo = block_stats(x, mask, 1)
            scale, azp = dynamic_scale_and_azp(hi, lo, SYMMETRIC)
            if tl.program_id(1) == 0:  # with SPLIT > 1 every program of a row has its statistics
                tl.store(scale_ptr + rows, scale, mask=rows < M)
                if not SYMMETRIC:
                    tl.store(azp_ptr + rows, azp.to(tl.int32), mask=rows < M)
            scale, azp = scale[:, None], azp[:, None]
        if SPLIT > 1:  # quantize this program's slice of the rows only (re-read from cache)
            offs = tl.program_id(1) * (BLOCK // SPLIT) + tl.arange(0, BLOCK // SPLIT)
            mask = (rows < M)[:, None] & (offs < K)[None, :]
            x = tl.load(x_ptr + rows[:, None] * stride_xm + offs[None, :], mask=mask, other=0.0).to(tl.float32)
        tl.store(q_ptr + rows[:, None] * K + offs[None, :], quantize_block(x, scale, azp), mask=mask)
    else:  # rows longer than registers hold: statistics first, then quantize (the re-read mostly hits L2)
        row = tl.program_id(0).to(tl.int64)
        x_row = x_ptr + row * stride_xm
        q_row = q_ptr + row * K
        offs = tl.arange(0, BLOCK)
        if STATIC:
            scale = tl.load(scale_ptr)
            azp = 0.0 if SYMMETRIC else tl.load(azp_ptr).to(tl.float32)
        else:
            hi = float("-inf")
            lo = float("inf")
            for start in range(0, K, BLOCK):
                mask = start + offs < K
                x = tl.load(x_row + start + offs, mask=mask, other=0.0).to(tl.float32)
                block_hi, block_lo = block_stats(x, mask, 0)
                hi = tl.maximum(hi, block_hi)
                lo = tl.minimum(lo, block_lo)
            scale, azp = dynamic_scale_and_azp(hi, lo, SYMMETRIC)
            tl.store(scale_ptr + row, scale)
            if not SYMMETRIC:
                tl.store(azp_ptr + row, azp.to(tl.int32))
        for start in range(0, K, BLOCK):
            mask = start + offs < K
            x = tl.load(x_row + start + offs, mask=mask, other=0.0).to(tl.float32)
            tl.store(q_row + start + offs, quantize_block(x, scale, azp), mask=mask)


def _launch_shape(k: int, m: int) -> tuple[bool, int, int, int, int]:
    """(one pass?, rows per program, block, warps, programs per row) for m rows of k elements.

    Short rows are packed MIN_PROGRAM_ELEMENTS to a program, so that a program moves enough bytes
    to hide its latency. Long rows (down_proj: K = 14336, 18944, 28672) go in one pass only for
    small batches, where latency rules (K=14336, M=16: 6.8 µs against 8.8); from M = 256 the
    two-pass loop streams better, since a whole long row in registers leaves one program per SM.
    Its block and warps: `kernels/sweep_quant.py`, H100, 2026-11-26 - 2048 elements and 8 warps for
    K <= 16384 (K=14336, M=4096: 104 µs against 127 with 4096 and 16 warps), 4096 and 8 above.
    Up to SPLIT_ROWS_MAX_M rows, a long row is quantized by several programs (one SM alone spent
    ~10 µs dividing a 28672-element row).
    """
    block = triton.next_power_of_2(k)
    if block > (MAX_ONE_PASS_BLOCK if m <= ONE_PASS_LONG_ROWS_MAX_M else MAX_ONE_PASS_BLOCK_LARGE_M):
        two_pass_block = TWO_PASS_BLOCK_SHORT if k <= TWO_PASS_BLOCK_MAX_K else TWO_PASS_BLOCK_LONG
        return False, 1, two_pass_block, TWO_PASS_WARPS, 1
    rows = max(1, MIN_PROGRAM_ELEMENTS // block)
    split = 1
    if m <= SPLIT_ROWS_MAX_M:
        split = max(1, min(MAX_SPLIT, block // MIN_SLICE, triton.next_power_of_2(SPLIT_TARGET_PROGRAMS // m)))
    return True, rows, block, max(1, min(16, rows * block // 512)), split


def launch_scaled_int8_quant(
    x: torch.Tensor,
    scale: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    symmetric: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Launch the quant kernel (arguments already validated). See `vllm_int8.ops.scaled_int8_quant`."""
    k = x.shape[-1]
    rows = x.reshape(-1, k)
    if rows.stride(-1) != 1:
        rows = rows.contiguous()
    m = rows.shape[0]
    q = torch.empty(x.shape, dtype=torch.int8, device=x.device)
    static = scale is not None
    if not static:
        scale = torch.empty((m, 1), dtype=torch.float32, device=x.device)
        azp = None if symmetric else torch.empty((m, 1), dtype=torch.int32, device=x.device)
    if m > 0:
        grid, args, constexprs = quant_launch_arguments(rows, q, scale, azp, static, symmetric)
        _scaled_int8_quant_kernel[grid](*args, **constexprs)
    return q, scale, (None if symmetric else azp)


def quant_launch_arguments(rows, q, scale, azp, static: bool, symmetric: bool):
    """(grid, positional arguments, constexprs and options) of one quant launch over rows [M, K]
    (the launcher runs exactly this; the ROCm compile gate calls it with meta tensors)."""
    m, k = rows.shape
    one_pass, rows_per_program, block, warps, split = _launch_shape(k, m)
    args = (rows, q, scale, scale if azp is None else azp, m, k, rows.stride(0))  # azp unread when symmetric
    grid = (triton.cdiv(m, rows_per_program), split)
    constexprs = {"STATIC": static, "SYMMETRIC": symmetric, "ONE_PASS": one_pass, "ROWS": rows_per_program,
                  "BLOCK": block, "SPLIT": split, "num_warps": warps, "enable_fp_fusion": False,
                  **quant_pdl_options(q.device, grid[0] * grid[1])}  # fmt: skip
    return grid, args, constexprs
