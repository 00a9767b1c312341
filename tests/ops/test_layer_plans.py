"""The bound apply (cached launch plans replaying compiled kernels) equals the ordinary launch exactly."""

import pytest
import torch

from tests.problems import LAYER_SCHEMES as SCHEMES
from tests.problems import layer_problem
from vllm_int8.ops.layer_plans import BoundQuantScaledMM
from vllm_int8.ops.pdl import pdl_forced
from vllm_int8.ops.quant_mm import quant_scaled_mm_impl

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="plans replay compiled GPU kernels")


def bound_for(p, backend="auto"):
    return BoundQuantScaledMM(p["weight"], p["scale_b"].reshape(-1), p["azp_adj"], p["input_scale"],
                              p["input_zero_point"], p["symmetric"], backend)  # fmt: skip


def ordinary(p, x, bias, out_dtype):
    return quant_scaled_mm_impl(x, p["weight"], p["scale_b"], out_dtype, bias, p["azp_adj"], p["input_scale"],
                                p["input_zero_point"], p["symmetric"], "auto")  # fmt: skip


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bound_equals_ordinary_on_every_device(scheme, device):
    p = layer_problem(scheme, 1, 96, 64, torch.float32, True, True, device)
    bound = bound_for(p)
    for m in (1, 2, 1, 40):
        x = torch.randn(m, 96, device=device)
        assert torch.equal(bound(x, torch.float32, p["bias"]), ordinary(p, x, p["bias"], torch.float32))


@needs_cuda
@pytest.mark.parametrize("pdl", [True, False], ids=["pdl_where_supported", "no_pdl"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_plans_replay_exactly_and_follow_layout_changes(scheme, pdl):
    with pdl_forced(pdl):  # a plan fills the constexprs a launch left out (no PDL ones without PDL)
        plans_replay_exactly_and_follow_layout_changes(scheme)


def plans_replay_exactly_and_follow_layout_changes(scheme):
    p = layer_problem(scheme, 1, 4096, 4096, torch.bfloat16, True, True, "cuda")
    bound = bound_for(p)
    wide = torch.randn(4, 4096 * 2 + 8, device="cuda", dtype=torch.bfloat16)
    inputs = [
        torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16),
        torch.randn(16, 4096, device="cuda", dtype=torch.bfloat16),  # two launches: quant and GEMM replayed
        wide[:1, 1:4097],  # misaligned by 2 bytes
        wide[:2, ::2][:, :4096],  # strided columns
        torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16),
    ]
    for _ in range(3):
        for x in inputs:
            for bias in (p["bias"], None):
                got = bound(x, torch.bfloat16, bias)
                assert torch.equal(got, ordinary(p, x, bias, torch.bfloat16))
    assert bound._fast, bound.slow_reason
    assert len(bound._plans) >= 6  # the fast path really ran (M=1: 2 layouts, M=16: 1, each with/without bias)
    assert all(plan.checked for plan in bound._plans.values())  # each replay was checked against a launch


@needs_cuda
@pytest.mark.parametrize("split_k", [1, 4])
@pytest.mark.parametrize("m", [1, 16, 64])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_plan_path_replays_exactly(scheme, m, split_k, monkeypatch):
    """Forced pointer configs (split-K or not) at one-launch (M=1) and two-launch (M=16, 64) sizes:
    the replayed launches, after their first check, equal ordinary launches bit for bit."""
    from vllm_int8.ops import scaled_mm_kernel as mm
    from vllm_int8.ops import triton_compat
    from vllm_int8.ops.mm_configs import MMConfig

    cfg = MMConfig(16 if m == 1 else 64, 64, 128, group_m=1, num_warps=4, num_stages=3, split_k=split_k)
    monkeypatch.setattr(mm, "select_config", lambda *a: cfg)
    p = layer_problem(scheme, 1, 2048, 512, torch.bfloat16, True, True, "cuda")
    bound = bound_for(p)
    for _ in range(4):
        x = torch.randn(m, 2048, device="cuda", dtype=torch.bfloat16)
        assert torch.equal(bound(x, torch.bfloat16, p["bias"]), ordinary(p, x, p["bias"], torch.bfloat16))
    (plan,) = bound._plans.values()
    assert plan.checked and triton_compat.replays_off() is None
    assert type(plan).__name__ == ("_OneLaunchPlan" if m == 1 else "_TwoLaunchPlan")


