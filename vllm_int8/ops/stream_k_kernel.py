"""Stream-K int8 GEMM: the pointer kernel's tiles, the work split evenly over the SMs.

Mid-batch GEMMs (M = 64-512) have too few output tiles for whole waves: at M = 256 a Llama-3-8B
qkv weight in 64x128 tiles makes 192 tiles for 132 SMs, so the second wave runs 60 programs and
leaves 72 SMs idle. Here a fixed grid of `programs` (a few per SM) takes the flattened
(tile, K-step) iteration space in equal contiguous ranges, so every program does the same work.
A range that covers a whole tile runs the epilogue at once. A tile split between programs is
finished exactly, like split-K: each contributor stores its int32 partial in its own workspace
slot (two per program: its range's first and last tile), bumps the tile's arrival counter
(acq_rel), and the last to arrive sums the other slots in int32 (exact, so the order of arrival
changes nothing), resets the counter for the next launch and runs the same epilogue as the
pointer kernel. Nothing waits on another program, so no co-residency is assumed.

Int8 activations only (the quantizing decode modes, swapped tiles and early weight loads are
the pointer kernel's); the counters come from `split_k_workspace` (zero before every launch,
graph-safe), the workspace like split-K's.
"""

from __future__ import annotations

import triton
import triton.language as tl

from vllm_int8.ops.epilogue import store_scaled_tile
from vllm_int8.ops.pdl import wait_for_previous_kernel
from vllm_int8.ops.tile_config import MMConfig

_SLOTS = 2  # a range is partial only in its first and its last tile
SLOTS_PER_PROGRAM = tl.constexpr(_SLOTS)


@triton.jit
def _owner(iteration, total, programs):
    """The program whose range [p * total // programs, (p + 1) * total // programs) holds `iteration`."""
    return ((iteration + 1) * programs - 1) // total


@triton.jit
def _finish_tile(acc, c_ptr, scale_a_ptr, scale_b_ptr, bias_ptr, azp_adj_ptr, azp_ptr, offs_m, offs_n, M, N,
                 stride_cm, SCALE_A_PER_ROW: tl.constexpr, SCALE_B_PER_COL: tl.constexpr, HAS_BIAS: tl.constexpr,
                 HAS_AZP_ADJ: tl.constexpr, HAS_AZP: tl.constexpr):  # fmt: skip
    """The pointer kernel's epilogue, with this tile's row scales and zero points loaded."""
    if SCALE_A_PER_ROW:
        scale_a = tl.load(scale_a_ptr + offs_m, mask=offs_m < M, other=0.0)[:, None]
    else:
        scale_a = tl.load(scale_a_ptr)
    if HAS_AZP:
        azp = tl.load(azp_ptr + offs_m, mask=offs_m < M, other=0)[:, None]
    else:
        azp = 0
    store_scaled_tile(acc, c_ptr, scale_a, scale_b_ptr, bias_ptr, azp_adj_ptr, azp, offs_m, offs_n, M, N, stride_cm,
                      SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP)  # fmt: skip


