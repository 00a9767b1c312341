"""The GEMM's L2 prefetch of its weight slice before the PDL wait: when it is asked for, and on the
GPU, that results stay exact and no kernel ever reads a stale activation under a graph."""

import pytest
import torch

from tests.problems import layer_problem, make_problem
from vllm_int8 import ops
from vllm_int8.ops import pdl
from vllm_int8.ops.pdl import PREFETCH_ENV, pdl_forced, prefetch_lines

CUDA = torch.device("cuda", 0)
K_MAJOR = torch.zeros(64, 4096, dtype=torch.int8).t()  # [K, N] view of [N, K]: K-contiguous


def test_lines_only_where_asked_and_useful(monkeypatch):
    monkeypatch.setattr(pdl, "pdl_enabled", lambda device: True)
    monkeypatch.setenv(PREFETCH_ENV, "64")
    assert prefetch_lines(CUDA, 16, K_MAJOR, 64, 4096) == 8  # 64 KiB / (64 columns x 128 B)
    assert prefetch_lines(CUDA, 16, K_MAJOR, 128, 4096) == 4
    assert prefetch_lines(CUDA, 16, K_MAJOR, 64, 512) == 4  # never past the program's K-slice
    monkeypatch.setenv(PREFETCH_ENV, "48")
    assert prefetch_lines(CUDA, 16, K_MAJOR, 64, 4096) == 4  # a power of two: 6 lines -> 4
    assert prefetch_lines(CUDA, 65, K_MAJOR, 64, 4096) == 0  # not a weight stream any more
    assert prefetch_lines(CUDA, 1, K_MAJOR.t().contiguous().t().contiguous(), 64, 4096) == 0  # N-contiguous
    monkeypatch.setenv(PREFETCH_ENV, "0")
    assert prefetch_lines(CUDA, 1, K_MAJOR, 64, 4096) == 0
    monkeypatch.setattr(pdl, "pdl_enabled", lambda device: False)
    monkeypatch.setenv(PREFETCH_ENV, "64")
    assert prefetch_lines(CUDA, 1, K_MAJOR, 64, 4096) == 0  # no PDL wait to overlap


needs_hopper = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9 or bool(torch.version.hip),
    reason="the prefetch runs before a PDL wait: a Hopper GPU",
)


@needs_hopper
@pytest.mark.parametrize("m", [1, 16, 64])
@pytest.mark.parametrize("scheme", ["sym_token", "asym_token", "asym_static"])
def test_prefetching_gemm_is_exact(scheme, m, monkeypatch):
    from vllm_int8.ops import scaled_mm_kernel as mm

    monkeypatch.setenv(PREFETCH_ENV, "64")
    with pdl_forced(True):
        a, b, sa, sb, bias, adj, azp = make_problem(scheme, m, 4096, 512, "nk", True, True, torch.bfloat16, "cuda")
        out = torch.empty(m, 512, device="cuda", dtype=torch.bfloat16)
        _, _, constexprs = mm.launch_arguments(a, b, out, sa, sb, bias, adj, azp, azp is not None, mm.A_INT8, True,
                                               mm.select_config(m, 512, 4096, a.device))  # fmt: skip
        assert constexprs.get("PREFETCH_LINES", 0) > 0
        got = mm.launch_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp)
    assert torch.equal(got, ops.torch_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp))


@needs_hopper
@pytest.mark.parametrize("m", [1, 16])
def test_chained_layers_under_a_graph_never_see_a_stale_activation(m, monkeypatch):
    """Layer 2's quant reads what layer 1's GEMM wrote, its GEMM what its quant wrote; a graph of
    the chain replayed with new inputs each time must give the eager chain's result every time."""
    monkeypatch.setenv(PREFETCH_ENV, "256")
    one = layer_problem("dynamic_asym", m, 4096, 4096, torch.bfloat16, True, True, "cuda")
    two = layer_problem("dynamic_sym", m, 4096, 1024, torch.bfloat16, False, True, "cuda")

    def chain(x):
        h = ops.quant_scaled_mm(x, one["weight"], one["scale_b"], None, one["bias"], one["azp_adj"], symmetric=False)
        return ops.quant_scaled_mm(h, two["weight"], two["scale_b"], symmetric=True)

    with pdl_forced(True):
        x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            chain(x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y = chain(x)
        for i in range(40):
            fresh = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16) * (1 + i % 5)
            x.copy_(fresh)  # a torch kernel writes the activation right before the graph's first quant
            graph.replay()
            expected = chain(fresh)
            assert torch.equal(y, expected), i
