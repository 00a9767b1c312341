"""Pure-torch INT8 W8A8 math: the CPU path of the ops and the oracle of the Triton kernels.

Every float step is one IEEE fp32 operation in the same order as in the Triton kernels, so the
int8 values, scales and zero points match the kernels bit for bit, not just approximately.
"""

from __future__ import annotations

import torch

INT8_MIN = -128
INT8_MAX = 127
# Quotients x/scale are clamped to this before rounding: wide enough that clamping can never
# change the saturated int8 result (|azp| <= 128), small enough for exact fp32 rounding.
QUOTIENT_CLAMP = 512.0


def divide(a: torch.Tensor, b: float) -> torch.Tensor:
    """IEEE a / b on every device: a Python-number divisor lets CUDA torch multiply by 1/b instead."""
    return a / torch.full_like(a, b)


def quantize_with(x: torch.Tensor, scale: torch.Tensor, azp: torch.Tensor | None) -> torch.Tensor:
    """`clamp(round_half_even(x / scale) + azp, -128, 127)`; a zero scale and NaN quotients give `azp`.

    x is float32; scale/azp broadcast against it (azp as float32 or int32, or None for 0).
    """
    safe_scale = torch.where(scale != 0, scale, torch.ones_like(scale))
    v = torch.where(scale != 0, x / safe_scale, torch.zeros_like(x))
    v = torch.where(v == v, v, torch.zeros_like(v))
    v = torch.round(v.clamp(-QUOTIENT_CLAMP, QUOTIENT_CLAMP))  # torch.round: half to even
    if azp is not None:
        v = v + azp.to(torch.float32)
    return v.clamp(INT8_MIN, INT8_MAX).to(torch.int8)


def dynamic_scale_and_azp(x: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row scale (and zero point) of a float32 [M, K] tensor.

    Symmetric: `s = amax|x| / 127`. Asymmetric: the row's range is widened to contain 0 (as
    compressed-tensors' observers do), `s = (max - min) / 255`, `azp = round(-128 - min / s)`, so
    azp always lies in [-128, 127] and the int32 GEMM epilogue cannot overflow. A row holding a
    NaN or +-inf (or whose range overflows float32) gets scale NaN and azp 0: its output is NaN
    and no other row is touched.
    """
    x = torch.where(torch.isnan(x), torch.full_like(x, float("inf")), x)  # NaN counts as +inf
    if symmetric:
        scale = divide(x.abs().amax(dim=-1, keepdim=True), INT8_MAX)
        return torch.where(torch.isinf(scale), torch.full_like(scale, float("nan")), scale), None
    hi = x.amax(dim=-1, keepdim=True).clamp(min=0.0)
    lo = x.amin(dim=-1, keepdim=True).clamp(max=0.0)
    scale = divide(hi - lo, INT8_MAX - INT8_MIN)
    safe_scale = torch.where(scale != 0, scale, torch.ones_like(scale))
    azp = torch.where(scale != 0, INT8_MIN - lo / safe_scale, torch.zeros_like(scale))
    bad = torch.isinf(scale)
    azp = torch.where(bad, torch.zeros_like(azp), torch.round(azp))
    return torch.where(bad, torch.full_like(scale, float("nan")), scale), azp.to(torch.int32)


def torch_scaled_int8_quant(
    x: torch.Tensor,
    scale: torch.Tensor | None = None,
    azp: torch.Tensor | None = None,
    symmetric: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Reference of `scaled_int8_quant` (arguments already validated)."""
    rows = x.reshape(-1, x.shape[-1]).to(torch.float32)
    if scale is None:
        scale, azp = dynamic_scale_and_azp(rows, symmetric)
        q = quantize_with(rows, scale, azp)
    else:
        q = quantize_with(rows, scale.reshape(1, 1).to(torch.float32), None if symmetric else azp.reshape(1, 1))
    # Contiguous whatever x's strides (elementwise ops keep them): the same layout as the kernel's.
    return q.reshape(x.shape).contiguous(), scale, (None if symmetric else azp)


EXACT_FP32_K = 1024  # 1024 products of |q| <= 128 sum to at most 2**24: every fp32 partial sum is exact


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int8 x int8 -> int32 product, in float arithmetic where no rounding can happen.

    fp32 over K-chunks of EXACT_FP32_K (each chunk's partial sums are integers below 2**24, so
    exact in any summation order) when fp32 matmuls run at full precision, else fp64 (exact below
    2**53). Not `torch._int_mm`: on CPUs without VNNI it ran 13x slower than fp32 chunks here
    (2048x576x1536: 1.2 s against 0.09 s, AVX2, 2026-11-25), and CUDA has no int32 matmul.
    """
    if a.device.type == "cpu" and torch.get_float32_matmul_precision() == "highest":
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=torch.int32, device=a.device)
        for k0 in range(0, a.shape[1], EXACT_FP32_K):
            chunk = a[:, k0 : k0 + EXACT_FP32_K].float() @ b[k0 : k0 + EXACT_FP32_K].float()
            acc += chunk.to(torch.int32)
        return acc
    return (a.to(torch.float64) @ b.to(torch.float64)).to(torch.int32)


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
    """Reference of `triton_scaled_mm`: `scale_a*scale_b*(input@weight - azp*azp_adj) + bias`.

    The integer part is computed and corrected in int32 (wrapping like the kernel), then scaled in
    float32 as `(acc * scale_a) * scale_b + bias`, then cast once to `out_dtype`.
    """
    acc = int8_matmul(input, weight)
    if azp_adj is not None:
        correction = azp_adj.reshape(1, -1).to(torch.int32)
        if azp is not None:
            correction = azp.reshape(-1, 1).to(torch.int32) * correction
        acc = acc - correction
    out = acc.to(torch.float32) * scale_a.reshape(-1, 1) * scale_b.reshape(1, -1)
    if bias is not None:
        out = out + bias.reshape(1, -1).to(torch.float32)
    return out.to(out_dtype).contiguous()
