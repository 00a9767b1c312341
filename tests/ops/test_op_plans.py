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
@pytest.mark.parametrize("tiles", ["split_k=1", "split_k=4", "tma"])
@pytest.mark.parametrize("layout", ["kn", "nk"])
@pytest.mark.parametrize("scheme", GEMM_SCHEMES)
def test_gemm_plans_replay_exactly(scheme, layout, tiles, monkeypatch):
    """Every plan path (pointer, split-K, TMA where the GPU and layout allow) against ordinary launches."""
    from vllm_int8.ops import scaled_mm_kernel as mm

    cfg = dataclasses.replace(SMALL_TILES, block_m=16, block_n=64, block_k=64, split_k=4 if tiles == "split_k=4" else 1)
    if tiles == "tma":
        cfg = dataclasses.replace(cfg, block_m=64, num_stages=3, tma=1)
    monkeypatch.setattr(mm, "select_config", lambda *a: cfg)
    for m in (1, 16, 1, 70):
        for _ in range(3):  # first call: plan; second: checked replay; third: plain replay
            a, b, sa, sb, bias, adj, azp = make_problem(scheme, m, 256, 96, layout, True, True, torch.bfloat16, "cuda")
            got = ops.triton_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp)
            expected = mm.launch_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp)
            assert torch.equal(got, expected)
    assert len(op_plans._plans) == 3 and all(p.checked for p in op_plans._plans.values())
    tma = tiles == "tma" and layout == "nk" and mm.tma_available(torch.device("cuda"))
    assert all(type(p).__name__ == ("_TmaPlan" if tma else "_Plan") for p in op_plans._plans.values())
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


def test_a_plan_key_changes_with_everything_the_argument_checks_read():
    """A call replays before its checks only on a key equal to a checked call's, so every
    property a check or Triton's specialization reads must change the key."""
    a, b, sa, sb, bias, adj, azp = make_problem("asym_token", 16, 64, 32, "nk", True, True, torch.bfloat16, "cpu")
    args = [a, b, sa, sb, torch.bfloat16, bias, adj, azp]
    key = op_plans.mm_key(*args)
    assert op_plans.mm_key(*[t.clone() if isinstance(t, torch.Tensor) else t for t in args]) == key
    for i, t in enumerate(args):
        if not isinstance(t, torch.Tensor):
            continue
        flat = t.reshape(-1)
        variants = [
            t.to(torch.float64 if t.is_floating_point() else torch.int16),  # dtype
            flat[: max(flat.numel() - 1, 1)],  # shape
            torch.empty(t.numel() + 1, dtype=t.dtype)[1:].view(t.shape),
        ]  # 16-byte alignment
        if t.dim() == 2 and min(t.shape) > 1:
            variants.append(t.t().contiguous().t() if t.is_contiguous() else t.contiguous())  # strides
        if i >= 5:
            variants.append(None)  # an optional tensor left out
        for v in variants:
            assert op_plans.mm_key(*args[:i], v, *args[i + 1 :]) != key, (i, v)
    x = torch.randn(4, 64)
    assert op_plans.quant_key(x, None, None, True) != op_plans.quant_key(x, None, None, False)
    assert op_plans.quant_key(x, None, None, True) != op_plans.quant_key(x.double(), None, None, True)
    one = torch.ones(1)
    assert op_plans.quant_key(x, one, None, True) != op_plans.quant_key(x, one.double(), None, True)


@needs_cuda
def test_a_checked_plan_replays_before_the_checks_and_bad_arguments_still_fail(monkeypatch):
    from vllm_int8.ops import dispatch

    checks = []
    real = dispatch.check_scaled_mm_args
    monkeypatch.setattr(dispatch, "check_scaled_mm_args", lambda *a: checks.append(1) or real(*a))
    a, b, sa, sb, bias, adj, azp = make_problem("asym_token", 16, 256, 96, "nk", True, True, torch.bfloat16, "cuda")
    for _ in range(4):  # plan, checked replay, then two replays before any check
        got = ops.triton_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp)
    assert len(checks) == 2
    from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm

    assert torch.equal(got, launch_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, azp))
    with pytest.raises(TypeError, match="scale_b must have dtype float32"):
        ops.triton_scaled_mm(a, b, sa, sb.double(), torch.bfloat16, bias, adj, azp)
    with pytest.raises(ValueError, match="azp must have M=16 elements"):
        ops.triton_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, adj, torch.zeros(17, dtype=torch.int32, device="cuda"))
    with pytest.raises(ValueError, match="weight must be"):
        ops.triton_scaled_mm(a, b[:-1], sa, sb, torch.bfloat16, bias, adj, azp)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("shape", [(1, 4096), (3, 5, 48), (7, 33)])
def test_dynamic_quant_outputs_are_fresh_aligned_and_disjoint(shape, symmetric):
    """q, scale and zero point: the shapes and dtypes the ops document, 16-byte aligned, none overlapping another."""
    x = torch.randn(shape)
    q, scale, azp = op_plans._quant_outputs(x, None, None, symmetric)
    rows = x.numel() // shape[-1]
    assert q.shape == x.shape and q.dtype == torch.int8 and q.is_contiguous()
    assert scale.shape == (rows, 1) and scale.dtype == torch.float32 and scale.is_contiguous()
    outs = [q, scale] if symmetric else [q, scale, azp]
    assert azp is None if symmetric else (azp.shape == (rows, 1) and azp.dtype == torch.int32)
    assert all(t.data_ptr() % 16 == 0 for t in outs)
    for i, t in enumerate(outs):
        t.fill_(i + 1)
    assert all(bool((t == i + 1).all()) for i, t in enumerate(outs))


def test_static_quant_outputs_are_the_callers():
    x, scale, azp = torch.randn(4, 32), torch.ones(1), torch.zeros(1, dtype=torch.int32)
    q, s, z = op_plans._quant_outputs(x, scale, azp, False)
    assert s is scale and z is azp and q.shape == x.shape and q.dtype == torch.int8


def test_a_split_k_plan_takes_its_workspace_from_the_stream_scratch(monkeypatch):
    """No per-call workspace allocation: each replay's workspace address lies in the stream's
    scratch buffer (the same one twice), and the output is fresh, [M, N] and contiguous."""
    from vllm_int8.ops import scratch

    calls = []

    class FakeReplay:
        def addresses(self, stream, *values):
            calls.append(values)

    monkeypatch.setattr(op_plans, "eager_counters_address", lambda device, stream, tiles: 12345)
    scratch.release()
    device = torch.device("cpu")
    plan = op_plans._Plan(FakeReplay(), torch.empty(4, 8, device=device), split_k=2, tiles=3, workspace_bytes=4096)
    a, w = torch.zeros(4, 16, dtype=torch.int8), torch.zeros(16, 8, dtype=torch.int8)
    sa, sb = torch.ones(4, 1), torch.ones(8, 1)
    outs = [plan.mm(0, a, w, sa, sb, torch.bfloat16, None, None, None) for _ in range(2)]
    buffer = scratch.scratch(0, 4096, device)
    assert [c[8] for c in calls] == [buffer.data_ptr()] * 2 and [c[9] for c in calls] == [12345] * 2
    assert all(o.shape == (4, 8) and o.is_contiguous() and o.dtype == torch.bfloat16 for o in outs)
    assert calls[0][2] == outs[0].data_ptr() and calls[0][5:8] == (None, None, None)
    scratch.release()
