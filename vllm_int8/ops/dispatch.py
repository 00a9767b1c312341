"""Public ops: validate, pick Triton or the torch reference, and run as `torch.library` custom ops.

Registered as custom ops with fake (meta) implementations so `torch.compile(fullgraph=True)`
traces them without graph breaks. The backend is Triton for GPU tensors (CUDA and ROCm) and the
torch reference for CPU tensors; `VLLM_INT8_OPS_BACKEND=triton|torch` forces one (Triton on CPU
tensors needs `TRITON_INTERPRET=1`).
"""

from __future__ import annotations

import importlib
import os

import torch

from vllm_int8.ops import reference
from vllm_int8.ops.validation import check_quant_args, check_scaled_mm_args
from vllm_int8.platform import env_reader

BACKEND_ENV = "VLLM_INT8_OPS_BACKEND"
BACKENDS = ("auto", "triton", "torch")
_backend_env = env_reader(BACKEND_ENV)


def launch_scaled_int8_quant(*args, **kwargs):
    """The Triton quant launcher, imported on first use: CPU-only installs may lack Triton."""
    return triton_module("quant_kernel").launch_scaled_int8_quant(*args, **kwargs)


def launch_scaled_mm(*args, **kwargs):
    """The Triton GEMM launcher, imported on first use: CPU-only installs may lack Triton."""
    return triton_module("scaled_mm_kernel").launch_scaled_mm(*args, **kwargs)


def triton_module(name: str):
    try:
        return importlib.import_module(f"vllm_int8.ops.{name}")
    except ImportError as e:
        raise ImportError(
            "the Triton backend needs the `triton` package (CUDA: `pip install triton`; ROCm: it comes "
            "with PyTorch's ROCm wheels as pytorch-triton-rocm)"
        ) from e


_plans_module = None


def _op_plans():
    """`op_plans`, imported once on first use (it needs Triton)."""
    global _plans_module
    if _plans_module is None:
        _plans_module = triton_module("op_plans")
    return _plans_module


def plain_eager(x: torch.Tensor) -> bool:
    """Whether a call on x is a plain eager one: a real tensor, no tracing, no dispatch mode. Then
    the op's body may run directly (replaying a launch plan) without the dispatcher's round trip;
    anything else (torch.compile, fake tensors, a mode that records ops) goes through torch.ops."""
    return type(x) is torch.Tensor and not torch.compiler.is_compiling() and not torch._C._len_torch_dispatch_stack()


def _replays_now(x: torch.Tensor, backend: str):
    """`op_plans` where an eager call on x may try a checked plan before its argument checks: a
    plain CUDA tensor, the Triton backend (asked for, or "auto" with no override), plans made."""
    plans = _plans_module
    if plans is None or type(x) is not torch.Tensor or not x.is_cuda:
        return None
    if backend != "triton" and (backend != "auto" or _backend_env() is not None):
        return None
    if torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack():
        return None
    return plans


def use_triton(device: torch.device, backend: str = "auto") -> bool:
    """Whether an op on `device` runs the Triton kernel (else the torch reference).

    backend "auto" follows `VLLM_INT8_OPS_BACKEND` if set, else Triton for GPU tensors (CUDA
    and ROCm) and the reference for CPU tensors.
    """
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV, "auto").lower()
        if backend not in BACKENDS:
            raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}, got {backend!r}")
    elif backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return device.type == "cuda"
    return backend == "triton"


# Registered through a plain `torch.library.Library` (define + impl + fake), as vLLM's
# `direct_register_custom_op` does: an eager call goes straight through the C++ dispatcher to the
# Python body, without `torch.library.custom_op`'s Python wrapper layers (which cost ~200 us per
# call on a slow host). CompositeExplicitAutograd: one body for every device; the body picks the
# backend from the tensors' device.
_lib = torch.library.Library("vllm_int8", "FRAGMENT")  # noqa: TOR901 - the ops need no autograd


def register_op(schema: str, impl, fake) -> None:
    name = schema.split("(")[0]
    _lib.define(schema)
    _lib.impl(name, impl, "CompositeExplicitAutograd")
    torch.library.register_fake(f"vllm_int8::{name}", fake, lib=_lib)


