"""Triton int8 activation quantization: static per-tensor or dynamic per-token, with or without azp.

The results are the reference's (`reference.py`) bit for bit: the same IEEE quotient x / scale
(computed from the row's reciprocal with one FMA correction, which yields the IEEE quotient, see
`divide_by_row`), round half to even, the same clamps.
"""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from vllm_int8.ops.pdl import quant_pdl_options, wait_for_previous_kernel
from vllm_int8.ops.reference import QUOTIENT_CLAMP

# Rows up to this many elements are quantized from registers in one pass over memory; longer
# rows are read twice (statistics, then quantization), the second read mostly hitting cache.
MAX_ONE_PASS_BLOCK = 32768
MAX_ONE_PASS_BLOCK_LARGE_M = 16384  # for batches over ONE_PASS_LONG_ROWS_MAX_M rows (see _launch_shape)
ONE_PASS_LONG_ROWS_MAX_M = 128
TWO_PASS_BLOCK, TWO_PASS_WARPS = 4096, 8
MIN_PROGRAM_ELEMENTS = 4096
# Small batches: a row's quantization is spread over SPLIT programs (at most MAX_SPLIT), each
# quantizing at least MIN_SLICE elements; every program reads the whole row for its statistics
# (from L2 after the first), so M * SPLIT programs share the work of M.
SPLIT_ROWS_MAX_M, SPLIT_TARGET_PROGRAMS, MIN_SLICE, MAX_SPLIT = 64, 128, 512, 16
_CLAMP = tl.constexpr(QUOTIENT_CLAMP)
# Beyond these zero points every quotient saturates alike (|quotient| <= QUOTIENT_CLAMP), so the
# zero point is limited to them, which keeps the quotient bounds of `row_constants` ordered.
_AZP_LO = tl.constexpr(-QUOTIENT_CLAMP - 128.0)
_AZP_HI = tl.constexpr(QUOTIENT_CLAMP + 127.0)
# Scales whose reciprocal-and-correction quotient is the IEEE one (see divide_by_row); a quotient
# this large or larger is saturated whatever its last bits, so it needs no correction.
RECIPROCAL_MIN_SCALE, RECIPROCAL_MAX_SCALE, UNCORRECTED_QUOTIENT = 2.0**-60, 2.0**60, 2.0**20
_RECIP_MIN = tl.constexpr(RECIPROCAL_MIN_SCALE)
_RECIP_MAX = tl.constexpr(RECIPROCAL_MAX_SCALE)
_UNCORRECTED = tl.constexpr(UNCORRECTED_QUOTIENT)
# Adding 1.5 * 2**23 to |v| < 2**22 rounds it to an integer, half to even, held in the low bits.
_ROUNDER = tl.constexpr(12582912.0)


@triton.jit
def round_half_even(v):
    """Round fp32 |v| < 2**22 to the nearest integer, ties to even."""
    return (v + _ROUNDER) - _ROUNDER


@triton.jit
def row_constants(scale, azp, RECIPROCAL: tl.constexpr):
    """What `quantize_rows` needs of a row's (or the tensor's) scale and float azp, computed once.

    divisor: the scale, +inf for a zero one (its quotients are 0, or NaN for a non-finite x, as
    the reference's); recip: its IEEE reciprocal; fast: whether every divisor here allows the
    reciprocal quotient (a scalar, so the choice is one branch); azp as int32, limited to
    [_AZP_LO, _AZP_HI]; [lo, hi]: the quotients whose rounded value plus azp is an int8 (within
    +-QUOTIENT_CLAMP), so clamping to them replaces the reference's two clamps.
    """
    divisor = tl.where(scale != 0.0, scale, float("inf"))
    recip = tl.math.div_rn(1.0, divisor)
    size = tl.abs(divisor)
    slow = (size < _RECIP_MIN) | ((size > _RECIP_MAX) & (size != float("inf")))
    if RECIPROCAL:
        fast = tl.max(slow.to(tl.int32) + tl.zeros((1,), tl.int32), axis=None) == 0  # (a scalar too)
    else:
        fast = False
    azp = tl.minimum(tl.maximum(azp, _AZP_LO), _AZP_HI)
    lo = tl.maximum(-128.0 - azp, -_CLAMP)
    hi = tl.minimum(127.0 - azp, _CLAMP)
    return divisor, recip, fast, azp.to(tl.int32), lo, hi


