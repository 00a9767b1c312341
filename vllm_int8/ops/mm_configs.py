"""Tile configurations of the scaled-MM kernel: tuned per device and shape, with a heuristic fallback.

Tuned configs live in `vllm_int8/ops/tuned/<device name>.json` (written by
`benchmarks/tune_int8_scaled_mm.py`), keyed by "N,K" and then by an M bucket, like vLLM's tuned
kernel configs. Nothing is autotuned at run time, so a first call under CUDA-graph capture
launches at once.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

TUNED_DIR = Path(__file__).parent / "tuned"


@dataclass(frozen=True)
class MMConfig:
    block_m: int
    block_n: int
    block_k: int
    group_m: int = 8
    num_warps: int = 4
    num_stages: int = 3
    split_k: int = 1  # K-slices reduced exactly in int32 within the one launch (decode)
    # AMD-only compile options (0: not passed). Triton's AMD backend reads them; CUDA has no such knobs.
    waves_per_eu: int = 0
    matrix_instr_nonkdim: int = 0
    kpack: int = 0
    # Hopper prefill path (tma_mm_kernel): persistent TMA kernel, halved epilogue store, warp specialization.
    tma: int = 0
    subtile: int = 0
    warp_specialize: int = 0
    # Decode on the pointer kernel: compute C^T = B^T A^T, the weight tile as the MMA's M operand
    # (Hopper's wgmma needs M >= 64; a 16-row activation tile would leave it on the older mma path).
    swap_ab: int = 0

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if v or k not in _OPTIONAL_FIELDS}

    def compile_options(self) -> dict[str, int]:
        """The launch keywords besides constexprs: warps, stages and the AMD knobs that are set."""
        # No FMA contraction: `(acc * scale_a) * scale_b + bias` rounds like the reference, step by step.
        options = {"num_warps": self.num_warps, "num_stages": self.num_stages, "enable_fp_fusion": False}
        options.update({name: getattr(self, name) for name in _AMD_OPTIONS if getattr(self, name)})
        return options


_AMD_OPTIONS = ("waves_per_eu", "matrix_instr_nonkdim", "kpack")
_OPTIONAL_FIELDS = (*_AMD_OPTIONS, "tma", "subtile", "warp_specialize", "swap_ab")  # written only when set


def heuristic_config(m: int, n: int, k: int) -> MMConfig:
    """Tiles by M: thin tiles that stream the weight for decode, square ones for prefill."""
    if m <= 16:
        cfg = MMConfig(16, 32 if n <= 8192 else 64, 256, group_m=1, num_warps=4, num_stages=5)
    elif m <= 32:
        cfg = MMConfig(32, 32, 256, group_m=1, num_warps=4, num_stages=5)
    elif m <= 64:
        cfg = MMConfig(64, 64, 256, group_m=1, num_warps=4, num_stages=4)
    elif m <= 512:
        return MMConfig(64, 128, 128, group_m=8, num_warps=8, num_stages=4)
    else:
        return MMConfig(256, 128, 128, group_m=8, num_warps=8, num_stages=3)
    return replace(cfg, split_k=heuristic_split_k(m, n, k, cfg))


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
HOPPER_SMS = 132
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


def hopper_config(m: int, n: int, k: int) -> MMConfig:
    """Tiles for sm_90 shapes with no tuned entry: swapped decode tiles up to M = 16 (deep ones
    while the weight has at most one column tile per SM), the generic heuristic up to
    HOPPER_MIN_TMA_M, then the TMA prefill tile with the fewest weighted waves."""
    if m <= 16:
        if -(-n // HOPPER_DECODE_DEEP.block_n) <= HOPPER_SMS:
            return HOPPER_DECODE_DEEP
        return replace(HOPPER_DECODE, split_k=heuristic_split_k(m, n, k, HOPPER_DECODE, target_programs=HOPPER_SMS))
    if m < HOPPER_MIN_TMA_M:
        return heuristic_config(m, n, k)

    def estimated_time(candidate: tuple[MMConfig, float]) -> float:
        cfg, tile_cost = candidate
        tiles = -(-m // cfg.block_m) * -(-n // cfg.block_n)
        return -(-tiles // HOPPER_SMS) * tile_cost

    return min(HOPPER_TILE_COSTS, key=estimated_time)[0]


def heuristic_split_k(m: int, n: int, k: int, cfg: MMConfig, target_programs: int = 264) -> int:
    """Split K (by powers of two, up to 8) until about two programs per SM of a 132-SM GPU stream
    the weight, keeping at least 4 K-steps per slice."""
    tiles = -(-m // cfg.block_m) * -(-n // cfg.block_n)
    steps = -(-k // cfg.block_k)
    split = 1
    while split < 8 and tiles * split * 2 <= target_programs and steps // (split * 2) >= 4:
        split *= 2
    return split


def device_key(name: str) -> str:
    """File-name form of a device name: 'NVIDIA H100 80GB HBM3' -> 'NVIDIA_H100_80GB_HBM3'."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


@functools.cache
def load_tuned(device_name: str, directory: Path = TUNED_DIR) -> dict[tuple[int, int], dict[int, MMConfig]]:
    """{(N, K): {M bucket: MMConfig}} for a device; empty when no file ships for it."""
    path = directory / f"{device_key(device_name)}.json"
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    table: dict[tuple[int, int], dict[int, MMConfig]] = {}
    for shape, buckets in raw["configs"].items():
        n, k = (int(v) for v in shape.split(","))
        table[(n, k)] = {int(m): MMConfig(**cfg) for m, cfg in buckets.items()}
    return table


def pick_bucket(buckets: dict[int, MMConfig], m: int) -> MMConfig:
    """The config of the smallest bucket >= m, or of the largest bucket."""
    fitting = [b for b in buckets if b >= m]
    return buckets[min(fitting) if fitting else max(buckets)]


@functools.cache
def _device_name(device: torch.device) -> str | None:
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_name(device)


@functools.cache
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


@functools.cache
def _rocm_arch(device: torch.device) -> tuple[str, int]:
    props = torch.cuda.get_device_properties(device)
    return getattr(props, "gcnArchName", "gfx942").split(":")[0], props.multi_processor_count


@functools.lru_cache(maxsize=4096)
def select_config(m: int, n: int, k: int, device: torch.device) -> MMConfig:
    """Tuned config for (device, N, K, M bucket) if one ships, else the heuristic of the device's
    vendor (cached per shape: the eager hot path pays one dictionary lookup)."""
    name = _device_name(device)
    if name is not None:
        buckets = load_tuned(name).get((n, k))
        if buckets:
            return pick_bucket(buckets, m)
    return untuned_config(m, n, k, device)


def untuned_config(m: int, n: int, k: int, device: torch.device) -> MMConfig:
    """The rule for shapes with no tuned entry: ROCm's, Hopper's (TMA prefill), or the generic one."""
    if device.type == "cuda":
        if torch.version.hip:
            from vllm_int8.ops.rocm_configs import rocm_heuristic_config

            return rocm_heuristic_config(m, n, k, *_rocm_arch(device))
        if _capability(device)[0] >= 9:
            return hopper_config(m, n, k)
    return heuristic_config(m, n, k)
