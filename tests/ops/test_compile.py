"""The ops are torch.library custom ops: torch.compile(fullgraph=True) traces them without breaks."""

import torch

from vllm_int8 import ops


def quant_then_gemm(x, w, w_scale, azp_adj, bias):
    x_q, x_s, x_zp = ops.scaled_int8_quant(x, symmetric=False)
    return ops.scaled_mm(x_q, w, x_s, w_scale, x.dtype, bias, azp_adj, x_zp)


def test_fullgraph_compile_matches_eager(device):
    x = torch.randn(6, 64, device=device)
    w = torch.randint(-128, 128, (32, 64), dtype=torch.int8, device=device).t()
    w_scale = torch.rand(32, 1, device=device) * 0.01
    azp_adj = w.sum(0, dtype=torch.int32)
    bias = torch.randn(32, device=device)
    eager = quant_then_gemm(x, w, w_scale, azp_adj, bias)
    torch._dynamo.reset()
    compiled = torch.compile(quant_then_gemm, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, w, w_scale, azp_adj, bias), eager, rtol=0, atol=0)


def test_fake_tensors_give_the_real_shapes(device):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(2, 5, 64, device=device)
        q, scale, azp = ops.scaled_int8_quant(x, symmetric=False)
        assert q.shape == (2, 5, 64) and q.dtype == torch.int8
        assert scale.shape == (10, 1) and azp.shape == (10, 1)
        w = torch.empty(64, 32, dtype=torch.int8, device=device)
        out = ops.scaled_mm(q.reshape(10, 64), w, scale, torch.empty(1, device=device), torch.bfloat16)
        assert out.shape == (10, 32) and out.dtype == torch.bfloat16
