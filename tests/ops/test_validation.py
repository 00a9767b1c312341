"""Bad arguments fail loudly at the Python boundary, naming the argument and what was expected."""

import pytest
import torch

from vllm_int8 import ops
from vllm_int8.ops.validation import MAX_K_ASYMMETRIC, MAX_K_SYMMETRIC


def good_mm_args(m=4, k=32, n=8):
    return {
        "input": torch.randint(-128, 128, (m, k), dtype=torch.int8),
        "weight": torch.randint(-128, 128, (n, k), dtype=torch.int8).t(),
        "scale_a": torch.rand(m, 1),
        "scale_b": torch.rand(n, 1),
        "out_dtype": torch.bfloat16,
        "bias": torch.randn(n, dtype=torch.bfloat16),
        "azp_adj": torch.zeros(n, dtype=torch.int32),
        "azp": torch.zeros(m, dtype=torch.int32),
    }


MM_CASES = [
    ("input", lambda a: a["input"].float(), TypeError, "input must have dtype int8"),
    ("weight", lambda a: a["weight"].float(), TypeError, "weight must have dtype int8"),
    ("weight", lambda a: torch.randint(-128, 128, (31, 8), dtype=torch.int8), ValueError, "weight must be \\[K=32"),
    ("weight", lambda a: torch.randint(-128, 128, (32, 16), dtype=torch.int8)[:, ::2], ValueError, "row- or column"),
    ("input", lambda a: a["input"][None], ValueError, "input must be 2-D"),
    ("scale_a", lambda a: torch.rand(3), ValueError, "scale_a must have 1 \\(per-tensor\\) or M=4"),
    ("scale_b", lambda a: torch.rand(5), ValueError, "scale_b must have 1 \\(per-tensor\\) or N=8"),
    ("scale_a", lambda a: a["scale_a"].half(), TypeError, "scale_a must have dtype float32"),
    ("bias", lambda a: a["bias"].to(torch.int8), TypeError, "bias must have dtype float16 or bfloat16 or float32"),
    ("bias", lambda a: torch.randn(7), ValueError, "bias must have N=8 elements"),
    ("azp_adj", lambda a: a["azp_adj"].float(), TypeError, "azp_adj must have dtype int32"),
    ("azp_adj", lambda a: None, ValueError, "azp was given without azp_adj"),
    ("azp", lambda a: torch.zeros(3, dtype=torch.int32), ValueError, "azp must have M=4 elements"),
    ("azp", lambda a: a["azp"].to(torch.int64), TypeError, "azp must have dtype int32"),
    ("out_dtype", lambda a: torch.int32, TypeError, "out_dtype must be float16, bfloat16 or float32"),
    ("scale_b", lambda a: torch.rand(8, 1, device="meta"), ValueError, "scale_b is on meta but the input is on cpu"),
]


@pytest.mark.parametrize("op", [ops.triton_scaled_mm, ops.torch_scaled_mm, ops.scaled_mm])
@pytest.mark.parametrize("name, make, error, message", MM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(MM_CASES)])
def test_scaled_mm_rejects(op, name, make, error, message):
    args = good_mm_args()
    args[name] = make(args)
    with pytest.raises(error, match=message):
        op(**args)


@pytest.mark.parametrize("symmetric, max_k", [(True, MAX_K_SYMMETRIC), (False, MAX_K_ASYMMETRIC)])
def test_k_beyond_the_int32_limit_is_refused(symmetric, max_k):
    args = good_mm_args(m=1, k=max_k + 1, n=1)
    if symmetric:
        args["azp_adj"] = args["azp"] = None
    with pytest.raises(ValueError, match=f"largest K={max_k}"):
        ops.torch_scaled_mm(**args)


def test_non_contiguous_activations_are_accepted(device):
    args = {
        name: None if t is None or isinstance(t, torch.dtype) else t.to(device) for name, t in good_mm_args().items()
    }
    args["out_dtype"] = torch.bfloat16
    strided = torch.randint(-128, 128, (32, 4), dtype=torch.int8, device=device).t()  # [4, 32], stride (1, 4)
    args["input"] = strided
    out = ops.triton_scaled_mm(**args)
    args["input"] = strided.contiguous()
    torch.testing.assert_close(out, ops.triton_scaled_mm(**args), rtol=0, atol=0)


QUANT_CASES = [
    (dict(x=torch.randint(0, 3, (2, 8), dtype=torch.int8)), TypeError, "x must have dtype float16"),
    (dict(x=torch.randn(2, 0)), ValueError, "x must have shape \\[..., K\\] with K >= 1"),
    (dict(x=torch.randn(2, 8), scale=torch.rand(2)), ValueError, "scale must have one element"),
    (dict(x=torch.randn(2, 8), scale=torch.rand(1).double()), TypeError, "scale must have dtype float32"),
    (dict(x=torch.randn(2, 8), azp=torch.zeros(1, dtype=torch.int32), symmetric=False), ValueError, "without scale"),
    (dict(x=torch.randn(2, 8), scale=torch.rand(1), symmetric=False), ValueError, "azp is required"),
    (
        dict(x=torch.randn(2, 8), scale=torch.rand(1), azp=torch.zeros(1, dtype=torch.int32)),
        ValueError,
        "azp was given with symmetric=True",
    ),
    (
        dict(x=torch.randn(2, 8), scale=torch.rand(1), azp=torch.zeros(1, dtype=torch.int8), symmetric=False),
        TypeError,
        "azp must have dtype int32",
    ),
]


@pytest.mark.parametrize("op", [ops.triton_scaled_int8_quant, ops.torch_scaled_int8_quant, ops.scaled_int8_quant])
@pytest.mark.parametrize("kwargs, error, message", QUANT_CASES)
def test_quant_rejects(op, kwargs, error, message):
    with pytest.raises(error, match=message):
        op(**kwargs)


def test_unknown_backend_argument():
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.scaled_int8_quant(torch.randn(2, 8), backend="cuda")
