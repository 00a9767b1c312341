"""Launch plans for the public ops called eagerly: `scaled_int8_quant` and `scaled_mm` replay their
compiled kernel as a layer's bound apply does (`layer_plans.py`), so a direct caller pays Triton's
launcher, not its binder and our config choice, on every call.

A plan is keyed on everything Triton specializes a launch on (shapes, strides, dtypes, which
optional tensors are given, each pointer's 16-byte alignment, the device); every tensor is a
per-call argument, so a plan holds no user tensor. Each plan's first replay is checked bit for bit
against an ordinary launch, as the layer's are. No plan (the ordinary launch) for TMA configs,
strided vectors, empty inputs, launch hooks and calls under CUDA-graph capture.
"""

from __future__ import annotations

import collections
import threading

import torch

from vllm_int8.ops import triton_compat
from vllm_int8.ops.split_k_workspace import eager_counters_address, tensor_stream
from vllm_int8.ops.triton_compat import Replay

MAX_PLANS = 256
_GEMM_ARGS = ("a_ptr", "b_ptr", "c_ptr", "scale_a_ptr", "scale_b_ptr", "bias_ptr", "azp_adj_ptr", "azp_ptr",
              "workspace_ptr", "counter_ptr")  # fmt: skip
_QUANT_ARGS = ("x_ptr", "q_ptr", "scale_ptr", "azp_ptr")
_plans: collections.OrderedDict = collections.OrderedDict()
_lock = threading.Lock()


class _Plan:
    __slots__ = ("replay", "checked", "split_k", "tiles", "workspace_elems", "device")

    def __init__(self, replay: Replay, device: torch.device, split_k: int = 1, tiles: int = 0, workspace_elems=0):
        self.replay, self.checked, self.device = replay, False, device
        self.split_k, self.tiles, self.workspace_elems = split_k, tiles, workspace_elems


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _sig(t: torch.Tensor | None) -> tuple | None:
    return None if t is None else (t.dtype, t.numel() > 1, t.data_ptr() & 15)


def _replayable(x: torch.Tensor) -> int | None:
    """The stream to replay on, or None where this call takes the ordinary launch."""
    if triton_compat.replay_unavailable(x) or triton_compat.hooks_active():  # replays_off() included
        return None
    stream = tensor_stream(x)
    if stream and torch.cuda.is_current_stream_capturing():
        return None
    return stream


def _remember(key, plan) -> None:
    with _lock:
        _plans[key] = plan
        while len(_plans) > MAX_PLANS:
            _plans.popitem(last=False)


def _checked(plan: _Plan, outs: tuple, ordinary) -> tuple | None:
    """The replay's outputs, after the plan's first replay was compared with an ordinary launch."""
    if plan.checked:
        return outs
    expected = ordinary()
    if not triton_compat.replay_matches(outs, expected):
        return expected
    plan.checked = True
    return outs


def scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp) -> torch.Tensor | None:
    """`launch_scaled_mm` through a plan; None where the caller should launch the ordinary way."""
    stream = _replayable(input)
    vectors = (scale_a, scale_b, bias, azp_adj, azp)
    if stream is None or input.shape[0] == 0 or weight.shape[1] == 0:
        return None
    if any(t is not None and t.numel() > 1 and not t.is_contiguous() for t in vectors):
        return None
    key = ("mm", input.get_device(), input.shape, input.stride(), input.data_ptr() & 15, weight.shape,
           weight.stride(), weight.data_ptr() & 15, out_dtype, *(_sig(t) for t in vectors))  # fmt: skip
    plan = _plans.get(key)
    if plan is None:
        plan, out = _make_gemm_plan(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
        if plan is not None:
            _remember(key, plan)
        return out
    m, n = input.shape[0], weight.shape[1]
    out = torch.empty((m, n), dtype=out_dtype, device=plan.device)
    workspace = counters = None
    if plan.split_k > 1:
        ws = torch.empty(plan.workspace_elems, dtype=torch.int32, device=plan.device)
        workspace, counters = ws.data_ptr(), eager_counters_address(plan.device, stream, plan.tiles)
    try:
        plan.replay.addresses(stream, input.data_ptr(), weight.data_ptr(), out.data_ptr(), *map(_ptr, vectors),
                              workspace, counters)  # fmt: skip
    except (TypeError, AttributeError, ValueError) as e:
        triton_compat.disable(f"a replay raised {e!r}")
        return None
    return _checked(plan, (out,), lambda: (_ordinary_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj,
                                                          azp),))[0]  # fmt: skip