def _quant_dynamic(x: torch.Tensor, symmetric: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if use_triton(x.device, backend):
        q, scale, azp = launch_scaled_int8_quant(x, None, None, symmetric)
    else:
        q, scale, azp = reference.torch_scaled_int8_quant(x, None, None, symmetric)
    return q, scale, _empty_int32(x) if azp is None else azp


def _quant_dynamic_fake(x: torch.Tensor, symmetric: bool, backend: str):
    rows = x.numel() // x.shape[-1]
    azp = _empty_int32(x) if symmetric else x.new_empty((rows, 1), dtype=torch.int32)
    # Contiguous, like both real bodies (not empty_like, which would copy x's strides).
    return x.new_empty(x.shape, dtype=torch.int8), x.new_empty((rows, 1), dtype=torch.float32), azp


def _empty_int32(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty((0,), dtype=torch.int32)


def _quant_static(
    x: torch.Tensor, scale: torch.Tensor, azp: torch.Tensor | None, symmetric: bool, backend: str
) -> torch.Tensor:
    if use_triton(x.device, backend):
        return launch_scaled_int8_quant(x, scale, azp, symmetric)[0]
    return reference.torch_scaled_int8_quant(x, scale, azp, symmetric)[0]


def _quant_static_fake(x, scale, azp, symmetric, backend) -> torch.Tensor:
    return x.new_empty(x.shape, dtype=torch.int8)


def _scaled_mm(
    input: torch.Tensor,
    weight: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None,
    azp_adj: torch.Tensor | None,
    azp: torch.Tensor | None,
    backend: str,
) -> torch.Tensor:
    if use_triton(input.device, backend):
        return launch_scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
    return reference.torch_scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)


def _scaled_mm_fake(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp, backend) -> torch.Tensor:
    return input.new_empty((input.shape[0], weight.shape[1]), dtype=out_dtype)


register_op("quant_dynamic(Tensor x, bool symmetric, str backend) -> (Tensor, Tensor, Tensor)", _quant_dynamic,
          _quant_dynamic_fake)  # fmt: skip
register_op(
    "quant_static(Tensor x, Tensor scale, Tensor? azp, bool symmetric, str backend) -> Tensor",
    _quant_static,
    _quant_static_fake,
)
register_op(
    "scaled_mm(Tensor input, Tensor weight, Tensor scale_a, Tensor scale_b, ScalarType out_dtype, Tensor? bias, "
    "Tensor? azp_adj, Tensor? azp, str backend) -> Tensor",
    _scaled_mm,
    _scaled_mm_fake,
)


def scaled_int8_quant(
    x: torch.Tensor,
    scale: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    symmetric: bool = True,
    *,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Quantize x [..., K] (fp16/bf16/fp32) to int8.

    `scale=None`: dynamic per-token, returns scale [M, 1] float32 (and azp [M, 1] int32 when
    asymmetric), M = x.numel() // K. Given `scale` (numel 1, float32; plus `azp` int32 when
    asymmetric): static per-tensor, the given scale/azp are returned. Round half to even.
    `backend`: "auto" (see `use_triton`), "triton" or "torch".
    """
    plans = _replays_now(x, backend)
    if plans is not None:
        replayed = plans.replay_quant(x, scale, azp, symmetric)
        if replayed is not None:
            return replayed
    check_quant_args(x, scale, azp, symmetric)
    if x.is_cuda and plain_eager(x) and use_triton(x.device, backend):
        planned = _op_plans().scaled_int8_quant(x, scale, azp, symmetric)
        if planned is not None:
            return planned
    if scale is None:
        q, scale, azp = torch.ops.vllm_int8.quant_dynamic(x, symmetric, backend)
        return q, scale, None if symmetric else azp
    return torch.ops.vllm_int8.quant_static(x, scale, azp, symmetric, backend), scale, azp


def scaled_mm(
    input: torch.Tensor,
    weight: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
    azp_adj: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """`scale_a * scale_b * (input @ weight - azp * azp_adj) + bias`.

    input [M, K] int8; weight [K, N] int8, row- or column-major; scale_a numel 1 or M and scale_b
    numel 1 or N (float32); azp_adj int32 [N]; azp int32 [M] or None (then azp_adj holds
    azp * column sums, the static case); bias [N]. Integer part exact in int32.
    `backend`: "auto" (see `use_triton`), "triton" (one kernel launch) or "torch".
    """
    plans = _replays_now(input, backend)
    if plans is not None:
        replayed = plans.replay_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
        if replayed is not None:
            return replayed
    check_scaled_mm_args(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
    if input.is_cuda and plain_eager(input) and use_triton(input.device, backend):
        planned = _op_plans().scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
        if planned is not None:
            return planned
    return torch.ops.vllm_int8.scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp, backend)


def triton_scaled_mm(
    input: torch.Tensor,
    weight: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
    azp_adj: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
) -> torch.Tensor:
    """`scaled_mm` on the Triton kernel (one launch), whatever the device."""
    return scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp, backend="triton")


def torch_scaled_mm(
    input: torch.Tensor,
    weight: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
    azp_adj: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
) -> torch.Tensor:
    """`scaled_mm` on the pure-torch reference."""
    return scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp, backend="torch")


def triton_scaled_int8_quant(
    x: torch.Tensor,
    scale: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    symmetric: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`scaled_int8_quant` on the Triton kernel, whatever the device."""
    return scaled_int8_quant(x, scale, azp, symmetric, backend="triton")


def torch_scaled_int8_quant(
    x: torch.Tensor,
    scale: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    symmetric: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`scaled_int8_quant` on the pure-torch reference."""
    return scaled_int8_quant(x, scale, azp, symmetric, backend="torch")
