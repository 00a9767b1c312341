"""The one-row decode kernel (`gemv_kernel`): when it is chosen, and that every mode it runs
(int8 rows, the row quantized in the kernel, static and dynamic, sym and asym, the weight loaded
before or after the wait) equals the reference bit for bit, on the interpreter and natively."""

import pytest
import torch

from tests.oracle import assert_within_rounding, scaled_mm_float64
from tests.problems import GEMM_SCHEMES, LAYER_SCHEMES, captured, layer_problem, make_problem
from vllm_int8 import ops
from vllm_int8.ops import gemv_kernel
from vllm_int8.ops import scaled_mm_kernel as mm
from vllm_int8.ops.gemv_kernel import gemv_block_n, gemv_fits, gemv_forced, gemv_selected
from vllm_int8.ops.layer_plans import _GemvGemm
from vllm_int8.ops.pdl import pdl_forced
from vllm_int8.ops.quant_mm import quant_scaled_mm_impl

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def launches(monkeypatch):
    """The one-row launches made inside the test, and small tiles: several programs, a ragged last one."""
    seen = []
    real = mm.launch_gemv

    def spy(*args):
        seen.append(args[1].shape)
        return real(*args)

    monkeypatch.setattr(mm, "launch_gemv", spy)
    monkeypatch.setattr(gemv_kernel, "TILE_BYTES", 2048)
    return seen


def test_one_row_only_and_rows_that_fit():
    assert gemv_fits(1, 4096) and gemv_fits(1, gemv_kernel.MAX_BLOCK_K)
    assert not gemv_fits(2, 4096) and not gemv_fits(1, gemv_kernel.MAX_BLOCK_K + 1) and not gemv_fits(1, 0)
    assert not gemv_selected(1, 4096, torch.device("cpu"))  # CPU tensors: the reference
    with gemv_forced(True):
        assert gemv_selected(1, 4096, torch.device("cpu")) and not gemv_selected(16, 4096, torch.device("cpu"))
    with gemv_forced(False):
        assert not gemv_selected(1, 4096, torch.device("cuda", 0))


def test_rows_per_program_hold_about_the_tile_bytes():
    assert gemv_block_n(4096) == 16 and gemv_block_n(14336) == 4 and gemv_block_n(3584) == 16
    assert gemv_block_n(18944) == 2 and gemv_block_n(32768) == 2 and gemv_block_n(96, 2048) == 16
    assert gemv_block_n(5000, 2048) == 1  # at least one row


@pytest.mark.parametrize("layout", ["nk", "kn"])
@pytest.mark.parametrize("k", [96, 200])
@pytest.mark.parametrize("scheme", GEMM_SCHEMES)
def test_int8_row_equals_the_reference(launches, scheme, k, layout):
    a, b, sa, sb, bias, adj, azp = make_problem(scheme, 1, k, 40, layout, True, True, torch.float32, DEVICE)
    with gemv_forced(True):
        got = ops.triton_scaled_mm(a, b, sa, sb, torch.float32, bias, adj, azp)
    assert launches, "the one-row kernel did not run"
    assert torch.equal(got, ops.torch_scaled_mm(a, b, sa, sb, torch.float32, bias, adj, azp))


@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_half_outputs_within_rounding_of_float64(launches, out_dtype):
    a, b, sa, sb, bias, adj, azp = make_problem("asym_token", 1, 160, 72, "nk", True, True, out_dtype, DEVICE)
    with gemv_forced(True):
        got = ops.triton_scaled_mm(a, b, sa, sb, out_dtype, bias, adj, azp)
    assert launches
    assert_within_rounding(got, *scaled_mm_float64(a, b, sa, sb, bias, adj, azp))


