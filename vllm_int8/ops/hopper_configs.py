"""Tiles for Hopper (sm_90) shapes with no tuned entry: swapped decode tiles, the generic rule in
between, the persistent TMA kernel for prefill. The SM count is the device's own (an H100 SXM or
H200 has 132, an H100 PCIe 114)."""

from __future__ import annotations

from dataclasses import replace

from vllm_int8.ops.tile_config import MMConfig, heuristic_split_k

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
HOPPER_MIN_TMA_M = 513  # below it the pointer kernel's mid-batch tiles (and split-K) measured faster
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
# A weight of fewer column tiles than about three quarters of the SMs (a tensor-parallel shard's
# qkv: 20 tiles at TP 8, 40 at TP 4) leaves most SMs idle unless K is split: the deep tiles split
# until about that many programs stream it (56-66 tiles, where one program per tile measured
# level with a split of two on the H200, stay whole).
DECODE_SPLIT_FILL = 0.75
# Mid batch (16 < M <= 512) on the pointer kernel, fitted to the H200 tuner's winners over 28
# shapes (Llama-3-8B, Qwen2.5-7B, Llama-3-70B's TP 2, 4 and 8 shards; results/NVIDIA_H200/
# tune_mid_decode.log, tune_tp_shards.log), where the generic rule ran 1.1-1.6x slower than tuned,
# then to a probe of 18 candidates per point over 20 of those shapes at M = 64-512
# (results/NVIDIA_H200/mid_rule_probe.log):
# - up to 64 rows one row tile with K split until the weight's column tiles fill about the SMs
#   (1.15 programs per SM at 32 rows, one at 64); at 64 rows a short K (<= 4096) over at most one
#   64-column tile per SM takes 32-column tiles, split to fill two programs per SM (the o
#   projections: 1.04x);
# - above, the largest tile that still leaves MID_MIN_WAVES waves of tiles, so a few hundred rows
#   get enough programs to hide latency; then the pipeline as shallow as it takes for every
#   program to be resident at once (`resident`): 320 tiles of 64x128 ran 1.33x faster with 3 stages
#   (three per SM) than with 4 (two per SM, two waves) on the TP 2 qkv shard at M = 512;
# - 64x64 tiles of a long K (>= 8192) that do not fill the SMs split K in two (down of Llama-3-8B
#   and Qwen2.5-7B at M = 128, the TP 4 / 8 qkv shards: 1.11-1.33x);
# - 64x64 tiles resident three per SM run as the persistent TMA kernel with three programs per
#   SM (qkv at M = 256: 1.02-1.04x), and so do tiles of two or more resident waves that would
#   run under MID_MIN_WAVE_FILL full (Qwen2.5-7B gate_up at M = 128: 296 tiles of 128x128 over two waves of
#   264, 1.26x).
HOPPER_MID_32 = MMConfig(32, 64, 256, group_m=1, num_warps=4, num_stages=4, swap_ab=1)
HOPPER_MID_64 = MMConfig(64, 64, 256, group_m=1, num_warps=4, num_stages=4)
HOPPER_MID_64_NARROW = MMConfig(64, 32, 256, group_m=1, num_warps=4, num_stages=4)
HOPPER_MID_TILES = (
    MMConfig(128, 128, 128, group_m=8, num_warps=4, num_stages=3),
    MMConfig(64, 128, 128, group_m=8, num_warps=4, num_stages=4),
    MMConfig(64, 64, 128, group_m=8, num_warps=4, num_stages=6),
)
HOPPER_MID_PERSISTENT = MMConfig(64, 64, 128, group_m=8, num_warps=4, num_stages=4, tma=1, programs_per_sm=3)
MID_MIN_WAVES = 1.6
MID_MIN_WAVE_FILL = 0.6
MID_SPLIT_MIN_K = 8192
SHARED_MEMORY_PER_SM = 228 * 1024  # H100 and H200
MIN_STAGES = 3


