"""The int32 accumulator at its documented limit: worst-case magnitudes at the largest K stay exact."""

import pytest
import torch

from vllm_int8 import ops
from vllm_int8.ops.validation import MAX_K_ASYMMETRIC, MAX_K_SYMMETRIC


@pytest.mark.parametrize("op", [ops.triton_scaled_mm, ops.torch_scaled_mm])
def test_asymmetric_worst_case_at_the_largest_k_is_exact(op, device):
    k = MAX_K_ASYMMETRIC
    a = torch.full((1, k), -128, dtype=torch.int8, device=device)
    w = torch.full((k, 2), -128, dtype=torch.int8, device=device)
    w[:, 1] = 64  # both results are exact in float32: 2**31 - 128 and -(2**30 - 64)
    azp = torch.full((1,), 127, dtype=torch.int32, device=device)  # a - azp = -255 everywhere
    azp_adj = w.to(torch.int64).sum(0).to(torch.int32)
    one = torch.ones(1, device=device)
    out = op(a.to(device), w, one, one, torch.float32, None, azp_adj, azp)
    expected = torch.tensor([[-255 * -128 * k, -255 * 64 * k]], dtype=torch.float64)
    assert expected.abs().max() < 2**31
    assert torch.equal(out.double().cpu(), expected)


@pytest.mark.parametrize("op", [ops.triton_scaled_mm, ops.torch_scaled_mm])
def test_symmetric_worst_case_at_the_largest_k_is_exact(op, device):
    k = MAX_K_SYMMETRIC
    a = torch.full((1, k), -128, dtype=torch.int8, device=device)
    w = torch.full((k, 1), -128, dtype=torch.int8, device=device)
    one = torch.ones(1, device=device)
    out = op(a, w, one, one, torch.float32)
    assert out.item() == 128 * 128 * k < 2**31