def _ordinary_mm(*args) -> torch.Tensor:
    from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm

    return launch_scaled_mm(*args)


def _make_gemm_plan(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp):
    from vllm_int8.ops import scaled_mm_kernel as mm

    m, k = input.shape
    n = weight.shape[1]
    cfg = mm.fit_block_k(mm.select_config(m, n, k, input.device), k)
    out = torch.empty((m, n), dtype=out_dtype, device=input.device)
    if cfg.tma and mm.tma_available(input.device) and mm.tma_layout_problem(input, weight, out) is None:
        return None, _ordinary_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
    grid, args, constexprs = mm.launch_arguments(input, weight, out, scale_a, scale_b, bias, azp_adj, azp,
                                                 azp is not None, mm.A_INT8, True, cfg)  # fmt: skip
    replay = Replay.launch(mm._scaled_mm_kernel, grid, args, constexprs, _GEMM_ARGS)
    if replay is None:
        return None, out
    elems = grid[0] * cfg.split_k * cfg.block_m * cfg.block_n
    return _Plan(replay, out.device, cfg.split_k, grid[0], elems), out


def scaled_int8_quant(x, scale, azp, symmetric: bool):
    """`launch_scaled_int8_quant` through a plan; None where the caller should launch the ordinary way."""
    stream = _replayable(x)
    if stream is None or x.numel() == 0 or not x.is_contiguous():
        return None
    static = scale is not None
    key = ("quant", x.get_device(), x.shape, x.dtype, x.data_ptr() & 15, symmetric, _sig(scale), _sig(azp))
    plan = _plans.get(key)
    if plan is None:
        plan, outs = _make_quant_plan(x, scale, azp, symmetric)
        if plan is not None:
            _remember(key, plan)
        return outs
    q, scale, azp = _quant_outputs(x, scale, azp, symmetric, plan.device)
    try:
        plan.replay.addresses(stream, x.data_ptr(), q.data_ptr(), scale.data_ptr(), _ptr(scale if azp is None else azp))
    except (TypeError, AttributeError, ValueError) as e:
        triton_compat.disable(f"a replay raised {e!r}")
        return None
    outs = (q,) if static else (q, scale, azp)
    got = _checked(plan, outs, lambda: _ordinary_quant(x, scale, azp, symmetric, static))
    return (got[0], scale, azp) if static else (got[0], got[1], None if symmetric else got[2])


def _quant_outputs(x, scale, azp, symmetric: bool, device: torch.device):
    """(q, scale, azp) a quant launch writes: fresh int8 rows, and for dynamic schemes fresh
    per-row scales (and zero points when asymmetric); static ones are the caller's."""
    q = torch.empty(x.shape, dtype=torch.int8, device=device)
    if scale is None:
        m = x.numel() // x.shape[-1]
        scale = torch.empty((m, 1), dtype=torch.float32, device=device)
        azp = None if symmetric else torch.empty((m, 1), dtype=torch.int32, device=device)
    return q, scale, azp


def _ordinary_quant(x, scale, azp, symmetric, static):
    from vllm_int8.ops.quant_kernel import launch_scaled_int8_quant

    q, s, z = launch_scaled_int8_quant(x, scale if static else None, azp if static else None, symmetric)
    return (q,) if static else (q, s, z)  # z: None when symmetric, as the replay's azp


def _make_quant_plan(x, scale, azp, symmetric):
    from vllm_int8.ops import quant_kernel

    static = scale is not None
    q, scale, azp = _quant_outputs(x, scale, azp, symmetric, x.device)
    rows = x.view(-1, x.shape[-1])
    grid, args, constexprs = quant_kernel.quant_launch_arguments(rows, q, scale, azp, static, symmetric)
    replay = Replay.launch(quant_kernel._scaled_int8_quant_kernel, grid, args, constexprs, _QUANT_ARGS)
    return (None if replay is None else _Plan(replay, x.device)), (q, scale, None if symmetric else azp)


def clear() -> None:
    """Forget every plan (tests)."""
    with _lock:
        _plans.clear()
