"""quant_scaled_mm: the one-launch path (the GEMM quantizes its own rows) equals quant + GEMM bit for bit."""

import dataclasses

import pytest
import torch

from tests.oracle import assert_within_rounding, scaled_mm_float64
from tests.problems import LAYER_SCHEMES, SMALL_TILES, layer_problem
from vllm_int8 import ops
from vllm_int8.ops.quant_mm import fused_fits

SCHEMES = LAYER_SCHEMES


def two_launches(p, out_dtype):
    """The same math as two public ops: quantize, then the GEMM."""
    static = p["input_scale"] is not None
    x_q, x_s, x_zp = ops.triton_scaled_int8_quant(p["x"], p["input_scale"], p["input_zero_point"], p["symmetric"])
    azp = None if static or p["symmetric"] else x_zp.reshape(-1)
    out = ops.triton_scaled_mm(x_q, p["weight"], x_s, p["scale_b"], out_dtype, p["bias"], p["azp_adj"], azp)
    return out, (x_q, x_s, azp)


@pytest.mark.parametrize(("split_k", "swap_ab"), [(1, 0), (3, 0), (3, 1)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", [(1, 33, 17), (3, 64, 48), (19, 100, 35)])
def test_one_launch_equals_two_launches(shape, scheme, dtype, split_k, swap_ab, device):
    from vllm_int8.ops.scaled_mm_kernel import launch_quant_scaled_mm

    m, k, n = shape
    p = layer_problem(scheme, m, k, n, dtype, True, True, device)
    config = dataclasses.replace(SMALL_TILES, split_k=split_k, swap_ab=swap_ab)
    fused = launch_quant_scaled_mm(**p, out_dtype=dtype, config=config)
    separate, (x_q, x_s, azp) = two_launches(p, dtype)
    assert torch.equal(fused, separate)
    assert_within_rounding(fused, *scaled_mm_float64(x_q, p["weight"], x_s, p["scale_b"], p["bias"], p["azp_adj"], azp))


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the interpreter's numpy on NaN rows
@pytest.mark.parametrize("scheme", SCHEMES)
def test_rows_with_nan_or_constant_values(scheme, device):
    from vllm_int8.ops.scaled_mm_kernel import launch_quant_scaled_mm

    p = layer_problem(scheme, 4, 40, 24, torch.float32, False, False, device)
    p["x"][1] = float("nan")
    p["x"][2] = 3.0
    p["x"][3] = 0.0
    fused = launch_quant_scaled_mm(**p, out_dtype=torch.float32, config=SMALL_TILES)
    separate, _ = two_launches(p, torch.float32)
    assert torch.equal(fused.isnan(), separate.isnan())
    assert torch.equal(fused.nan_to_num(), separate.nan_to_num())


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("m", [1, 40])  # one launch and two launches
def test_public_op_matches_the_two_ops(m, scheme, backend, device):
    p = layer_problem(scheme, m, 96, 64, torch.float32, True, True, device)
    out = ops.quant_scaled_mm(**p, backend=backend)
    separate, _ = two_launches(p, torch.float32)
    assert out.dtype == torch.float32 and out.shape == (m, 64)
    torch.testing.assert_close(out, separate, rtol=2**-20, atol=1e-6)


def test_public_op_refuses_bad_arguments(device):
    p = layer_problem("dynamic_asym", 2, 32, 16, torch.float32, False, True, device)
    with pytest.raises(ValueError, match="azp_adj is required"):
        ops.quant_scaled_mm(**{**p, "azp_adj": None})
    with pytest.raises(ValueError, match=r"weight must be \[K=30"):
        ops.quant_scaled_mm(**{**p, "x": p["x"][:, :30]})
    with pytest.raises(TypeError, match="x must have dtype"):
        ops.quant_scaled_mm(**{**p, "x": p["x"].to(torch.int32)})
    with pytest.raises(ValueError, match="x must be 2-D"):
        ops.quant_scaled_mm(**{**p, "x": p["x"].reshape(1, 2, 32)})


def test_one_launch_only_for_one_token_while_rereads_stay_small():
    assert fused_fits(1, 2, 32, 1) and fused_fits(1, 2, 64, 4)
    assert not fused_fits(2, 2, 64, 1) and not fused_fits(16, 2, 32, 1) and not fused_fits(1, 4, 32, 4)


@pytest.mark.parametrize("captured", [False, True])
def test_one_token_takes_one_launch_eagerly_and_two_under_graph_capture(captured, monkeypatch, device):
    """quant_mm's rule: the one-launch path saves host time, so only eager calls take it."""
    from vllm_int8.ops import quant_mm, scaled_mm_kernel

    launched = []
    for name in ("launch_quant_scaled_mm", "launch_scaled_mm"):
        real = getattr(scaled_mm_kernel, name)
        monkeypatch.setattr(scaled_mm_kernel, name, lambda *a, _real=real, _name=name, **kw: (
            launched.append(_name), _real(*a, **kw))[1])  # fmt: skip
    monkeypatch.setattr(quant_mm, "capturing", lambda x: captured)
    p = layer_problem("dynamic_asym", 1, 64, 48, torch.float32, True, True, device)
    out = ops.quant_scaled_mm(**p, backend="triton")
    assert launched == (["launch_scaled_mm"] if captured else ["launch_quant_scaled_mm"])
    assert torch.equal(out, two_launches(p, torch.float32)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graph capture needs a GPU")
def test_capture_is_seen_on_capturing_streams_only():
    from vllm_int8.ops.quant_mm import capturing

    x = torch.ones(1, device="cuda")
    assert not capturing(x) and not capturing(x.cpu())
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        assert not capturing(x)
    graph, seen = torch.cuda.CUDAGraph(), []
    with torch.cuda.graph(graph):
        seen.append(capturing(x))
        x.add_(1)
    assert seen == [True]
