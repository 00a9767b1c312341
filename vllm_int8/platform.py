"""Which platform this process runs on: the one place that asks torch, so tests can stand it in.

Everything else calls `current_platform()`; tests wrap code in `use_platform(Platform(...))`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

CUDA, ROCM, CPU = "cuda", "rocm", "cpu"


@dataclass(frozen=True)
class Platform:
    kind: str  # CUDA, ROCM or CPU
    arch: str | None = None  # "sm_90" on CUDA, gcnArchName ("gfx942:sramecc+:xnack-") on ROCm
    device_name: str | None = None
    capability: int | None = None  # 90 for sm_90, 94 for gfx942 (torch's major*10 + minor)

    @property
    def is_cuda(self) -> bool:
        return self.kind == CUDA

    @property
    def is_rocm(self) -> bool:
        return self.kind == ROCM

    @property
    def is_cpu(self) -> bool:
        return self.kind == CPU

    @property
    def gfx_arch(self) -> str | None:
        """The bare gfx target ("gfx942") on ROCm, None elsewhere."""
        return self.arch.split(":")[0] if self.is_rocm and self.arch else None


@functools.cache
def detect_platform() -> Platform:
    """Ask torch once: ROCm builds report `torch.version.hip` and use the `cuda` device type."""
    if not torch.cuda.is_available():
        return Platform(CPU)
    props = torch.cuda.get_device_properties(0)
    capability = props.major * 10 + props.minor
    if torch.version.hip:
        return Platform(ROCM, getattr(props, "gcnArchName", None), props.name, capability)
    return Platform(CUDA, f"sm_{capability}", props.name, capability)


_override: Platform | None = None


def current_platform() -> Platform:
    return _override if _override is not None else detect_platform()


@contextlib.contextmanager
def use_platform(platform: Platform) -> Iterator[Platform]:
    """Make `current_platform()` return `platform` inside the block (tests, what-if reports)."""
    global _override
    previous, _override = _override, platform
    try:
        yield platform
    finally:
        _override = previous


def env_flag(name: str, default: bool) -> bool:
    """vLLM's boolean environment convention: "1"/"true" on, "0"/"false" off, unset -> default."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")