@triton.jit
def divide_by_row(x, divisor, recip, fast):
    """The IEEE quotient x / divisor (div_rn), without an IEEE division per element when `fast`.

    q0 = x * recip is within about an ulp of it; the FMA residual x - q0 * divisor is exact, and
    q0 + residual * recip rounds to the IEEE quotient (Markstein's correction). Checked against
    div_rn for every bf16 and fp16 significand with every fp32 significand of the divisor, and on
    random pairs of all magnitudes (tests/ops/test_quant_kernel.py). It holds while nothing under-
    or overflows: divisors in [RECIPROCAL_MIN_SCALE, RECIPROCAL_MAX_SCALE] (or +inf: quotient 0),
    quotients below UNCORRECTED_QUOTIENT (larger ones, and +-inf, are saturated anyway) and
    |x| >= 2**-100 (below it the residual is subnormal; such quotients, < 2**-40, round to 0).
    """
    if fast:
        q0 = x * recip
        corrected = tl.fma(tl.fma(q0, -divisor, x), recip, q0)  # -divisor: once per row, not -q0 per element
        v = tl.where(tl.abs(q0) < _UNCORRECTED, corrected, q0)
    else:
        v = tl.math.div_rn(x, divisor)
    return v


@triton.jit
def quantize_rows(x, divisor, recip, fast, azp, lo, hi, LOW_BYTE: tl.constexpr = True):
    """clamp(round_half_even(x / scale) + azp, -128, 127) as int8 (a NaN quotient -> azp), with
    the constants of `row_constants`. LOW_BYTE: rounding leaves round(v) + 1.5 * 2**23 exactly,
    its integer in the low bits, so azp is added there and the int8 is the low byte (no
    float-to-int conversion). Not for a tile that feeds tl.dot: Triton 3.6 moves such elementwise
    work into the dot-operand layout (seen in its TTGIR), and there the bitcast-and-truncate gave
    wrong products on the H100 (tests/ops/test_quant_mm.py, tiles of several rows)."""
    v = divide_by_row(x, divisor, recip, fast)
    v = tl.where(v == v, v, 0.0)
    v = tl.minimum(tl.maximum(v, lo), hi)
    if LOW_BYTE:
        return ((v + _ROUNDER).to(tl.int32, bitcast=True) + azp).to(tl.int8)
    return (round_half_even(v) + azp.to(tl.float32)).to(tl.int8)


