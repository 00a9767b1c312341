"""The layer's launch planner on CPU, with the launch itself stood in (the interpreter cannot
replay): which plan each batch size and config gets, and that a replay wires the quant kernel's
outputs (in the stream's scratch) into the GEMM's inputs at the addresses the plan laid out."""

import dataclasses
import inspect
from types import SimpleNamespace

import pytest
import torch

from tests.problems import layer_problem
from vllm_int8.ops import layer_plans, quant_kernel, scaled_mm_kernel, scratch, tma_mm_kernel, triton_compat
from vllm_int8.ops.mm_configs import MMConfig

POINTER = MMConfig(16, 64, 128, group_m=1, num_warps=4, num_stages=3)
TMA = MMConfig(128, 128, 128, group_m=8, num_warps=4, num_stages=4, tma=1)


class Recorder:
    """A compiled kernel that records each `run` (grid, stream, ..., arguments)."""

    function, packed_metadata = "fn", "meta"

    def __init__(self, name):
        self.name, self.runs = name, []

    def run(self, *args):
        self.runs.append(args)


def params(jit_fn) -> list:
    """A kernel's parameters (name, default), compiled or interpreted alike."""
    if hasattr(jit_fn, "params"):
        return jit_fn.params
    signature = inspect.signature(jit_fn.fn).parameters.values()
    return [SimpleNamespace(name=p.name, default=None if p.default is p.empty else p.default) for p in signature]


def names(jit_fn) -> list[str]:
    return [p.name for p in params(jit_fn)]


@pytest.fixture
def planner(monkeypatch):
    """Launches stood in: `Replay.launch` makes the Replay of a launch that never ran."""
    launched = {}

    def launch(cls, jit_fn, grid, args, constexprs, per_call):
        compiled = launched.setdefault(jit_fn.__name__, Recorder(jit_fn.__name__))
        kernel = SimpleNamespace(params=params(jit_fn), pre_run_hooks=[])
        return cls.of_launch(compiled, kernel, grid, args, constexprs, per_call)

    monkeypatch.setattr(triton_compat.Replay, "launch", classmethod(launch))
    monkeypatch.setattr(triton_compat, "hooks_active", lambda: False)
    scratch.release()
    return launched


def bound_and_plan(scheme, m, cfg, monkeypatch, tma=False):
    monkeypatch.setattr(scaled_mm_kernel, "select_config", lambda *a: cfg)
    monkeypatch.setattr(scaled_mm_kernel, "tma_available", lambda device: tma)
    monkeypatch.setattr(scaled_mm_kernel, "tma_layout_problem", lambda *a: None)
    p = layer_problem(scheme, m, 256, 128, torch.bfloat16, True, True, "cpu")
    bound = layer_plans.BoundQuantScaledMM(p["weight"], p["scale_b"].reshape(-1), p["azp_adj"], p["input_scale"],
                                           p["input_zero_point"], p["symmetric"], "auto")  # fmt: skip
    plan, _ = bound._make_plan(p["x"], torch.bfloat16, p["bias"])
    return bound, plan, p


@pytest.mark.parametrize("scheme", ["dynamic_asym", "static_sym"])
def test_one_token_decode_is_one_launch(scheme, planner, monkeypatch):
    _, plan, _ = bound_and_plan(scheme, 1, POINTER, monkeypatch)
    assert type(plan).__name__ == "_OneLaunchPlan" and plan.gemm.workspace_bytes == 0
    _, split, _ = bound_and_plan(scheme, 1, dataclasses.replace(POINTER, split_k=2), monkeypatch)
    assert split.gemm.workspace_bytes == 4 * 2 * 2 * 16 * 64  # tiles x slices x tile, int32


@pytest.mark.parametrize("m, cfg, tma, gemm", [(16, POINTER, False, "_Gemm"), (256, TMA, True, "_TmaGemm"),
                                               (256, TMA, False, "_Gemm")])  # fmt: skip
def test_batches_are_quant_then_gemm(m, cfg, tma, gemm, planner, monkeypatch):
    _, plan, _ = bound_and_plan("dynamic_asym", m, cfg, monkeypatch, tma=tma)
    assert type(plan).__name__ == "_TwoLaunchPlan" and type(plan.gemm).__name__ == gemm


def test_strided_rows_take_ordinary_launches(planner, monkeypatch):
    monkeypatch.setattr(layer_plans.BoundQuantScaledMM, "ordinary", lambda self, *a: "ordinary")
    monkeypatch.setattr(scaled_mm_kernel, "select_config", lambda *a: POINTER)
    p = layer_problem("dynamic_asym", 16, 256, 128, torch.bfloat16, False, True, "cpu")
    bound = layer_plans.BoundQuantScaledMM(p["weight"], p["scale_b"].reshape(-1), p["azp_adj"], None, None, False,
                                           "auto")  # fmt: skip
    assert bound._make_plan(p["x"].t().contiguous().t(), torch.bfloat16, None) == (None, "ordinary")


