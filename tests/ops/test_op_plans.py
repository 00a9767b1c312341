"""The public ops' launch plans (`op_plans.py`): replayed calls equal ordinary launches bit for bit
on every plan path, and calls that must not replay take the ordinary launch."""

import dataclasses

import pytest
import torch

from tests.problems import GEMM_SCHEMES, SMALL_TILES, make_problem
from vllm_int8 import ops
from vllm_int8.ops import op_plans, triton_compat

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="plans replay compiled GPU kernels")


@pytest.fixture(autouse=True)
def _fresh_plans():
    op_plans.clear()
    triton_compat.enable_again()
    yield
    op_plans.clear()


def test_no_plan_for_cpu_tensors():
    a = torch.zeros(2, 4, dtype=torch.int8)
    one = torch.ones(1)
    assert op_plans.scaled_mm(a, a.t(), one, one, torch.float32, None, None, None) is None
    assert op_plans.scaled_int8_quant(torch.zeros(2, 4), None, None, True) is None
    assert not op_plans._plans


@needs_cuda
@pytest.mark.parametrize("split_k", [1, 4])
@pytest.mark.parametrize("layout", ["kn", "nk"])
@pytest.mark.parametrize("scheme", GEMM_SCHEMES)
def test_gemm_plans_replay_exactly(scheme, layout, split_k, monkeypatch):
    from vllm_int8.ops import scaled_mm_kernel as mm

    cfg = dataclasses.replace(SMALL_TILES, block_m=16, block_n=64, block_k=64, split_k=split_k)
    monkeypatch.setattr(mm, "select_config", lambda *a: cfg)
    for m in (1, 16, 1, 70):
        for _ in range(3):  # first call: plan; second: checked replay; third: plain replay
            a, b, sa, sb, bias, adj, azp = make_problem(scheme, m, 256, 96, layout, True, True, torch.bfloat16, "cuda")
            got = ops.triton_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp)
            expected = mm.launch_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp)
            assert torch.equal(got, expected)
    assert len(op_plans._plans) == 3 and all(p.checked for p in op_plans._plans.values())
    assert triton_compat.replays_off() is None


@needs_cuda
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("symmetric", [True, False])
def test_quant_plans_replay_exactly(symmetric, static):
    scale = torch.tensor([0.02], device="cuda") if static else None
    azp = torch.tensor([-3], dtype=torch.int32, device="cuda") if static and not symmetric else None
    for m in (1, 16, 300):
        for _ in range(3):
            x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16) * 3
            got = ops.triton_scaled_int8_quant(x, scale, azp, symmetric)
            ref = ops.torch_scaled_int8_quant(x, scale, azp, symmetric)
            for g, r in zip(got, ref):
                assert (g is None and r is None) or torch.equal(g, r)
    assert len(op_plans._plans) == 3 and all(p.checked for p in op_plans._plans.values())


@needs_cuda
def test_captured_and_strided_calls_take_the_ordinary_launch():
    a, b, sa, sb, bias, adj, azp = make_problem("asym_token", 16, 256, 96, "nk", True, True, torch.bfloat16, "cuda")
    ops.triton_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp)
    plans = len(op_plans._plans)
    strided_scale = torch.rand(16, 2, device="cuda")[:, :1]
    assert op_plans.scaled_mm(a, b, strided_scale, sb, torch.bfloat16, bias, adj, azp) is None
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            assert op_plans.scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp) is None
    assert len(op_plans._plans) == plans
