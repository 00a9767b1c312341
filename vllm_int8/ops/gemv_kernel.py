"""One-row decode GEMM without a matrix unit: each program holds whole weight rows in registers.

At M = 1 the GEMM is a weight read. The tile kernel (`scaled_mm_kernel`) streams its weight
through a software pipeline that starts after the PDL wait, so each launch pays a ramp and a tail
in which HBM idles. Here a program loads BLOCK_N whole weight rows (all of K, about `TILE_BYTES`)
at once, and for a layer's weight (static: no kernel writes it) it issues those loads *before*
the wait: the weight streams while the kernel before it still runs. After the wait it reads the
one activation row (quantizing it itself, bit for bit as the quant kernel does, when given float
rows), multiplies in int32 on the CUDA cores and runs the same epilogue as the tile kernel.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch
import triton
import triton.language as tl

from vllm_int8.ops.epilogue import scaled_tile
from vllm_int8.ops.pdl import wait_for_previous_kernel
from vllm_int8.ops.quant_kernel import block_stats, dynamic_scale_and_azp, quantize_rows, row_constants
from vllm_int8.ops.split_k_workspace import device_index
from vllm_int8.platform import device_info

TILE_BYTES = 65536  # weight bytes a program holds: 64 registers per thread at 8 warps
MAX_BLOCK_K = 32768  # longer rows than this take the tile kernel
NUM_WARPS = 8


@triton.jit
def _gemv_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    scale_a_ptr,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp_ptr,
    N,
    K,
    stride_ak,
    stride_bk,
    stride_bn,
    SCALE_B_PER_COL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_AZP_ADJ: tl.constexpr,
    HAS_AZP: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,  # a power of two >= K: the whole row
    A_MODE: tl.constexpr = 0,  # A_INT8 / A_QUANT_STATIC / A_QUANT_DYNAMIC (scaled_mm_kernel)
    SYMMETRIC: tl.constexpr = True,
    RECIPROCAL: tl.constexpr = True,  # quotients as the quant kernel takes them (quant_kernel.reciprocal_quotients)
    PDL: tl.constexpr = 0,
    EARLY_W: tl.constexpr = False,  # static weight: load it before the PDL wait
):
    offs_n = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    k_ok = offs_k < K
    w_ptrs = b_ptr + offs_n[:, None] * stride_bn + offs_k[None, :].to(tl.int64) * stride_bk
    w_mask = (offs_n < N)[:, None] & k_ok[None, :]
    if EARLY_W:
        w = tl.load(w_ptrs, mask=w_mask, other=0)
    wait_for_previous_kernel(PDL)
    if not EARLY_W:
        w = tl.load(w_ptrs, mask=w_mask, other=0)

    if A_MODE == 0:
        a = tl.load(a_ptr + offs_k * stride_ak, mask=k_ok, other=0)
        scale_a = tl.load(scale_a_ptr)
        azp = tl.load(azp_ptr) if HAS_AZP else 0
    else:
        x = tl.load(a_ptr + offs_k * stride_ak, mask=k_ok, other=0.0).to(tl.float32)
        if A_MODE == 2:
            hi, lo = block_stats(x, 0)
            scale_a, azp_f = dynamic_scale_and_azp(hi, lo, SYMMETRIC)
        else:  # static: the tensor's scale (and azp, already folded into azp_adj)
            scale_a = tl.load(scale_a_ptr)
            azp_f = 0.0 if SYMMETRIC else tl.load(azp_ptr).to(tl.float32)
        divisor, recip, fast, azp_q, lo_q, hi_q = row_constants(scale_a, azp_f, RECIPROCAL)
        a = tl.where(k_ok, quantize_rows(x, divisor, recip, fast, azp_q, lo_q, hi_q), 0)
        azp = azp_q if HAS_AZP else 0

    acc = tl.sum(w.to(tl.int32) * a.to(tl.int32)[None, :], axis=1)  # exact: int32, wrapping
    out = scaled_tile(acc[None, :], scale_a, scale_b_ptr, bias_ptr, azp_adj_ptr, azp, offs_n, N, SCALE_B_PER_COL,
                      HAS_BIAS, HAS_AZP_ADJ, HAS_AZP)  # fmt: skip
    tl.store(c_ptr + offs_n[None, :], out.to(c_ptr.dtype.element_ty), mask=(offs_n < N)[None, :])


def gemv_fits(m: int, k: int) -> bool:
    """Whether the one-row kernel takes this GEMM (its whole row must fit one program's tile)."""
    return m == 1 and 0 < k <= MAX_BLOCK_K


def gemv_block_n(k: int, tile_bytes: int | None = None) -> int:
    """Weight rows per program: a power of two, about `tile_bytes` (TILE_BYTES) of padded weight, at least one."""
    rows = max(1, (tile_bytes or TILE_BYTES) // triton.next_power_of_2(k))
    return 1 << (rows.bit_length() - 1)


def gemv_launch_arguments(a, weight, out, scale_a, scale_b, bias, azp_adj, azp, has_azp: bool, a_mode: int,
                          symmetric: bool, static_weight: bool, tile_bytes: int | None = None):  # fmt: skip
    """(grid, positional arguments, constexprs and options) of one launch for a [1, K] @ weight [K, N]
    into out [1, N]; the vectors already dense (`scaled_mm_kernel.flat_contiguous`)."""
    from vllm_int8.ops.pdl import gemm_pdl_options
    from vllm_int8.ops.quant_kernel import reciprocal_quotients

    k, n = weight.shape
    block_n = gemv_block_n(k, tile_bytes)
    args = (a, weight, out, scale_a, scale_b, bias, azp_adj, azp, n, k, a.stride(1), weight.stride(0),
            weight.stride(1))  # fmt: skip
    constexprs = {
        "SCALE_B_PER_COL": scale_b.numel() > 1,
        "HAS_BIAS": bias is not None,
        "HAS_AZP_ADJ": azp_adj is not None,
        "HAS_AZP": has_azp,
        "BLOCK_N": block_n,
        "BLOCK_K": triton.next_power_of_2(k),
        "A_MODE": a_mode,
        "SYMMETRIC": symmetric,
        "RECIPROCAL": reciprocal_quotients(),
        "EARLY_W": static_weight,  # (without PDL the wait is a no-op: the order changes nothing)
        "num_warps": NUM_WARPS,
        "enable_fp_fusion": False,
        **gemm_pdl_options(out.device, 1),
    }
    return (triton.cdiv(n, block_n),), args, constexprs


GEMV_ENV = "VLLM_INT8_GEMV"  # "0": one-row GEMMs take the tile kernel
_forced: bool | None = None


@functools.cache
def _default_on(index: int) -> bool:
    """On NVIDIA GPUs unless `VLLM_INT8_GEMV=0` (read once per device); not measured on ROCm."""
    return not device_info(index).rocm and os.environ.get(GEMV_ENV, "1") != "0"


def gemv_selected(m: int, k: int, device: torch.device) -> bool:
    """Whether a GEMM of m rows and inner size k launches the one-row kernel."""
    if not gemv_fits(m, k):
        return False
    if _forced is not None:
        return _forced
    return device.type == "cuda" and _default_on(device_index(device))


@contextlib.contextmanager
def gemv_forced(enabled: bool) -> Iterator[None]:
    """Launch every one-row GEMM that fits on the one-row kernel (or none) inside the block."""
    global _forced
    previous, _forced = _forced, enabled
    try:
        yield
    finally:
        _forced = previous


def launch_gemv(a, weight, out, scale_a, scale_b, bias, azp_adj, azp, has_azp: bool, a_mode: int, symmetric: bool,
                static_weight: bool) -> torch.Tensor:  # fmt: skip
    """One launch into out [1, N] (arguments validated, vectors dense)."""
    grid, args, constexprs = gemv_launch_arguments(a, weight, out, scale_a, scale_b, bias, azp_adj, azp, has_azp,
                                                   a_mode, symmetric, static_weight)  # fmt: skip
    _gemv_kernel[grid](*args, **constexprs)
    return out
