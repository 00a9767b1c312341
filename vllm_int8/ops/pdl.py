"""Programmatic dependent launch (PDL): a kernel's programs start while the kernel before it ends.

A decode step is a chain of short kernels (quant 2-4 µs, GEMM 10-50 µs on the H100), and each
pays a fixed start: the launch, the programs' set-up. With PDL (Hopper and newer: PTX
`griddepcontrol`, Triton's `launch_pdl=True`), the next kernel's programs may be placed before
this one finishes; they wait in `gdc_wait()` until it has finished and its writes are visible.

The rule every kernel launched here with PDL keeps: `gdc_wait()` comes before its first load of
anything another kernel may write and before its first store, so it behaves as if launched
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

A GEMM on a layer's weight (written once, at loading, long before any launch that reads it) may
load its first weight K-step into registers *before* its wait (`early_weight_steps`, the
kernel's EARLY_B): those bytes stream while the previous kernel ends. Only there: a weight passed
to the public ops may be what the kernel before wrote. Every activation load and every store still
comes after the wait. It is off by default (`VLLM_INT8_EARLY_WEIGHT_STEPS=1` turns it on for one-row
batches): on the H200 (2026-12-02) one early step made 8 Llama-3-8B layers' linears chained in one
graph (`benchmarks/benchmark_chained_decode`) faster at M=1 (596 -> 582 µs, and 620 -> 604 in another
run) and slower at M=16 (606 -> 652; two steps: 643 and 669), but the whole Llama-3-8B-shaped model's
graph decode at batch 1 (`benchmark_layer --model-only`, where a torch kernel precedes each quant)
slower: 5.05 ms without, 5.27 with. An L2 prefetch of each
program's weight slice before the wait (`prefetch.global.L2`, 16-256 KiB per program) measured
slower at every size (M=1: 594 µs without, 595-660 with; M=16: 603 against 608-802) and was removed.

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
PDL_WAIT, PDL_EARLY = 1, 2  # the kernels' PDL constexpr: wait only, or also trigger the next kernel early
_EARLY = tl.constexpr(PDL_EARLY)
GEMM_EARLY_MAX_M = 64
QUANT_EARLY_MAX_SM_FRACTION = 0.5

EARLY_WEIGHT_ENV = "VLLM_INT8_EARLY_WEIGHT_STEPS"
DEFAULT_EARLY_WEIGHT_STEPS = 0  # off: slower in the whole model (see above)
MAX_EARLY_WEIGHT_STEPS = 2
EARLY_WEIGHT_MAX_M = 1  # above it one early step measured slower in the chain too (see above)

_forced: bool | None = None
_forced_early: int | None = None


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


def early_weight_steps(device: torch.device, m: int, static_weight: bool, even_k: bool) -> int:
    """How many weight K-steps a GEMM loads before its PDL wait (the kernel's EARLY_B): only for a
    static weight (a layer's), at most `EARLY_WEIGHT_MAX_M` rows, a K the block divides, with PDL
    on (else there is nothing to overlap); `VLLM_INT8_EARLY_WEIGHT_STEPS` sets the steps (0-2).
    `early_weight_forced` overrides all but the weight and K conditions (tests: the interpreter
    has no PDL)."""
    if not static_weight or not even_k:
        return 0
    if _forced_early is not None:
        return _forced_early
    if m > EARLY_WEIGHT_MAX_M or not pdl_enabled(device):
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
