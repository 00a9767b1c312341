"""64-bit offsets: tensors past 2**31 elements (GPU only; too large for the interpreter)."""

import pytest
import torch

from vllm_int8 import ops

needs_big_gpu = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_properties(0).total_memory < 40 * 2**30,
    reason="needs a GPU with 40 GiB",
)


@needs_big_gpu
def test_quant_and_gemm_past_2_31_elements():
    k, n = 4096, 48
    m = 2**31 // k + 37  # M*K passes 2**31: the last rows sit beyond any int32 offset
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    q, scale, azp = ops.triton_scaled_int8_quant(x, symmetric=False)
    tail = slice(m - 40, m)
    q_ref, scale_ref, azp_ref = ops.torch_scaled_int8_quant(x[tail].cpu(), symmetric=False)
    assert torch.equal(q[tail].cpu(), q_ref) and torch.equal(scale[tail].cpu(), scale_ref)
    del x
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda").t()
    w_s = torch.rand(n, device="cuda") * 0.01
    adj = w.sum(0, dtype=torch.int32)
    out = ops.triton_scaled_mm(q, w, scale, w_s, torch.float32, None, adj, azp.reshape(-1))
    a = q[tail].cpu().double() - azp[tail].cpu().double()
    ref = (a @ w.cpu().double()) * scale[tail].cpu().double() * w_s.cpu().double()
    torch.testing.assert_close(out[tail].cpu().double(), ref, rtol=1e-5, atol=1e-5)


@needs_big_gpu
def test_gemm_with_a_weight_past_2_31_elements():
    k, n = 8192, 2**31 // 8192 + 64  # K*N passes 2**31
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda").t()
    a = torch.randint(-2, 3, (3, k), dtype=torch.int8, device="cuda")  # |result| < 2**24: exact in fp32
    one = torch.ones(1, device="cuda")
    out = ops.triton_scaled_mm(a, w, one, one, torch.float32)
    cols = slice(n - 64, n)
    ref = a.cpu().double() @ w[:, cols].cpu().double()
    assert torch.equal(out[:, cols].cpu().double(), ref)