@pytest.mark.parametrize("static_weight", [True, False])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("scheme", LAYER_SCHEMES)
def test_row_quantized_in_the_kernel_equals_quant_then_gemm(launches, scheme, dtype, static_weight):
    p = layer_problem(scheme, 1, 200, 40, dtype, True, True, DEVICE)
    args = (p["x"], p["weight"], p["scale_b"], torch.float32, p["bias"], p["azp_adj"], p["input_scale"],
            p["input_zero_point"], p["symmetric"])  # fmt: skip
    with gemv_forced(True):
        got = quant_scaled_mm_impl(*args, "auto" if DEVICE == "cuda" else "triton", static_weight)
    assert launches
    assert torch.equal(got, quant_scaled_mm_impl(*args, "torch"))


def test_rows_with_nan_or_zeros_quantize_as_the_quant_kernel(launches):
    p = layer_problem("dynamic_asym", 1, 96, 40, torch.float32, False, True, DEVICE)
    for x in (torch.zeros_like(p["x"]), p["x"].clone().index_fill_(1, torch.tensor([5], device=DEVICE), float("nan"))):
        args = (x, p["weight"], p["scale_b"], torch.float32, None, p["azp_adj"], None, None, False)
        with gemv_forced(True):
            got = quant_scaled_mm_impl(*args, "triton", True)
        assert torch.equal(got.isnan(), quant_scaled_mm_impl(*args, "torch").isnan())
        assert torch.equal(got.nan_to_num(), quant_scaled_mm_impl(*args, "torch").nan_to_num())


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available() or bool(torch.version.hip), reason="an NVIDIA GPU")


@needs_cuda
@pytest.mark.parametrize("k", [4096, 14336])
def test_layer_replays_the_one_row_kernel_natively(k):
    """The layer's eager plan at M = 1 (real decode sizes) equals the reference, first call and replays."""
    from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig

    layer = Int8Linear(k, 1024, Int8ScaledMMLinearLayerConfig(False, True, False), device="cuda")
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-128, 128, (1024, k), dtype=torch.int8))
        layer.weight_scale.copy_(torch.rand(1024, 1) * 1e-3 + 1e-4)
    layer.process_weights_after_loading()
    bound = layer.kernel._bound
    for _ in range(4):
        x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
        expected = quant_scaled_mm_impl(x, bound.weight, bound.scale_b, x.dtype, None, bound.azp_adj, None, None,
                                        False, "torch")  # fmt: skip
        assert torch.equal(layer(x), expected)
    assert any(isinstance(p.gemm, _GemvGemm) for p in bound._plans.values())


@needs_cuda
def test_chained_one_row_layers_under_a_graph_never_see_a_stale_activation():
    """Each kernel reads the row the one before it wrote, its weight loaded before its PDL wait; a
    graph of the chain replayed with new rows must give the eager chain's result every time."""
    one = layer_problem("dynamic_asym", 1, 4096, 4096, torch.bfloat16, True, True, "cuda")
    two = layer_problem("dynamic_sym", 1, 4096, 14336, torch.bfloat16, False, True, "cuda")
    three = layer_problem("static_asym", 1, 14336, 4096, torch.bfloat16, False, True, "cuda")

    def chain(x):
        h = quant_scaled_mm_impl(x, one["weight"], one["scale_b"], x.dtype, one["bias"], one["azp_adj"], None, None,
                                 False, "auto", True)  # fmt: skip
        h = quant_scaled_mm_impl(h, two["weight"], two["scale_b"], x.dtype, None, None, None, None, True, "auto", True)
        return quant_scaled_mm_impl(h * 1e-3, three["weight"], three["scale_b"], x.dtype, None, three["azp_adj"],
                                    three["input_scale"], three["input_zero_point"], False, "auto", True)  # fmt: skip

    with pdl_forced(True), gemv_forced(True):
        x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
        graph, y = captured(chain, x)
        for i in range(40):
            fresh = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16) * (1 + i % 5)
            x.copy_(fresh)
            graph.replay()
            expected = chain(fresh)
            assert torch.equal(y, expected), i
