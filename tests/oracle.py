"""Float64 oracles and tolerances shared by the tests (independent of vllm_int8's own math)."""

import os

import torch

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
# Triton's interpreter truncates fp32 -> bf16 casts (runtime/interpreter.py, _convert_float with no
# rounding mode) where GPUs round to nearest even: one whole bf16 ulp there, half of one on GPUs.
if os.environ.get("TRITON_INTERPRET") == "1":
    UNIT_ROUNDOFF[torch.bfloat16] = 2.0**-7


def scaled_mm_float64(a, b, scale_a, scale_b, bias=None, azp_adj=None, azp=None):
    """`scale_a*scale_b*(a@b - azp*azp_adj) + bias` in float64, and the magnitude for tolerances."""
    acc = a.double() @ b.double()
    if azp_adj is not None:
        adj = azp_adj.double().reshape(1, -1)
        acc = acc - (adj if azp is None else azp.double().reshape(-1, 1) * adj)
    scaled = acc * scale_a.double().reshape(-1, 1) * scale_b.double().reshape(1, -1)
    magnitude = scaled.abs()
    if bias is not None:
        scaled = scaled + bias.double().reshape(1, -1)
        magnitude = magnitude + bias.double().abs().reshape(1, -1)
    return scaled, magnitude


def assert_within_rounding(out: torch.Tensor, ref64: torch.Tensor, magnitude: torch.Tensor) -> None:
    """|out - ref| within one rounding of out's dtype plus a few fp32 epilogue roundings."""
    assert out.shape == ref64.shape
    out64 = out.double().cpu()
    ref64, magnitude = ref64.cpu(), magnitude.cpu()
    assert torch.isfinite(out64).all()
    bound = magnitude * (UNIT_ROUNDOFF[out.dtype] + 4 * 2.0**-24) + 1e-30
    err = (out64 - ref64).abs()
    worst = (err / bound).max().item()
    assert worst <= 1.0, f"error {worst:.3f}x the rounding bound (max abs err {err.max().item():.3e})"
