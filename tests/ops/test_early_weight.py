"""A layer's GEMM loading its first weight K-steps before the PDL wait (`pdl.early_weight_steps`,
the kernel's EARLY_B): when it is used, that every path stays exact (forced, on the interpreter
too), and on the GPU that no chained kernel ever reads a stale activation under a graph."""

import dataclasses

import pytest
import torch

from tests.problems import SMALL_TILES, SWAPPED_TILES, captured, layer_problem, make_problem
from vllm_int8 import ops
from vllm_int8.ops import pdl
from vllm_int8.ops import scaled_mm_kernel as mm
from vllm_int8.ops.pdl import EARLY_WEIGHT_ENV, early_weight_forced, early_weight_steps, pdl_forced
from vllm_int8.ops.quant_mm import quant_scaled_mm_impl

CUDA = torch.device("cuda", 0)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def test_only_static_weights_of_decode_batches_with_pdl(monkeypatch):
    monkeypatch.setattr(pdl, "pdl_enabled", lambda device: True)
    monkeypatch.delenv(EARLY_WEIGHT_ENV, raising=False)
    assert early_weight_steps(CUDA, 1, True, True) == pdl.DEFAULT_EARLY_WEIGHT_STEPS == 0  # off unless asked
    monkeypatch.setenv(EARLY_WEIGHT_ENV, "1")
    assert early_weight_steps(CUDA, 1, False, True) == 0  # a weight the kernel before may have written
    assert early_weight_steps(CUDA, 1, True, False) == 0  # ragged K: the early steps are unmasked in K
    assert early_weight_steps(CUDA, pdl.EARLY_WEIGHT_MAX_M + 1, True, True) == 0  # measured slower there
    monkeypatch.setenv(EARLY_WEIGHT_ENV, "2")
    assert early_weight_steps(CUDA, 1, True, True) == 2
    monkeypatch.setenv(EARLY_WEIGHT_ENV, "9")
    assert early_weight_steps(CUDA, 1, True, True) == pdl.MAX_EARLY_WEIGHT_STEPS
    monkeypatch.setattr(pdl, "pdl_enabled", lambda device: False)
    assert early_weight_steps(CUDA, 1, True, True) == 0  # no wait to overlap
    with early_weight_forced(1):
        assert early_weight_steps(CUDA, 1, True, True) == 1
        assert early_weight_steps(CUDA, 1, False, True) == 0
    with pytest.raises(ValueError, match="steps"):
        with early_weight_forced(3):
            pass


def _constexprs(a, b, out, sa, sb, bias, adj, azp, cfg, static_weight):
    return mm.launch_arguments(a, b, out, sa, sb, bias, adj, azp, azp is not None, mm.A_INT8, True, cfg,
                               static_weight)[2]  # fmt: skip


# K = 96 with 32-deep steps: 3 steps, so split 2 leaves a one-step slice, split 4 an empty one.
@pytest.mark.parametrize(
    "cfg",
    [
        SMALL_TILES,
        SWAPPED_TILES,
        dataclasses.replace(SMALL_TILES, split_k=2),
        dataclasses.replace(SWAPPED_TILES, split_k=4),
    ],
    ids=["tiles", "swapped", "split2", "swapped_split4"],
)
@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("scheme", ["sym_tensor", "asym_token"])
def test_early_steps_are_exact(scheme, steps, cfg):
    a, b, sa, sb, bias, adj, azp = make_problem(scheme, 5, 96, 40, "nk", True, True, torch.float32, DEVICE)
    out = torch.empty(5, 40, device=DEVICE)
    with early_weight_forced(steps):
        assert _constexprs(a, b, out, sa, sb, bias, adj, azp, cfg, True)["EARLY_B"] == steps
        assert "EARLY_B" not in _constexprs(a, b, out, sa, sb, bias, adj, azp, cfg, False)
        got = mm.launch_scaled_mm(a, b, sa, sb, torch.float32, bias, adj, azp, cfg, static_weight=True)
    assert torch.equal(got, ops.torch_scaled_mm(a, b, sa, sb, torch.float32, bias, adj, azp))


@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("scheme", ["dynamic_asym", "static_asym", "dynamic_sym"])
def test_early_steps_of_the_one_launch_path_are_exact(scheme, m):
    p = layer_problem(scheme, m, 96, 40, torch.float32, True, True, DEVICE)
    args = (p["x"], p["weight"], p["scale_b"], torch.float32, p["bias"], p["azp_adj"], p["input_scale"],
            p["input_zero_point"], scheme.endswith("_sym"))  # fmt: skip
    with early_weight_forced(2):
        got = mm.launch_quant_scaled_mm(*args, config=SWAPPED_TILES, static_weight=True)
    assert torch.equal(got, quant_scaled_mm_impl(*args, "torch"))


needs_hopper = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9 or bool(torch.version.hip),
    reason="the early weight loads run before a PDL wait: a Hopper GPU",
)


@needs_hopper
@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("m", [1, 16])
def test_chained_layers_under_a_graph_never_see_a_stale_activation(m, steps):
    """Layer 2's quant reads what layer 1's GEMM wrote, its GEMM what its quant wrote, each GEMM
    loading weight steps before its wait; a graph of the chain replayed with new inputs each time
    must give the eager chain's result every time."""
    one = layer_problem("dynamic_asym", m, 4096, 4096, torch.bfloat16, True, True, "cuda")
    two = layer_problem("dynamic_sym", m, 4096, 1024, torch.bfloat16, False, True, "cuda")

    def chain(x):
        h = quant_scaled_mm_impl(x, one["weight"], one["scale_b"], x.dtype, one["bias"], one["azp_adj"], None, None,
                                 False, "auto", True)  # fmt: skip
        return quant_scaled_mm_impl(h, two["weight"], two["scale_b"], x.dtype, None, None, None, None, True, "auto",
                                    True)  # fmt: skip

    with pdl_forced(True), early_weight_forced(steps):
        x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
        graph, y = captured(chain, x)
        for i in range(40):
            fresh = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16) * (1 + i % 5)
            x.copy_(fresh)  # a torch kernel writes the activation right before the graph's first quant
            graph.replay()
            expected = chain(fresh)
            assert torch.equal(y, expected), i
