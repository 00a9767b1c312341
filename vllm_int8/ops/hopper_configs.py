"""Tiles for Hopper (sm_90) shapes with no tuned entry: swapped decode tiles, the generic rule in
between, the persistent TMA kernel for prefill. The SM count is the device's own (an H100 SXM or
H200 has 132, an H100 PCIe 114)."""

from __future__ import annotations

from dataclasses import replace

from vllm_int8.ops.tile_config import MMConfig, heuristic_config, heuristic_split_k

# Hopper (sm_90) prefill on the TMA kernel. Measured over Llama-3-8B (H100) and Qwen2.5-7B (H200)
# shapes at M >= 1024, 2026-11-25 (d3b4b33:kernels/results/sweep_gemm_v2_*.json): the wide 128x256 / 256x128
# tiles with 8 warps, 3 stages and a halved epilogue store were within 2% of each shape's best on
# geometric average; where they leave the last wave mostly empty, 128x128 tiles (about 0.86x the
# wide tiles' throughput per tile) or, at M of a few hundred, 64x128 tiles win. `hopper_config`
# picks the candidate with the fewest estimated tile-waves, weighted by that per-tile cost.
HOPPER_WIDE = MMConfig(128, 256, 128, group_m=8, num_warps=8, num_stages=3, tma=1, subtile=1)
HOPPER_TALL = MMConfig(256, 128, 128, group_m=8, num_warps=8, num_stages=3, tma=1, subtile=1)
HOPPER_NARROW = MMConfig(128, 128, 128, group_m=8, num_warps=4, num_stages=4, tma=1)
HOPPER_SMALL = MMConfig(64, 128, 128, group_m=8, num_warps=4, num_stages=5, tma=1)
# (config, time of one of its tiles in units of a 128x128 tile of the wide config's throughput)
HOPPER_TILE_COSTS = ((HOPPER_WIDE, 2.0), (HOPPER_TALL, 2.0), (HOPPER_NARROW, 1.16), (HOPPER_SMALL, 0.71))
HOPPER_MIN_TMA_M = 256  # below it the pointer kernel's thin tiles (and split-K) stream the weight better
# Decode (M <= 16) on sm_90: swapped 64-row weight tiles (wgmma). The H100 decode re-tune of
# 2026-11-26 (d3b4b33:kernels/results/tune_decode_swap_*.log) picked exactly this tile for 7 of the 16
# Llama-3-8B/70B (shape, M) points, 1.01-1.17x faster than the generic heuristic there, split K
# only up to about one program per SM (split 2 for 64 tiles, none for 96 or more).
HOPPER_DECODE = MMConfig(16, 64, 256, group_m=1, num_warps=4, num_stages=5, swap_ab=1)
# Weights of at most one 64-column tile per SM: one deeper program per SM (512-deep K steps, four
# stages) streams them faster. H100 decode sweep of 2026-11-26 (d3b4b33:kernels/results/sweep_decode_all_*.log,
# M = 1 and 16): on Qwen2.5-7B o / down and Llama-3-8B qkv / o / down it was the fastest of 18
# candidates or within 1% (Qwen o 8.9 -> 8.0 us against the rule before), Qwen qkv 3% slower; on
# the 448+-tile gate_up weights 12% slower, so those keep HOPPER_DECODE.
HOPPER_DECODE_DEEP = MMConfig(16, 64, 512, group_m=1, num_warps=4, num_stages=4, swap_ab=1)


def hopper_config(m: int, n: int, k: int, sms: int = 132) -> MMConfig:
    """Tiles for sm_90 shapes with no tuned entry: swapped decode tiles up to M = 16 (deep ones
    while the weight has at most one column tile per SM), the generic heuristic up to
    HOPPER_MIN_TMA_M, then the TMA prefill tile with the fewest weighted waves."""
    if m <= 16:
        if -(-n // HOPPER_DECODE_DEEP.block_n) <= sms:
            return HOPPER_DECODE_DEEP
        return replace(HOPPER_DECODE, split_k=heuristic_split_k(m, n, k, HOPPER_DECODE, target_programs=sms))
    if m < HOPPER_MIN_TMA_M:
        return heuristic_config(m, n, k)

    def estimated_time(candidate: tuple[MMConfig, float]) -> float:
        cfg, tile_cost = candidate
        tiles = -(-m // cfg.block_m) * -(-n // cfg.block_n)
        return -(-tiles // sms) * tile_cost

    return min(HOPPER_TILE_COSTS, key=estimated_time)[0]
