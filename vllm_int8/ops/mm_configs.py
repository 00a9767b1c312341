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
from dataclasses import replace
from pathlib import Path

import torch

from vllm_int8.ops.hopper_configs import HOPPER_MIN_TMA_M, hopper_config
from vllm_int8.ops.rocm_configs import rocm_heuristic_config
from vllm_int8.ops.tile_config import MMConfig, heuristic_config, heuristic_split_k
from vllm_int8.platform import device_info

__all__ = ["MMConfig", "heuristic_config", "heuristic_split_k", "hopper_config", "select_config", "untuned_config"]

TUNED_DIR = Path(__file__).parent / "tuned"


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


# The tuner's M buckets: a table entry holds for the batch sizes above the bucket before it.
M_BUCKETS = (1, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
LARGEST_BUCKET = M_BUCKETS[-1]  # a table reaching it covers every larger M too


def pick_bucket(buckets: dict[int, MMConfig], m: int) -> MMConfig | None:
    """The config of m's own bucket (the smallest of `M_BUCKETS` >= m; past the largest, the
    largest), else None: a table tuned only for some sizes (prefill, or decode and mid batch)
    says nothing about the others, which the untuned rule decides."""
    own = next((b for b in M_BUCKETS if b >= m), LARGEST_BUCKET)
    return buckets.get(own)


@functools.lru_cache(maxsize=4096)
def select_config(m: int, n: int, k: int, device: torch.device) -> MMConfig:
    """Tuned config for (device, N, K, M bucket) if one ships, else the heuristic of the device's
    vendor (cached per shape: the eager hot path pays one dictionary lookup)."""
    name = device_info(device).name if device.type == "cuda" else None
    if name is not None:
        buckets = load_tuned(name).get((n, k))
        tuned = pick_bucket(buckets, m) if buckets else None
        if tuned is not None:
            return full_row_tiles_for_tma(tuned, m)
    return full_row_tiles_for_tma(untuned_config(m, n, k, device), m)


def full_row_tiles_for_tma(cfg: MMConfig, m: int) -> MMConfig:
    """Mid-batch TMA tiles only where M fills their row tiles, else the same tile on the pointer
    kernel: on the H200 the table's 64x64 TMA tiles ran 1.12-1.62x slower than the pointer
    kernel's where their last row tile held 8 of 64 rows (M = 72, 200, 456), and within 4% of it
    where it held 56 (a bucket's entry holds for every M in it; results/NVIDIA_H200/mid_rule_change.log)."""
    if cfg.tma and m < HOPPER_MIN_TMA_M and m % cfg.block_m:
        return replace(cfg, tma=0, subtile=0, warp_specialize=0, programs_per_sm=0)
    return cfg


def untuned_config(m: int, n: int, k: int, device: torch.device) -> MMConfig:
    """The rule for shapes with no tuned entry: ROCm's, Hopper's (TMA prefill), or the generic one."""
    if device.type == "cuda":
        info = device_info(device)
        if info.rocm:
            return rocm_heuristic_config(m, n, k, info.gfx_arch or "gfx942", info.sm_count)
        if info.capability[0] >= 9:
            return hopper_config(m, n, k, info.sm_count)
    return heuristic_config(m, n, k)
