"""Argument checks at the Python boundary of the ops.

Shape, dtype and device checks only: nothing here reads tensor values, so no check costs a
device synchronisation on the hot path. Each error names the argument and what was expected.
"""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)

# |sum_k (a_k - azp) * w_k| <= 255 * 128 * K must stay below 2**31 for the int32 accumulator
# (asymmetric activations: a - azp spans 255 values); symmetric: 128 * 128 * K.
MAX_K_ASYMMETRIC = (2**31 - 1) // (255 * 128)  # 65793
MAX_K_SYMMETRIC = (2**31 - 1) // (128 * 128)  # 131071


def _require_dtype(name: str, t: torch.Tensor, dtypes: tuple[torch.dtype, ...]) -> None:
    if t.dtype not in dtypes:
        expected = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} must have dtype {expected}, got {str(t.dtype).replace('torch.', '')}")


def _require_numel(name: str, t: torch.Tensor, allowed: tuple[int, ...], meaning: str) -> None:
    if t.numel() not in allowed:
        raise ValueError(f"{name} must have {meaning}, got shape {tuple(t.shape)}")


def _require_device(name: str, t: torch.Tensor, device: torch.device) -> None:
    if t.device != device:
        raise ValueError(f"{name} is on {t.device} but the input is on {device}: all tensors must share one device")


def is_weakly_contiguous(t: torch.Tensor) -> bool:
    """True for a 2-D tensor that is row-major or column-major with no gaps (the kernel's layouts)."""
    rows, cols = t.shape
    row_major = (t.stride(1) == 1 or cols <= 1) and (t.stride(0) >= max(cols, 1) or rows <= 1)
    col_major = (t.stride(0) == 1 or rows <= 1) and (t.stride(1) >= max(rows, 1) or cols <= 1)
    return row_major or col_major


def check_quant_args(x: torch.Tensor, scale: torch.Tensor | None, azp: torch.Tensor | None, symmetric: bool) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    _require_dtype("x", x, FLOAT_DTYPES)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have shape [..., K] with K >= 1, got {tuple(x.shape)}")
    if scale is None:
        if azp is not None:
            raise ValueError("azp was given without scale: a static zero point needs its static scale")
        return
    _require_dtype("scale", scale, (torch.float32,))
    _require_numel("scale", scale, (1,), "one element (static per-tensor scale)")
    _require_device("scale", scale, x.device)
    if symmetric and azp is not None:
        raise ValueError("azp was given with symmetric=True: pass symmetric=False for a zero point")
    if not symmetric:
        if azp is None:
            raise ValueError("azp is required when scale is given with symmetric=False (static asymmetric)")
        _require_dtype("azp", azp, (torch.int32,))
        _require_numel("azp", azp, (1,), "one element (static per-tensor zero point)")
        _require_device("azp", azp, x.device)


def check_weight_args(
    m: int,
    k: int,
    device: torch.device,
    weight: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None,
    azp_adj: torch.Tensor | None,
    asymmetric: bool,
) -> None:
    """The weight-side arguments of a GEMM whose activation is [m, k] on `device`."""
    _require_dtype("weight", weight, (torch.int8,))
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [K, N], got shape {tuple(weight.shape)}")
    n = weight.shape[1]
    if weight.shape[0] != k:
        raise ValueError(f"weight must be [K={k}, N] to match the activation's K, got {tuple(weight.shape)}")
    if not is_weakly_contiguous(weight):
        raise ValueError(f"weight must be row- or column-major without gaps, got strides {weight.stride()}")
    if out_dtype not in FLOAT_DTYPES:
        raise TypeError(f"out_dtype must be float16, bfloat16 or float32, got {out_dtype}")
    _require_device("weight", weight, device)
    _require_dtype("scale_b", scale_b, (torch.float32,))
    _require_numel("scale_b", scale_b, (1, n), f"1 (per-tensor) or N={n} (per-channel) elements")
    _require_device("scale_b", scale_b, device)
    if bias is not None:
        _require_dtype("bias", bias, FLOAT_DTYPES)
        _require_numel("bias", bias, (n,), f"N={n} elements")
        _require_device("bias", bias, device)
    if asymmetric and azp_adj is None:
        raise ValueError("azp_adj is required with asymmetric activations: the zero-point correction needs it")
    if azp_adj is not None:
        _require_dtype("azp_adj", azp_adj, (torch.int32,))
        _require_numel("azp_adj", azp_adj, (n,), f"N={n} elements")
        _require_device("azp_adj", azp_adj, device)
    max_k = MAX_K_SYMMETRIC if azp_adj is None else MAX_K_ASYMMETRIC
    if k > max_k:
        raise ValueError(f"input has K={k}, above the largest K={max_k} whose int32 accumulator cannot overflow")


def check_scaled_mm_args(
    input: torch.Tensor,
    weight: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None,
    azp_adj: torch.Tensor | None,
    azp: torch.Tensor | None,
) -> None:
    _require_dtype("input", input, (torch.int8,))
    if input.dim() != 2:
        raise ValueError(f"input must be 2-D [M, K], got shape {tuple(input.shape)}")
    m, k = input.shape
    if azp is not None and azp_adj is None:
        raise ValueError("azp was given without azp_adj: the zero-point correction needs the weight column sums")
    check_weight_args(m, k, input.device, weight, scale_b, out_dtype, bias, azp_adj, False)
    _require_dtype("scale_a", scale_a, (torch.float32,))
    _require_numel("scale_a", scale_a, (1, m), f"1 (per-tensor) or M={m} (per-token) elements")
    _require_device("scale_a", scale_a, input.device)
    if azp is not None:
        _require_dtype("azp", azp, (torch.int32,))
        _require_numel("azp", azp, (m,), f"M={m} elements (one zero point per token)")
        _require_device("azp", azp, input.device)