@triton.jit
def block_stats(x, axis: tl.constexpr):
    """(max, min) along `axis`, a NaN counting as +inf. Masked-out lanes must hold 0, which changes
    nothing: the asymmetric range is widened to contain 0 anyway (dynamic_scale_and_azp), and the
    symmetric scale takes max(hi, -lo) = max|x| >= 0."""
    x = tl.where(x == x, x, float("inf"))
    return tl.max(x, axis=axis), tl.min(x, axis=axis)


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
    RECIPROCAL: tl.constexpr = True,  # quotients from the row's reciprocal (see divide_by_row)
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
            hi, lo = block_stats(x, 1)
            scale, azp = dynamic_scale_and_azp(hi, lo, SYMMETRIC)
            if tl.program_id(1) == 0:  # with SPLIT > 1 every program of a row has its statistics
                tl.store(scale_ptr + rows, scale, mask=rows < M)
                if not SYMMETRIC:
                    tl.store(azp_ptr + rows, azp.to(tl.int32), mask=rows < M)
            scale, azp = scale[:, None], azp[:, None]
        divisor, recip, fast, azp_i, lo_q, hi_q = row_constants(scale, azp, RECIPROCAL)
        if SPLIT > 1:  # quantize this program's slice of the rows only (re-read from cache)
            offs = tl.program_id(1) * (BLOCK // SPLIT) + tl.arange(0, BLOCK // SPLIT)
            mask = (rows < M)[:, None] & (offs < K)[None, :]
            x = tl.load(x_ptr + rows[:, None] * stride_xm + offs[None, :], mask=mask, other=0.0).to(tl.float32)
        q = quantize_rows(x, divisor, recip, fast, azp_i, lo_q, hi_q)
        tl.store(q_ptr + rows[:, None] * K + offs[None, :], q, mask=mask)
    else:  # rows longer than registers hold: statistics first, then quantize (the re-read mostly hits L2)
        row = tl.program_id(0).to(tl.int64)
        x_row = x_ptr + row * stride_xm
        q_row = q_ptr + row * K
        offs = tl.arange(0, BLOCK)
        if STATIC:
            scale = tl.load(scale_ptr)
            azp = 0.0 if SYMMETRIC else tl.load(azp_ptr).to(tl.float32)
        else:
            hi = 0.0  # the range always contains 0 (see dynamic_scale_and_azp)
            lo = 0.0
            for start in range(0, K, BLOCK):
                x = tl.load(x_row + start + offs, mask=start + offs < K, other=0.0).to(tl.float32)
                block_hi, block_lo = block_stats(x, 0)
                hi = tl.maximum(hi, block_hi)
                lo = tl.minimum(lo, block_lo)
            scale, azp = dynamic_scale_and_azp(hi, lo, SYMMETRIC)
            tl.store(scale_ptr + row, scale)
            if not SYMMETRIC:
                tl.store(azp_ptr + row, azp.to(tl.int32))
        divisor, recip, fast, azp_i, lo_q, hi_q = row_constants(scale, azp, RECIPROCAL)
        for start in range(0, K, BLOCK):
            mask = start + offs < K
            x = tl.load(x_row + start + offs, mask=mask, other=0.0).to(tl.float32)
            tl.store(q_row + start + offs, quantize_rows(x, divisor, recip, fast, azp_i, lo_q, hi_q), mask=mask)


@functools.cache
def reciprocal_quotients() -> bool:
    """Whether kernels may take quotients from the reciprocal (`divide_by_row`): always on GPUs;
    Triton's CPU interpreter only where its `tl.fma` rounds once (older ones multiply, then add)."""
    if os.environ.get("TRITON_INTERPRET", "0") in ("0", ""):
        return True
    from triton._C.libtriton import interpreter

    return hasattr(interpreter, "fma_fp32")


def _launch_shape(k: int, m: int) -> tuple[bool, int, int, int, int]:
    """(one pass?, rows per program, block, warps, programs per row) for m rows of k elements.

    Short rows are packed MIN_PROGRAM_ELEMENTS to a program, so that a program moves enough bytes
    to hide its latency. `d3b4b33:kernels/sweep_quant.py` on an H100, 2026-11-26, with the reciprocal
    quotients (d3b4b33:kernels/results/sweep_quant_reciprocal_*.log): rows of up to 16384 elements go in one pass at
    every M (K=14336, M=256 / 4096: 8.2 / 80.7 µs against 10.8 / 87.5 for the two-pass loop);
    rows of up to 32768 only up to ONE_PASS_LONG_ROWS_MAX_M rows: beyond, the two-pass loop
    (4096 elements, 8 warps) streams as well (K=28672, M=256 / 4096: 15.0 / 165 µs either way)
    and needs no 16-warp program per row. Up to SPLIT_ROWS_MAX_M rows a row is spread over
    several programs, about SPLIT_TARGET_PROGRAMS in all (K=28672, M=1: 5.6 -> 3.2 µs; M=64,
    two per row: 6.8 -> 5.7 µs).
    """
    block = triton.next_power_of_2(k)
    if block > (MAX_ONE_PASS_BLOCK if m <= ONE_PASS_LONG_ROWS_MAX_M else MAX_ONE_PASS_BLOCK_LARGE_M):
        return False, 1, TWO_PASS_BLOCK, TWO_PASS_WARPS, 1
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
                  "BLOCK": block, "SPLIT": split, "RECIPROCAL": reciprocal_quotients(), "num_warps": warps,
                  "enable_fp_fusion": False,
                  **quant_pdl_options(q.device, grid[0] * grid[1])}  # fmt: skip
    return grid, args, constexprs
