"""Hopper prefill path: a persistent int8 GEMM fed by TMA, with the same exact W8A8 epilogue.

One program per SM (or `programs_per_sm` of them) walks output tiles in grouped order (GROUP_M
row tiles share a column of B while it is in L2). A and B arrive by the Tensor Memory
Accelerator (host-built descriptors; the hardware zero-fills out-of-range rows and K), so the
main loop has no address math and no masks, and the output leaves through a TMA store,
optionally in two halves (epilogue subtiling) so the staging buffer takes half the shared memory
and a deeper K pipeline fits.

The epilogue is the pointer kernel's (`epilogue.scaled_tile`, one definition): `(acc - azp * azp_adj)` in int32, then
`* scale_a * scale_b + bias` in float32 (no FMA contraction), one rounding to the output dtype.

TMA needs: an NVIDIA GPU of compute capability >= 9.0, Triton's host TensorDescriptor, 16-byte
aligned base pointers, a unit last stride and 16-byte aligned row strides (K % 16 == 0 for A and
the [N, K] weight; N * output element size % 16 == 0 for C). Anything else - ROCm, pre-Hopper,
odd strides, transposed activations, the in-kernel quant (decode) modes - takes the pointer kernel.
"""

from __future__ import annotations

import functools
import inspect

import torch
import triton
import triton.language as tl

from vllm_int8.ops.epilogue import scaled_tile
from vllm_int8.ops.tile_config import MMConfig
from vllm_int8.platform import device_info

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # Triton < 3.4: no host descriptors, so no TMA path
    TensorDescriptor = None

TMA_ALIGN = 16  # bytes: base pointers and every stride but the last


@triton.jit
def _tile_output(
    acc,
    offs_m,
    offs_n,
    M,
    N,
    scale_a_ptr,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp_ptr,
    SCALE_A_PER_ROW: tl.constexpr,
    SCALE_B_PER_COL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_AZP_ADJ: tl.constexpr,
    HAS_AZP: tl.constexpr,
):
    """The shared epilogue (`epilogue.scaled_tile`) with this tile's row scales and zero points loaded."""
    mask_m = offs_m < M
    if SCALE_A_PER_ROW:
        scale_a = tl.load(scale_a_ptr + offs_m, mask=mask_m, other=0.0)[:, None]
    else:
        scale_a = tl.load(scale_a_ptr)
    if HAS_AZP:
        azp = tl.load(azp_ptr + offs_m, mask=mask_m, other=0)[:, None]
    else:
        azp = 0
    return scaled_tile(acc, scale_a, scale_b_ptr, bias_ptr, azp_adj_ptr, azp, offs_n, N, SCALE_B_PER_COL, HAS_BIAS,
                       HAS_AZP_ADJ, HAS_AZP)  # fmt: skip


