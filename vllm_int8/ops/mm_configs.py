"""Tile configurations of the scaled-MM kernel: tuned per device and shape, with a heuristic fallback.

Tuned configs live in `vllm_int8/ops/tuned/<device name>.json` (written by
`kernels/tune_int8_scaled_mm.py`), keyed by "N,K" and then by an M bucket, like vLLM's tuned
kernel configs. Nothing is autotuned at run time, so a first call under CUDA-graph capture
launches at once.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
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

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def heuristic_config(m: int, n: int, k: int) -> MMConfig:
    """Tiles by M: thin tiles that stream the weight for decode, square ones for prefill."""
    if m <= 16:
        return MMConfig(16, 32 if n <= 8192 else 64, 256, group_m=1, num_warps=4, num_stages=5)
    if m <= 32:
        return MMConfig(32, 64, 256, group_m=1, num_warps=4, num_stages=4)
    if m <= 64:
        return MMConfig(64, 64, 256, group_m=8, num_warps=4, num_stages=4)
    if m <= 128:
        return MMConfig(64, 128, 128, group_m=8, num_warps=4, num_stages=4)
    return MMConfig(128, 128, 128, group_m=8, num_warps=8, num_stages=3)


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


def select_config(m: int, n: int, k: int, device: torch.device) -> MMConfig:
    """Tuned config for (device, N, K, M bucket) if one ships, else the heuristic."""
    name = _device_name(device)
    if name is not None:
        buckets = load_tuned(name).get((n, k))
        if buckets:
            return pick_bucket(buckets, m)
    return heuristic_config(m, n, k)
