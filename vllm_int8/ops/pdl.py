"""Programmatic dependent launch (PDL): a kernel's programs start while the kernel before it ends.

A decode step is a chain of short kernels (quant 2-4 µs, GEMM 10-50 µs on the H100), and each
pays a fixed start: the launch, the programs' set-up. With PDL (Hopper and newer: PTX
`griddepcontrol`, Triton's `launch_pdl=True`), the next kernel's programs may be placed before
this one finishes; they wait in `gdc_wait()` until it has finished and its writes are visible.

The rule every kernel launched here with PDL keeps: `gdc_wait()` comes before its first global
load and its first store (nothing before it touches memory), so it behaves as if launched
after the previous kernel completed. Kernels launched without PDL (every torch kernel) wait for
completion as always; a PDL kernel after one of them simply starts when it ends.

`gdc_launch_dependents()` ("early trigger") lets the next kernel's programs be placed at once,
not when this kernel's programs exit. Measured on the H100 (2026-11-26, one Llama-3-8B layer's
four linears chained under CUDA graphs: `d3b4b33:kernels/sweep_pdl.py`, its log in `d3b4b33:kernels/results/`):
early-placed GEMM programs help when the quant kernel before them occupies few SMs (M=1: 8
programs; M=64: 64) and hurt when it occupies nearly all (M=16: 128 programs of 8 warps; the
GEMM's programs then crowd onto the SMs left free: o_proj 13.2 -> 15.7 µs). A decode GEMM's
early trigger helped (M <= 64); at M=256 it cost 7%. Hence: the quant kernel triggers early while
its grid covers at most half the SMs, the GEMM while M <= 64; otherwise both only wait.

A GEMM may also ask L2 for the start of its weight slice before its wait (`prefetch_weight_lines`,
`VLLM_INT8_PREFETCH_KB` per program). It is off by default because it measured slower: H200,
2026-12-02, 8 Llama-3-8B layers' linears chained in one graph (`benchmarks/benchmark_chained_decode`),
M=1: 594 µs without, 595 / 605 / 660 with 16 / 64 / 256 KiB; M=16: 603 against 608 / 666 / 802
(an H100 try of the first lines alone: o_proj 11.8 -> 10.7 µs, slower on gate_up and the layer).

A GEMM on a layer's weight (written once, at loading, long before any launch that reads it) may
also load its first weight K-steps into registers *before* its wait (`early_weight_steps`, the
kernel's EARLY_B): those bytes stream while the previous kernel ends. Only there: a weight passed
to the public ops may be what the kernel before wrote. Every activation load and every store still
comes after the wait.

Off on ROCm, before Hopper, under the interpreter (it has no inline assembly), or with
`VLLM_INT8_PDL=0`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch
import triton
import triton.language as tl

from vllm_int8.ops.split_k_workspace import device_index
from vllm_int8.platform import device_info

try:
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
except ImportError:  # Triton < 3.3: no grid dependency control, so no PDL (the kernels keep PDL=0)
    gdc_launch_dependents = gdc_wait = None

PDL_ENV = "VLLM_INT8_PDL"
PREFETCH_ENV = "VLLM_INT8_PREFETCH_KB"
DEFAULT_PREFETCH_KB = 0
PREFETCH_MAX_M = 64
PDL_WAIT, PDL_EARLY = 1, 2  # the kernels' PDL constexpr: wait only, or also trigger the next kernel early
_EARLY = tl.constexpr(PDL_EARLY)
GEMM_EARLY_MAX_M = 64
QUANT_EARLY_MAX_SM_FRACTION = 0.5

EARLY_WEIGHT_ENV = "VLLM_INT8_EARLY_WEIGHT_STEPS"
DEFAULT_EARLY_WEIGHT_STEPS = 1
MAX_EARLY_WEIGHT_STEPS = 2

_forced: bool | None = None
_forced_early: int | None = None


@triton.jit
def prefetch_weight_lines(b_ptr, cols, k_start, K, stride_bn, LINES: tl.constexpr):
    """Ask L2 for the first LINES 128-byte lines of each of this program's weight columns (a
    K-contiguous int8 weight, `cols` already in range), before waiting for the previous kernel.

    Always safe, whatever wrote the weight: `prefetch.global.L2` only moves lines into L2, the
    point of coherence, and every load that uses the data still comes after the wait.
    """
    ks = tl.minimum(k_start + tl.arange(0, LINES).to(tl.int64) * 128, K - 1)
    ptrs = b_ptr + cols[:, None] * stride_bn + ks[None, :]
    tl.inline_asm_elementwise("prefetch.global.L2 [$1]; mov.u32 $0, 0;", "=r,l", [ptrs], dtype=tl.int32,
                              is_pure=False, pack=1)  # fmt: skip


@triton.jit
def wait_for_previous_kernel(PDL: tl.constexpr):
    """A PDL-launched kernel's first step, before any load or store: with PDL_EARLY let the next
    kernel's programs be placed now, then wait until the previous kernel has finished."""
    if PDL:
        if PDL == _EARLY:
            gdc_launch_dependents()
        gdc_wait()