@triton.jit(do_not_specialize=["M"])
def _tma_scaled_mm_kernel(
    a_desc,
    b_desc,
    c_desc,
    scale_a_ptr,
    scale_b_ptr,
    bias_ptr,
    azp_adj_ptr,
    azp_ptr,
    M,
    N,
    K,
    SCALE_A_PER_ROW: tl.constexpr,
    SCALE_B_PER_COL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_AZP_ADJ: tl.constexpr,
    HAS_AZP: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    NUM_PROGRAMS: tl.constexpr,
    SUBTILE: tl.constexpr,
    WARP_SPECIALIZE: tl.constexpr,
):
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    k_steps = tl.cdiv(K, BLOCK_K)
    group_size = GROUP_M * tiles_n
    for tile in tl.range(tl.program_id(0), tiles_m * tiles_n, NUM_PROGRAMS, flatten=True,
                         warp_specialize=WARP_SPECIALIZE):  # fmt: skip
        first_m = (tile // group_size) * GROUP_M
        rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
        off_m = (first_m + (tile % group_size) % rows_in_group) * BLOCK_M
        off_n = ((tile % group_size) // rows_in_group) * BLOCK_N

        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
        for k in range(k_steps):
            a = a_desc.load([off_m, k * BLOCK_K])
            b = b_desc.load([off_n, k * BLOCK_K])  # the weight as stored: [N, K], K contiguous
            acc = tl.dot(a, b.T, acc, out_dtype=tl.int32)

        offs_m = off_m + tl.arange(0, BLOCK_M)
        if SUBTILE:  # two [BLOCK_M, BLOCK_N/2] halves: half the staging buffer for the TMA store
            HALF: tl.constexpr = BLOCK_N // 2
            left, right = tl.split(tl.permute(tl.reshape(acc, (BLOCK_M, 2, HALF)), (0, 2, 1)))
            out = _tile_output(
                left, offs_m, off_n + tl.arange(0, HALF), M, N, scale_a_ptr, scale_b_ptr, bias_ptr, azp_adj_ptr,
                azp_ptr, SCALE_A_PER_ROW, SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP,
            )  # fmt: skip
            c_desc.store([off_m, off_n], out.to(c_desc.dtype))
            out = _tile_output(
                right, offs_m, off_n + HALF + tl.arange(0, HALF), M, N, scale_a_ptr, scale_b_ptr, bias_ptr,
                azp_adj_ptr, azp_ptr, SCALE_A_PER_ROW, SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP,
            )  # fmt: skip
            c_desc.store([off_m, off_n + HALF], out.to(c_desc.dtype))
        else:
            out = _tile_output(
                acc, offs_m, off_n + tl.arange(0, BLOCK_N), M, N, scale_a_ptr, scale_b_ptr, bias_ptr, azp_adj_ptr,
                azp_ptr, SCALE_A_PER_ROW, SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP,
            )  # fmt: skip
            c_desc.store([off_m, off_n], out.to(c_desc.dtype))


@functools.cache
def tma_available(device: torch.device) -> bool:
    """An NVIDIA GPU of compute capability >= 9.0 and a Triton with host tensor descriptors and
    `tl.range(warp_specialize=...)` (both in Triton >= 3.4; older ones take the pointer kernel)."""
    if TensorDescriptor is None or device.type != "cuda" or device_info(device).rocm:
        return False
    if "warp_specialize" not in inspect.signature(tl.range.__init__).parameters:
        return False
    return device_info(device).capability[0] >= 9


def tma_layout_problem(a: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> str | None:
    """Why TMA cannot address these operands (None: it can). `weight` is [K, N], the layer's layout."""
    if a.dtype != torch.int8 or weight.dtype != torch.int8:
        return "TMA path multiplies int8 operands only"
    if a.stride(1) != 1 or (a.stride(0) * a.element_size()) % TMA_ALIGN or a.data_ptr() % TMA_ALIGN:
        return "activation must be row-major with 16-byte aligned rows and base"
    if weight.stride(0) != 1 or weight.stride(1) % TMA_ALIGN or weight.data_ptr() % TMA_ALIGN:
        return "weight must be the transpose of a row-major [N, K] tensor with 16-byte aligned rows and base"
    if out.stride(1) != 1 or (out.stride(0) * out.element_size()) % TMA_ALIGN or out.data_ptr() % TMA_ALIGN:
        return "output rows must be 16-byte aligned (N * element size % 16 == 0)"
    return None


def tma_constexprs(cfg: MMConfig, scale_a_numel, scale_b_numel, has_bias, has_azp_adj, has_azp, programs) -> dict:
    return {
        "SCALE_A_PER_ROW": scale_a_numel > 1,
        "SCALE_B_PER_COL": scale_b_numel > 1,
        "HAS_BIAS": has_bias,
        "HAS_AZP_ADJ": has_azp_adj,
        "HAS_AZP": has_azp,
        "BLOCK_M": cfg.block_m,
        "BLOCK_N": cfg.block_n,
        "BLOCK_K": cfg.block_k,
        "GROUP_M": cfg.group_m,
        "NUM_PROGRAMS": programs,
        "SUBTILE": bool(cfg.subtile),
        "WARP_SPECIALIZE": bool(cfg.warp_specialize),
        **cfg.compile_options(),
    }


def tma_descriptors(a, weight, out, cfg: MMConfig) -> tuple:
    """(a, b, c) host tensor descriptors of one launch: built per call (a replay too), since each
    holds its tensor's address; `weight` is [K, N], the layer's layout."""
    m, k = a.shape
    n = weight.shape[1]
    w_nk = weight.t()  # [N, K], K contiguous: the checkpoint's own layout
    return (
        TensorDescriptor(a, [m, k], [a.stride(0), 1], [cfg.block_m, cfg.block_k]),
        TensorDescriptor(w_nk, [n, k], [w_nk.stride(0), 1], [cfg.block_n, cfg.block_k]),
        tma_output_descriptor(out, cfg),
    )


def tma_output_descriptor(out: torch.Tensor, cfg: MMConfig):
    """The output's descriptor (the epilogue stores half-width sub-tiles with `subtile`)."""
    store_n = cfg.block_n // 2 if cfg.subtile else cfg.block_n
    return TensorDescriptor(out, list(out.shape), [out.stride(0), 1], [cfg.block_m, store_n])


def tma_launch_arguments(a, weight, out, scale_a, scale_b, bias, azp_adj, azp, cfg: MMConfig, num_sms=None):
    """(grid, positional arguments, constexprs and options) of one TMA launch (dense vectors already)."""
    m, k = a.shape
    n = weight.shape[1]
    if num_sms is None:
        num_sms = device_info(out.device).sm_count if out.is_cuda else 4
    programs = num_sms * max(cfg.programs_per_sm, 1)
    tiles = triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n)
    constexprs = tma_constexprs(
        cfg, scale_a.numel(), scale_b.numel(), bias is not None, azp_adj is not None, azp is not None, programs
    )
    args = (*tma_descriptors(a, weight, out, cfg), scale_a, scale_b, bias, azp_adj, azp, m, n, k)
    return (min(programs, tiles),), args, constexprs


def launch_tma_scaled_mm(a, weight, out, scale_a, scale_b, bias, azp_adj, azp, cfg: MMConfig, num_sms=None):
    """Fill `out` [M, N] from int8 a [M, K] and weight [K, N] (dense vectors already; layout checked)."""
    grid, args, constexprs = tma_launch_arguments(a, weight, out, scale_a, scale_b, bias, azp_adj, azp, cfg, num_sms)
    _tma_scaled_mm_kernel[grid](*args, **constexprs)
    return out