@triton.jit(do_not_specialize=["M"])
def _stream_k_mm_kernel(
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
    A_MODE: tl.constexpr = 0,
    SYMMETRIC: tl.constexpr = True,
    A_ROWS: tl.constexpr = 0,
    SWAP_AB: tl.constexpr = False,
    MASK_A_ROWS: tl.constexpr = False,
    PDL: tl.constexpr = 0,
    EARLY_B: tl.constexpr = 0,
):
    # The pointer kernel's signature, so one launch builder and one replay serve both.
    tl.static_assert(A_MODE == 0 and SPLIT_K == 1 and EARLY_B == 0 and not SWAP_AB)
    pid = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0).to(tl.int64)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    k_steps = tl.cdiv(K, BLOCK_K)
    total = tiles_m.to(tl.int64) * tiles_n * k_steps  # the host launches at most `total` programs
    it_start = pid * total // programs
    it_end = (pid + 1) * total // programs
    first_tile = it_start // k_steps
    group_size = GROUP_M * tiles_n
    tile_elems: tl.constexpr = BLOCK_M * BLOCK_N
    tile_offs = tl.arange(0, BLOCK_M)[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
    wait_for_previous_kernel(PDL)

    for tile in range(first_tile, tl.cdiv(it_end, k_steps)):
        # Grouped tile order, as in the pointer kernel: GROUP_M row-tiles share a column of B in L2.
        first_m = (tile // group_size) * GROUP_M
        rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
        pid_m = first_m + (tile % group_size) % rows_in_group
        pid_n = (tile % group_size) // rows_in_group
        tile_start = tile * k_steps
        k_first = tl.maximum(it_start, tile_start) - tile_start
        k_last = tl.minimum(it_end, tile_start + k_steps) - tile_start

        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = k_first * BLOCK_K + tl.arange(0, BLOCK_K)
        a_row_ok = (offs_m < M)[:, None]  # used only with MASK_A_ROWS; else rows past M re-read valid ones
        a_ptrs = a_ptr + (offs_m % M)[:, None] * stride_am + offs_k[None, :] * stride_ak
        b_ptrs = b_ptr + offs_k[:, None] * stride_bk + (offs_n % N)[None, :] * stride_bn
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
        for k in range(k_first, k_last):
            if EVEN_K:
                if MASK_A_ROWS:
                    a = tl.load(a_ptrs, mask=a_row_ok, other=0)
                else:
                    a = tl.load(a_ptrs)
                b = tl.load(b_ptrs)
            else:
                k_left = K - k * BLOCK_K
                a_mask = tl.arange(0, BLOCK_K)[None, :] < k_left
                if MASK_A_ROWS:
                    a_mask = a_mask & a_row_ok
                a = tl.load(a_ptrs, mask=a_mask, other=0)
                b = tl.load(b_ptrs, mask=tl.arange(0, BLOCK_K)[:, None] < k_left, other=0)
            acc = tl.dot(a, b, acc, out_dtype=tl.int32)
            a_ptrs += BLOCK_K * stride_ak
            b_ptrs += BLOCK_K * stride_bk

        if (k_first == 0) & (k_last == k_steps):  # the whole tile is this program's
            _finish_tile(acc, c_ptr, scale_a_ptr, scale_b_ptr, bias_ptr, azp_adj_ptr, azp_ptr, offs_m, offs_n, M, N,
                         stride_cm, SCALE_A_PER_ROW, SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ, HAS_AZP)  # fmt: skip
        else:
            slot = SLOTS_PER_PROGRAM * pid + tl.where(tile == first_tile, 0, 1)
            tl.store(workspace_ptr + slot * tile_elems + tile_offs, acc)
            # All of this program's slot stores before the one thread that publishes the arrival
            # (the split-K kernel's rule: the release orders only that thread's own writes).
            tl.debug_barrier()
            p_first = _owner(tile_start, total, programs)
            p_last = _owner(tile_start + k_steps - 1, total, programs)
            arrived = tl.atomic_add(counter_ptr + tile, 1, sem="acq_rel")
            if arrived == p_last - p_first:  # the last contributor: sum the others' slots
                tl.atomic_xchg(counter_ptr + tile, 0, sem="relaxed")  # zero again for the next launch
                for q in range(p_first, p_last + 1):
                    if q != pid:
                        # q's first tile unless q's range began before this tile (then its last)
                        q_slot = SLOTS_PER_PROGRAM * q + tl.where(q * total // programs < tile_start, 1, 0)
                        acc += tl.load(workspace_ptr + q_slot * tile_elems + tile_offs, cache_modifier=".cg")
                _finish_tile(acc, c_ptr, scale_a_ptr, scale_b_ptr, bias_ptr, azp_adj_ptr, azp_ptr, offs_m, offs_n,
                             M, N, stride_cm, SCALE_A_PER_ROW, SCALE_B_PER_COL, HAS_BIAS, HAS_AZP_ADJ,
                             HAS_AZP)  # fmt: skip


def stream_k_programs(m: int, n: int, k: int, cfg: MMConfig, sms: int) -> int:
    """The grid: `cfg.stream_k` programs per SM, never more than there are (tile, K-step) iterations
    (so every program's range is non-empty)."""
    tiles = triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n)
    return max(1, min(cfg.stream_k * sms, tiles * triton.cdiv(k, cfg.block_k)))


def stream_k_buffers(m: int, n: int, programs: int, cfg: MMConfig) -> tuple[int, int]:
    """(int32 workspace elements, arrival counters) of a stream-K launch of `programs` programs."""
    tiles = triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n)
    return _SLOTS * programs * cfg.block_m * cfg.block_n, tiles