def hopper_config(m: int, n: int, k: int, sms: int = 132) -> MMConfig:
    """Tiles for sm_90 shapes with no tuned entry: swapped decode tiles up to M = 16 (deep ones
    while the weight has at most one column tile per SM, K split where it has far fewer), `mid_batch_config` up to
    HOPPER_MIN_TMA_M, then the TMA prefill tile with the fewest weighted waves."""
    if m <= 16:
        if -(-n // HOPPER_DECODE_DEEP.block_n) <= sms:
            fill = int(sms * DECODE_SPLIT_FILL)
            return replace(HOPPER_DECODE_DEEP, split_k=heuristic_split_k(m, n, k, HOPPER_DECODE_DEEP, fill))
        return replace(HOPPER_DECODE, split_k=heuristic_split_k(m, n, k, HOPPER_DECODE, target_programs=sms))
    if m < HOPPER_MIN_TMA_M:
        return mid_batch_config(m, n, k, sms)

    def estimated_time(candidate: tuple[MMConfig, float]) -> float:
        cfg, tile_cost = candidate
        tiles = -(-m // cfg.block_m) * -(-n // cfg.block_n)
        return -(-tiles // sms) * tile_cost

    return min(HOPPER_TILE_COSTS, key=estimated_time)[0]


def mid_batch_config(m: int, n: int, k: int, sms: int = 132) -> MMConfig:
    """Pointer-kernel tiles for 16 < M < HOPPER_MIN_TMA_M on sm_90, a few as the persistent TMA
    kernel (see HOPPER_MID_TILES)."""
    if m <= 32:
        return replace(HOPPER_MID_32, split_k=heuristic_split_k(m, n, k, HOPPER_MID_32, int(sms * 1.15)))
    if m <= 64:
        if k <= 4096 and -(-n // HOPPER_MID_64.block_n) <= sms:
            cfg = replace(HOPPER_MID_64_NARROW, split_k=heuristic_split_k(m, n, k, HOPPER_MID_64_NARROW, 2 * sms))
        else:
            cfg = replace(HOPPER_MID_64, split_k=heuristic_split_k(m, n, k, HOPPER_MID_64, sms))
        return resident(cfg, -(-n // cfg.block_n) * cfg.split_k, sms, (cfg.block_k, cfg.block_k // 2))
    tiles = lambda cfg: -(-m // cfg.block_m) * -(-n // cfg.block_n)  # noqa: E731
    cfg = next((c for c in HOPPER_MID_TILES if tiles(c) >= MID_MIN_WAVES * sms), HOPPER_MID_TILES[-1])
    if cfg is HOPPER_MID_TILES[-1] and tiles(cfg) <= sms and k >= MID_SPLIT_MIN_K:
        cfg = replace(cfg, split_k=2)
    programs = tiles(cfg) * cfg.split_k
    cfg = resident(cfg, programs, sms, (cfg.block_k,))
    per_sm = resident_per_sm(cfg)
    waves = -(-programs // (sms * per_sm))
    if cfg.split_k == 1 and (
        cfg.block_n == 64 and per_sm == 3 or waves > 1 and programs / (waves * sms * per_sm) < MID_MIN_WAVE_FILL
    ):
        return HOPPER_MID_PERSISTENT
    return cfg


def resident_per_sm(cfg: MMConfig) -> int:
    """How many programs of cfg one SM holds at once, bounded by their pipelines' shared memory."""
    per_program = cfg.num_stages * (cfg.block_m * cfg.block_k + cfg.block_k * cfg.block_n)  # int8 A and B tiles
    return max(1, SHARED_MEMORY_PER_SM // per_program)


def resident(cfg: MMConfig, programs: int, sms: int, block_ks: tuple[int, ...]) -> MMConfig:
    """cfg with the fewest waves of resident programs, as deep as that allows: stages from cfg's
    down to MIN_STAGES, at each of `block_ks` in turn (shared memory bounds programs per SM)."""
    variants = [
        replace(cfg, block_k=bk, num_stages=s) for bk in block_ks for s in range(cfg.num_stages, MIN_STAGES - 1, -1)
    ]
    return min(variants, key=lambda c: -(-programs // (sms * resident_per_sm(c))))  # first of the fewest: deepest
