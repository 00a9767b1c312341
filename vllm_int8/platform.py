"""Which platform this process runs on, and what each GPU is: the one place that asks torch.

Everything else calls `current_platform()` (tests wrap code in `use_platform(Platform(...))`) or,
for one device's properties (the launch rules: SM count, compute capability, gfx arch),
`device_info(device)`, asked of torch once per device.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
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


@dataclass(frozen=True)
class DeviceInfo:
    """One GPU, as the kernels' launch rules need it."""

    name: str
    capability: tuple[int, int]  # (major, minor)
    sm_count: int  # SMs (CUDA) or compute units (ROCm)
    rocm: bool
    arch: str | None  # gcnArchName on ROCm ("gfx942:sramecc+:xnack-"), None on CUDA

    @property
    def gfx_arch(self) -> str | None:
        return self.arch.split(":")[0] if self.arch else None


def device_info(device: torch.device | int) -> DeviceInfo:
    """A CUDA/ROCm device's properties (an index-less "cuda" is the current device)."""
    index = device if isinstance(device, int) else device.index
    return _device_info(torch.cuda.current_device() if index is None else index)


@functools.cache
def _device_info(index: int) -> DeviceInfo:
    props = torch.cuda.get_device_properties(index)
    rocm = bool(torch.version.hip)
    arch = getattr(props, "gcnArchName", None) if rocm else None
    return DeviceInfo(props.name, (props.major, props.minor), props.multi_processor_count, rocm, arch)


@functools.cache
def detect_platform() -> Platform:
    """Ask torch once: ROCm builds report `torch.version.hip` and use the `cuda` device type."""
    if not torch.cuda.is_available():
        return Platform(CPU)
    info = device_info(0)
    capability = info.capability[0] * 10 + info.capability[1]
    if info.rocm:
        return Platform(ROCM, info.arch, info.name, capability)
    return Platform(CUDA, f"sm_{capability}", info.name, capability)


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


def env_reader(name: str) -> Callable[[], str | None]:
    """A per-call reader of environment variable `name` for hot paths: `os.environ.get` of an
    unset name raises and catches a KeyError inside (~0.8 µs, twice an eager int8 linear's quant
    launch on a slow host); this looks in the dictionary `os.environ` keeps (and its setters
    update), where it has one, and is `os.environ.get` elsewhere."""
    data, encode = getattr(os.environ, "_data", None), getattr(os.environ, "encodekey", None)
    decode = getattr(os.environ, "decodevalue", None)
    if not isinstance(data, dict) or encode is None or decode is None:
        return lambda: os.environ.get(name)
    key = encode(name)

    def read() -> str | None:
        value = data.get(key)
        return None if value is None else decode(value)

    return read


def env_flag(name: str, default: bool) -> bool:
    """vLLM's boolean environment convention: "1"/"true" on, "0"/"false" off, unset -> default."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")