@pytest.mark.parametrize("split_k", [1, 4])
@pytest.mark.parametrize("symmetric", [False, True])
def test_a_replay_wires_the_quant_outputs_into_the_gemm(symmetric, split_k, planner, monkeypatch):
    cfg = dataclasses.replace(POINTER, split_k=split_k)
    _, plan, p = bound_and_plan("dynamic_sym" if symmetric else "dynamic_asym", 16, cfg, monkeypatch)
    quant_names = names(quant_kernel._scaled_int8_quant_kernel)
    gemm_names = names(scaled_mm_kernel._scaled_mm_kernel)
    x = torch.randn(16, 256, dtype=torch.bfloat16)
    out = plan.run(x, 7)
    (q_run,), (g_run,) = planner["_scaled_int8_quant_kernel"].runs, planner["_scaled_mm_kernel"].runs
    assert q_run[3] == g_run[3] == 7  # both on the caller's stream
    q_args, g_args = dict(zip(quant_names, q_run[9:])), dict(zip(gemm_names, g_run[9:]))
    base = scratch.scratch(7, plan.nbytes, torch.device("cpu")).data_ptr()
    assert q_args["x_ptr"] == x.data_ptr() and q_args["q_ptr"] == g_args["a_ptr"] == base
    assert q_args["scale_ptr"] == g_args["scale_a_ptr"] == base + plan.scale_at
    if symmetric:
        assert g_args["azp_ptr"] is None and q_args["azp_ptr"] == q_args["scale_ptr"]
    else:
        assert q_args["azp_ptr"] == g_args["azp_ptr"] == base + plan.azp_at
    assert g_args["c_ptr"] == out.data_ptr() and out.shape == (16, 128) and out.dtype == torch.bfloat16
    assert g_args["b_ptr"] == p["weight"].data_ptr()  # the layer's weight, held
    if split_k > 1:
        assert g_args["workspace_ptr"] == base + plan.workspace_at and g_args["counter_ptr"] is not None
        assert plan.workspace_at >= plan.azp_at + 4 * 16  # after the rows, scales and zero points
    else:
        assert g_args["workspace_ptr"] is None
    assert plan.scale_at >= 16 * 256 and plan.scale_at % 256 == plan.azp_at % 256 == 0


@pytest.mark.parametrize("scheme, m", [("dynamic_asym", 1), ("static_sym", 1), ("static_asym", 16)])
def test_a_replay_without_per_row_operands_wires_x_or_the_rows(scheme, m, planner, monkeypatch):
    """One-launch plans (the GEMM reads x) and static two-launch plans (no per-row scale or zero
    point) pass the GEMM fewer per-call values than dynamic ones."""
    _, plan, p = bound_and_plan(scheme, m, POINTER, monkeypatch)
    x = torch.randn(m, 256, dtype=torch.bfloat16)
    out = plan.run(x, 7)
    (g_run,) = planner["_scaled_mm_kernel"].runs
    g_args = dict(zip(names(scaled_mm_kernel._scaled_mm_kernel), g_run[9:]))
    rows = x.data_ptr() if m == 1 else scratch.scratch(7, plan.nbytes, torch.device("cpu")).data_ptr()
    assert g_args["a_ptr"] == rows and g_args["c_ptr"] == out.data_ptr() and out.shape == (m, 128)
    assert g_args["b_ptr"] == p["weight"].data_ptr()


def test_a_tma_plan_encodes_its_descriptors_once_per_address(planner, monkeypatch):
    """Where the launcher is called directly (Triton 3.6), a TMA plan passes encoded descriptors:
    the rows' and the weight's made once, the output's kept per output address."""
    _, plan, p = bound_and_plan("dynamic_asym", 256, TMA, monkeypatch, tma=True)
    replay, raw = plan.gemm.replay, []
    head = "function, False, False, None, None, metadata, None, None, None"
    replay._mode = (lambda *args: raw.append(args), head, lambda d, i: ("map", d.base.data_ptr(), i),
                    replay.descriptor_slots)  # fmt: skip
    x = torch.randn(256, 256, dtype=torch.bfloat16)
    outs = [plan.run(x, 7), plan.run(x, 7)]  # both alive: two output addresses
    base = scratch.scratch(7, plan.nbytes, torch.device("cpu")).data_ptr()
    assert plan.gemm.c_args == {out.data_ptr(): ("map", out.data_ptr(), 2) for out in outs}
    for out, args in zip(outs, raw):
        assert args[13:22] == ("map", base, 0, "map", p["weight"].data_ptr(), 1, "map", out.data_ptr(), 2)
    plan.gemm.c_args.update({i: None for i in range(triton_compat.MAX_KEPT_DESCRIPTORS)})
    out = plan.run(x, 7)
    assert plan.gemm.c_args == {out.data_ptr(): ("map", out.data_ptr(), 2)}  # full: emptied, then kept
    old = scratch.scratch(7, plan.nbytes, torch.device("cpu"))  # kept alive: the next buffer lies elsewhere
    scratch.release()
    plan.run(x, 7)
    new = scratch.scratch(7, plan.nbytes, torch.device("cpu")).data_ptr()
    assert new != old.data_ptr() and raw[-1][13:16] == ("map", new, 0)  # the rows described again


def test_a_tma_plan_keeps_no_descriptor_that_holds_its_output(planner, monkeypatch):
    _, plan, _ = bound_and_plan("dynamic_asym", 256, TMA, monkeypatch, tma=True)
    x = torch.randn(256, 256, dtype=torch.bfloat16)
    out = plan.run(x, 7)
    (g_run,) = planner["_tma_scaled_mm_kernel"].runs
    c_desc = dict(zip(names(tma_mm_kernel._tma_scaled_mm_kernel), g_run[9:]))["c_desc"]
    assert c_desc.base.data_ptr() == out.data_ptr() and not plan.gemm.c_args