@needs_cuda
def test_plans_under_graph_capture():
    p = layer_problem("dynamic_asym", 1, 14336, 4096, torch.bfloat16, False, True, "cuda")
    bound = bound_for(p)
    x = torch.randn(1, 14336, device="cuda", dtype=torch.bfloat16)
    expected = ordinary(p, x, None, torch.bfloat16)
    bound(x, torch.bfloat16, None)  # a plan exists before capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = bound(x, torch.bfloat16, None)
    for _ in range(3):
        out.zero_()
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, expected)


@needs_cuda
def test_plans_follow_swapped_parameter_storage():
    """Plans pass device addresses, re-read per call: a weight or scale whose storage is swapped
    (`param.data = ...`, as `Module.to` does) after a plan was made must not leave a stale pointer."""
    p = layer_problem("dynamic_asym", 1, 512, 256, torch.bfloat16, True, True, "cuda")
    bound = bound_for(p)
    x = torch.randn(1, 512, device="cuda", dtype=torch.bfloat16)
    bound(x, torch.bfloat16, p["bias"])  # makes the plan
    new_weight = torch.randint(-128, 128, (256, 512), dtype=torch.int8, device="cuda").t()
    bound.weight.data = new_weight
    bound.azp_adj.data = new_weight.sum(0, dtype=torch.int32)
    bound.scale_b.data = bound.scale_b.data * 2
    p.update(weight=new_weight, azp_adj=bound.azp_adj, scale_b=bound.scale_b)
    assert torch.equal(bound(x, torch.bfloat16, p["bias"]), ordinary(p, x, p["bias"], torch.bfloat16))
    assert len(bound._plans) == 1


@needs_cuda
@pytest.mark.parametrize("m", [256, 300])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_tma_plans_replay_exactly(scheme, m, monkeypatch):
    """Prefill on Hopper: the quant kernel and the TMA GEMM replayed, descriptors built per call."""
    from vllm_int8.ops import scaled_mm_kernel as mm
    from vllm_int8.ops import triton_compat
    from vllm_int8.ops.mm_configs import MMConfig

    if not mm.tma_available(torch.device("cuda")):
        pytest.skip("TMA needs compute capability >= 9.0")
    cfg = MMConfig(128, 128, 128, group_m=8, num_warps=4, num_stages=3, tma=1)
    monkeypatch.setattr(mm, "select_config", lambda *a: cfg)
    p = layer_problem(scheme, 1, 1024, 512, torch.bfloat16, True, True, "cuda")
    bound = bound_for(p)
    with mm.record_launches() as launches:
        for _ in range(3):
            x = torch.randn(m, 1024, device="cuda", dtype=torch.bfloat16)
            assert torch.equal(bound(x, torch.bfloat16, p["bias"]), ordinary(p, x, p["bias"], torch.bfloat16))
    assert all(c.tma for *_, c in launches)  # the ordinary launches compared with took TMA too
    (plan,) = bound._plans.values()
    assert plan.checked and type(plan.gemm).__name__ == "_TmaGemm" and triton_compat.replays_off() is None


@needs_cuda
@pytest.mark.parametrize("scheme", SCHEMES)
def test_replays_under_launch_hooks_pass_tensors_and_stay_exact(scheme, monkeypatch):
    """With a profiler's launch hook set, replays hand it tensors and launch metadata, and the
    two-launch plan allocates its scales as tensors: results stay bit for bit."""
    from triton import knobs

    seen = []
    p = layer_problem(scheme, 1, 2048, 512, torch.bfloat16, True, True, "cuda")
    bound = bound_for(p)
    x = torch.randn(16, 2048, device="cuda", dtype=torch.bfloat16)
    bound(x, torch.bfloat16, p["bias"])  # the plan, made without hooks
    monkeypatch.setattr(knobs.runtime, "launch_enter_hook", lambda metadata: seen.append(metadata))
    for _ in range(3):
        assert torch.equal(bound(x, torch.bfloat16, p["bias"]), ordinary(p, x, p["bias"], torch.bfloat16))
    assert seen and bound._plans