@functools.cache
def _device_supports(index: int) -> bool:
    if gdc_wait is None or os.environ.get("TRITON_INTERPRET") == "1" or os.environ.get(PDL_ENV, "1") == "0":
        return False
    info = device_info(index)
    return not info.rocm and info.capability[0] >= 9


def _sm_count(index: int) -> int:
    return device_info(index).sm_count


def pdl_enabled(device: torch.device) -> bool:
    """Whether launches on `device` use PDL."""
    if device.type != "cuda" or not _device_supports(device_index(device)):
        return False
    return True if _forced is None else _forced


@contextlib.contextmanager
def pdl_forced(enabled: bool) -> Iterator[None]:
    """Turn PDL off (or back on where the device supports it) inside the block: tests and sweeps."""
    global _forced
    previous, _forced = _forced, enabled
    try:
        yield
    finally:
        _forced = previous


def quant_pdl_options(device: torch.device, programs: int) -> dict[str, int | bool]:
    """The quant kernel's PDL constexpr and launch option (empty where PDL is off)."""
    if not pdl_enabled(device):
        return {}
    early = programs <= QUANT_EARLY_MAX_SM_FRACTION * _sm_count(device_index(device))
    return {"PDL": PDL_EARLY if early else PDL_WAIT, "launch_pdl": True}


def gemm_pdl_options(device: torch.device, m: int) -> dict[str, int | bool]:
    """The GEMM's PDL constexpr and launch option (empty where PDL is off)."""
    if not pdl_enabled(device):
        return {}
    return {"PDL": PDL_EARLY if m <= GEMM_EARLY_MAX_M else PDL_WAIT, "launch_pdl": True}


def prefetch_lines(device: torch.device, m: int, weight: torch.Tensor, block_n: int, slice_k: int) -> int:
    """How many 128-byte lines per weight column a GEMM prefetches into L2 before its PDL wait
    (`prefetch_weight_lines`): 0 without PDL (nothing to overlap), for a weight that is not
    K-contiguous, above `PREFETCH_MAX_M` rows (the GEMM is no longer a weight stream), and by
    default; `VLLM_INT8_PREFETCH_KB` sets the bytes per program. A power of two, at most the
    program's K-slice."""
    kb = int(os.environ.get(PREFETCH_ENV, DEFAULT_PREFETCH_KB))
    if kb <= 0 or m > PREFETCH_MAX_M or weight.stride(0) != 1 or not pdl_enabled(device):
        return 0
    lines = min(kb * 1024 // (block_n * 128), slice_k // 128)
    return 1 << (lines.bit_length() - 1) if lines > 0 else 0


def early_weight_steps(device: torch.device, m: int, static_weight: bool, even_k: bool) -> int:
    """How many weight K-steps a GEMM loads before its PDL wait (the kernel's EARLY_B): only for a
    static weight (a layer's), a decode-sized batch (at most `PREFETCH_MAX_M` rows: a weight
    stream), a K the block divides, with PDL on (else there is nothing to overlap);
    `VLLM_INT8_EARLY_WEIGHT_STEPS` sets it (0-2). `early_weight_forced` overrides all but the
    weight and K conditions (tests: the interpreter has no PDL)."""
    if not static_weight or not even_k:
        return 0
    if _forced_early is not None:
        return _forced_early
    if m > PREFETCH_MAX_M or not pdl_enabled(device):
        return 0
    steps = int(os.environ.get(EARLY_WEIGHT_ENV, DEFAULT_EARLY_WEIGHT_STEPS))
    return min(max(steps, 0), MAX_EARLY_WEIGHT_STEPS)


@contextlib.contextmanager
def early_weight_forced(steps: int) -> Iterator[None]:
    """Launch static-weight GEMMs with `steps` early weight K-steps inside the block, PDL or not."""
    global _forced_early
    if not 0 <= steps <= MAX_EARLY_WEIGHT_STEPS:
        raise ValueError(f"steps must be 0..{MAX_EARLY_WEIGHT_STEPS}, got {steps}")
    previous, _forced_early = _forced_early, steps
    try:
        yield
    finally:
        _forced_early = previous
