"""Property test: random schemes, shapes, strides, dtypes and magnitudes through both ops.

The Triton kernels (interpreter on CPU) must give the reference's int8 values bit for bit, and
the GEMM must equal float64 math on those integers within the output's rounding.
"""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle import assert_within_rounding, scaled_mm_float64
from vllm_int8 import ops

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # hypothesis and function fixtures do not mix


@st.composite
def problems(draw):
    dtype = draw(st.sampled_from(DTYPES))
    max_exp = 3 if dtype == torch.float16 else 30
    return {
        "m": draw(st.integers(1, 40)),
        "k": draw(st.integers(1, 80)),
        "n": draw(st.integers(1, 40)),
        "dtype": dtype,
        "symmetric": draw(st.booleans()),
        "static": draw(st.booleans()),
        "static_scale": draw(st.sampled_from([0.0, 1e-6, 0.01, 0.3, 7.0])),
        "static_azp": draw(st.integers(-128, 127)),
        "per_channel": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "weight_kn": draw(st.booleans()),
        "x_transposed": draw(st.booleans()),
        "exponent": draw(st.integers(-max_exp, max_exp)),
        "constant_row": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(problems())
def test_quant_then_gemm_matches_reference_and_float64(p):
    gen = torch.Generator().manual_seed(p["seed"])
    m, k, n = p["m"], p["k"], p["n"]
    x = torch.randn(k, m, generator=gen).t() if p["x_transposed"] else torch.randn(m, k, generator=gen)
    x = x * 10.0 ** p["exponent"]
    if p["constant_row"]:
        x[0] = x[0, 0]
    x = x.to(p["dtype"])
    scale = azp = None
    if p["static"]:
        scale = torch.tensor([p["static_scale"]], dtype=torch.float32)
        azp = None if p["symmetric"] else torch.tensor([p["static_azp"]], dtype=torch.int32)

    q_ref, s_ref, zp_ref = ops.torch_scaled_int8_quant(x, scale, azp, p["symmetric"])
    x, scale, azp = (None if t is None else t.to(DEVICE) for t in (x, scale, azp))
    q, x_s, x_zp = ops.triton_scaled_int8_quant(x, scale, azp, p["symmetric"])
    assert torch.equal(q.cpu(), q_ref) and torch.equal(x_s.cpu(), s_ref)
    assert (x_zp is None) == (zp_ref is None) and (x_zp is None or torch.equal(x_zp.cpu(), zp_ref))

    w = torch.randint(-128, 128, (k, n) if p["weight_kn"] else (n, k), dtype=torch.int8, generator=gen)
    w = (w if p["weight_kn"] else w.t()).to(DEVICE)
    w_s = (torch.rand(n if p["per_channel"] else 1, generator=gen) * 0.01 + 1e-4).to(DEVICE)
    bias = torch.randn(n, generator=gen).to(DEVICE) if p["bias"] else None
    azp_adj = per_token_azp = None
    if not p["symmetric"]:
        azp_adj = w.to(torch.int32).sum(0, dtype=torch.int32)
        if p["static"]:
            azp_adj = azp_adj * x_zp  # folded, as the linear layer does
        else:
            per_token_azp = x_zp.reshape(-1)
    out = ops.triton_scaled_mm(q, w, x_s, w_s, torch.float32, bias, azp_adj, per_token_azp)
    ref, magnitude = scaled_mm_float64(q, w, x_s, w_s, bias, azp_adj, per_token_azp)
    assert_within_rounding(out, ref, magnitude)
