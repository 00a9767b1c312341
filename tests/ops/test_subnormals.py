"""Subnormal scales: the kernels must not flush them to zero where the reference keeps them.

Rows whose values sit near float32's smallest normal (1.2e-38) give per-token scales of ~1e-40,
below it: a flush-to-zero division or multiply anywhere would make the scale 0 (all q = azp) or a
divisor 0 (all q saturated). Run natively on the GPU, this is the check that NVIDIA's backend
(which sets nvvm-reflect-ftz for libdevice) still divides and scales with IEEE subnormals.
"""

import os

import pytest
import torch

from vllm_int8 import ops

TINY = torch.finfo(torch.float32).tiny


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("magnitude", [TINY * 4, TINY, TINY / 64])  # normal, smallest normal, subnormal rows
def test_tiny_rows_quantize_like_the_reference(magnitude, symmetric, dtype, device):
    if dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("Triton's interpreter mis-converts subnormal bf16 inputs to fp32 (_convert_float); GPUs do not")
    x = (torch.randn(8, 96, dtype=torch.float64) * magnitude).to(dtype).to(device)
    q, scale, azp = ops.triton_scaled_int8_quant(x, symmetric=symmetric)
    q_ref, scale_ref, azp_ref = ops.torch_scaled_int8_quant(x.cpu(), symmetric=symmetric)
    assert (scale_ref < TINY).any() and (scale_ref > 0).all()  # the case under test: subnormal, nonzero scales
    assert torch.equal(scale.cpu(), scale_ref)
    assert torch.equal(q.cpu(), q_ref)
    if not symmetric:
        assert torch.equal(azp.cpu(), azp_ref)
    assert q.abs().amax() >= 100  # not flushed: the rows use the int8 range


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.bfloat16])
def test_subnormal_scales_in_the_gemm_epilogue(out_dtype, device):
    a = torch.randint(-128, 128, (6, 64), dtype=torch.int8, device=device)
    w = torch.randint(-128, 128, (64, 16), dtype=torch.int8, device=device)
    scale_a = torch.rand(6, 1, device=device) * TINY / 8  # subnormal
    scale_b = torch.rand(16, 1, device=device) + 0.5
    out = ops.triton_scaled_mm(a, w, scale_a, scale_b, out_dtype)
    ref = ops.torch_scaled_mm(a.cpu(), w.cpu(), scale_a.cpu(), scale_b.cpu(), out_dtype)
    assert ref.abs().max() > 0
    if out_dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET") == "1":  # it truncates to bf16
        torch.testing.assert_close(out.cpu().float(), ref.float(), rtol=2**-7, atol=0)
    else:
        assert torch.equal(out.cpu(), ref)
