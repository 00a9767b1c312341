"""Launch plans for the public ops called eagerly: `scaled_int8_quant` and `scaled_mm` replay their
compiled kernel as a layer's bound apply does (`layer_plans.py`), so a direct caller pays Triton's
launcher, not its binder and our config choice, on every call.

A plan is keyed on everything Triton specializes a launch on and the argument checks read (each
tensor's shape, strides, dtype, device and 16-byte alignment; which optional tensors are given);
every tensor is a per-call argument, so a plan holds no user tensor. A call whose key has a
checked plan replays before any argument check (`replay_mm`, `replay_quant`): an equal key passed
them. Each plan's first replay is checked bit for bit against an ordinary launch, as the layer's
are. The GEMM plans cover the pointer kernel (split-K included) and, on Hopper, the TMA kernel.
No plan (the ordinary launch) for strided vectors, empty inputs, launch hooks and calls under
CUDA-graph capture.
"""

from __future__ import annotations

import collections
import threading

import torch

from vllm_int8.ops import triton_compat
from vllm_int8.ops.scratch import scratch_or_new
from vllm_int8.ops.split_k_workspace import eager_counters_address
from vllm_int8.ops.triton_compat import Replay

MAX_PLANS = 256
_GEMM_ARGS = ("a_ptr", "b_ptr", "c_ptr", "scale_a_ptr", "scale_b_ptr", "bias_ptr", "azp_adj_ptr", "azp_ptr",
              "workspace_ptr", "counter_ptr")  # fmt: skip
_TMA_ARGS = ("a_desc", "b_desc", "c_desc", "scale_a_ptr", "scale_b_ptr", "bias_ptr", "azp_adj_ptr", "azp_ptr")
_QUANT_ARGS = ("x_ptr", "q_ptr", "scale_ptr", "azp_ptr")
_plans: collections.OrderedDict = collections.OrderedDict()
_lock = threading.Lock()


class _Plan:
    """A quant plan, or a pointer-GEMM plan (`mm`). Outputs come from `torch.empty_strided` with
    the plan's shape and strides: on the GPU machine's host that allocation took 4.1-4.5 µs against
    5.1-5.6 for `new_empty` (`results/NVIDIA_H200/host_parts.log`)."""

    __slots__ = ("replay", "checked", "split_k", "tiles", "workspace_bytes", "device", "out_shape", "out_stride")

    def __init__(self, replay: Replay, out: torch.Tensor, split_k: int = 1, tiles: int = 0, workspace_bytes: int = 0):
        """`out`: the output (the int8 rows, for a quant plan) of the plan's first, ordinary launch."""
        self.replay, self.checked, self.device = replay, False, out.device
        self.out_shape, self.out_stride = out.shape, out.stride()
        self.split_k, self.tiles, self.workspace_bytes = split_k, tiles, workspace_bytes

    def mm(self, stream: int, input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp) -> torch.Tensor:
        out = torch.empty_strided(self.out_shape, self.out_stride, dtype=out_dtype, device=self.device)
        workspace = counters = None
        if self.split_k > 1:  # the K-slices' partial tiles live only inside the launch: stream scratch
            workspace = scratch_or_new(stream, self.workspace_bytes, self.device).data_ptr()
            counters = eager_counters_address(self.device, stream, self.tiles)
        self.replay.addresses(stream, input.data_ptr(), weight.data_ptr(), out.data_ptr(), scale_a.data_ptr(),
                              scale_b.data_ptr(), _ptr(bias), _ptr(azp_adj), _ptr(azp), workspace,
                              counters)  # fmt: skip
        return out


class _TmaPlan(_Plan):
    """A TMA-GEMM plan: each operand's descriptor made once per address where the replay encodes
    them (`Replay.descriptor`: encoding is most of a TMA launch's host time), else per call."""

    __slots__ = ("cfg", "encoded")

    def __init__(self, replay: Replay, out: torch.Tensor, cfg):
        super().__init__(replay, out)
        self.cfg, self.encoded = cfg, ({}, {}, {})  # a, b, c: address -> encoded descriptor

    def mm(self, stream: int, input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp) -> torch.Tensor:
        from vllm_int8.ops.tma_mm_kernel import tma_descriptors

        out = torch.empty_strided(self.out_shape, self.out_stride, dtype=out_dtype, device=self.device)
        replay, operands = self.replay, (input, weight, out)
        addresses = tuple(t.data_ptr() for t in operands)
        values = [kept.get(address) for kept, address in zip(self.encoded, addresses)]
        if None in values:
            descriptors = tma_descriptors(*operands, self.cfg)
            for i, name in enumerate(("a_desc", "b_desc", "c_desc")):
                if values[i] is None:
                    values[i] = replay.descriptor(name, descriptors[i])
                    triton_compat.keep_descriptor(replay, self.encoded[i], addresses[i], values[i])
        replay.addresses(stream, *values, scale_a.data_ptr(), scale_b.data_ptr(), _ptr(bias), _ptr(azp_adj), _ptr(azp))
        return out


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _sig(t: torch.Tensor | None) -> tuple | None:
    """What the argument checks and Triton's specialization read of one tensor argument."""
    return None if t is None else (t.shape, t.stride(), t.dtype, t.get_device(), t.data_ptr() & 15)


def mm_key(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp) -> tuple:
    """A GEMM plan's key: every tensor's shape, strides, dtype, device and 16-byte alignment, so a
    call whose key equals that of a call that passed `check_scaled_mm_args` passes it too."""
    return (_sig(input), _sig(weight), _sig(scale_a), _sig(scale_b), out_dtype, _sig(bias), _sig(azp_adj), _sig(azp))


def quant_key(x, scale, azp, symmetric: bool) -> tuple:
    """A quant plan's key, as `mm_key` (what `check_quant_args` reads included)."""
    return (_sig(x), _sig(scale), _sig(azp), symmetric)


def _replayable(x: torch.Tensor) -> int | None:
    """The stream to replay on, or None where this call takes the ordinary launch."""
    if triton_compat.replay_unavailable(x):
        return None
    return triton_compat.replay_stream(x)


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


def replay_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp) -> torch.Tensor | None:
    """The hot path of an eager `ops.scaled_mm` on the Triton backend, before any argument check:
    a checked plan for this exact key (so the checks would pass) replayed; None otherwise."""
    plan = _plans.get(mm_key(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp))
    if plan is None or not plan.checked:
        return None
    stream = triton_compat.replay_stream(input)
    if stream is None:
        return None
    return _replay_mm(plan, stream, input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)


def _replay_mm(plan: _Plan, stream: int, *args) -> torch.Tensor | None:
    try:
        return plan.mm(stream, *args)
    except (TypeError, AttributeError, ValueError) as e:
        triton_compat.disable(f"a replay raised {e!r}")
        return None


def scaled_mm(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp) -> torch.Tensor | None:
    """`launch_scaled_mm` through a plan (made here on a key's first call, checked on its second);
    None where the caller should launch the ordinary way."""
    stream = _replayable(input)
    vectors = (scale_a, scale_b, bias, azp_adj, azp)
    if stream is None or input.shape[0] == 0 or weight.shape[1] == 0:
        return None
    if any(t is not None and t.numel() > 1 and not t.is_contiguous() for t in vectors):
        return None
    key = mm_key(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
    plan = _plans.get(key)
    if plan is None:
        plan, out = _make_gemm_plan(input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
        if plan is not None:
            _remember(key, plan)
        return out
    out = _replay_mm(plan, stream, input, weight, scale_a, scale_b, out_dtype, bias, azp_adj, azp)
    if out is None:
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
    cfg = mm.gemm_config(m, n, k, input.device)
    out = torch.empty((m, n), dtype=out_dtype, device=input.device)
    if mm.runs_tma(cfg, input, weight, out):
        from vllm_int8.ops import tma_mm_kernel as tma

        vectors = [mm.flat_contiguous(t) for t in (scale_a, scale_b, bias, azp_adj, azp)]
        grid, args, constexprs = tma.tma_launch_arguments(input, weight, out, *vectors, cfg)
        replay = Replay.launch(tma._tma_scaled_mm_kernel, grid, args, constexprs, _TMA_ARGS)
        return (None if replay is None else _TmaPlan(replay, out, cfg)), out
    cfg = mm.pointer_config(cfg)
    grid, args, constexprs = mm.launch_arguments(input, weight, out, scale_a, scale_b, bias, azp_adj, azp,
                                                 azp is not None, mm.A_INT8, True, cfg)  # fmt: skip
    replay = Replay.launch(mm._scaled_mm_kernel, grid, args, constexprs, _GEMM_ARGS)
    if replay is None:
        return None, out
    workspace_bytes = 4 * grid[0] * cfg.split_k * cfg.block_m * cfg.block_n
    return _Plan(replay, out, cfg.split_k, grid[0], workspace_bytes), out


def replay_quant(x, scale, azp, symmetric: bool) -> tuple | None:
    """The hot path of an eager `ops.scaled_int8_quant` on the Triton backend, as `replay_mm`."""
    plan = _plans.get(quant_key(x, scale, azp, symmetric))
    if plan is None or not plan.checked:
        return None
    stream = triton_compat.replay_stream(x)
    if stream is None:
        return None
    return _replay_quant(plan, stream, x, scale, azp, symmetric)


def _replay_quant(plan: _Plan, stream: int, x, scale, azp, symmetric: bool) -> tuple | None:
    """(q, scale, azp) of one replay: the caller's scale and zero point when static."""
    q, scale, azp = _quant_outputs(x, scale, azp, symmetric, plan)
    try:
        plan.replay.addresses(stream, x.data_ptr(), q.data_ptr(), scale.data_ptr(), _ptr(scale if azp is None else azp))
    except (TypeError, AttributeError, ValueError) as e:
        triton_compat.disable(f"a replay raised {e!r}")
        return None
    return q, scale, azp


def scaled_int8_quant(x, scale, azp, symmetric: bool):
    """`launch_scaled_int8_quant` through a plan; None where the caller should launch the ordinary way."""
    stream = _replayable(x)
    if stream is None or x.numel() == 0 or not x.is_contiguous():
        return None
    static = scale is not None
    key = quant_key(x, scale, azp, symmetric)
    plan = _plans.get(key)
    if plan is None:
        plan, outs = _make_quant_plan(x, scale, azp, symmetric)
        if plan is not None:
            _remember(key, plan)
        return outs
    outs = _replay_quant(plan, stream, x, scale, azp, symmetric)
    if outs is None:
        return None
    q, scale, azp = outs
    got = _checked(plan, (q,) if static else outs, lambda: _ordinary_quant(x, scale, azp, symmetric, static))
    return (got[0], scale, azp) if static else (got[0], got[1], None if symmetric else got[2])


def _quant_outputs(x, scale, azp, symmetric: bool, plan: _Plan | None = None):
    """(q, scale, azp) a quant launch writes, on x's device: fresh int8 rows, and for dynamic
    schemes fresh per-row scales (and zero points when asymmetric); static ones are the caller's.
    `plan`: x's quant plan, which knows x's (contiguous) shape, strides and device."""
    if plan is None:  # making the plan
        device = x.device
        q = torch.empty(x.shape, dtype=torch.int8, device=device)
    else:
        device = plan.device
        q = torch.empty_strided(plan.out_shape, plan.out_stride, dtype=torch.int8, device=device)
    if scale is None:
        m = q.numel() // q.shape[-1]
        scale = torch.empty_strided((m, 1), (1, 1), dtype=torch.float32, device=device)
        azp = None if symmetric else torch.empty_strided((m, 1), (1, 1), dtype=torch.int32, device=device)
    return q, scale, azp


def _ordinary_quant(x, scale, azp, symmetric, static):
    from vllm_int8.ops.quant_kernel import launch_scaled_int8_quant

    q, s, z = launch_scaled_int8_quant(x, scale if static else None, azp if static else None, symmetric)
    return (q,) if static else (q, s, z)  # z: None when symmetric, as the replay's azp


def _make_quant_plan(x, scale, azp, symmetric):
    from vllm_int8.ops import quant_kernel

    static = scale is not None
    q, scale, azp = _quant_outputs(x, scale, azp, symmetric)
    rows = x.view(-1, x.shape[-1])
    grid, args, constexprs = quant_kernel.quant_launch_arguments(rows, q, scale, azp, static, symmetric)
    replay = Replay.launch(quant_kernel._scaled_int8_quant_kernel, grid, args, constexprs, _QUANT_ARGS)
    return (None if replay is None else _Plan(replay, q)), (q, scale, None if symmetric else azp)


def clear() -> None:
    """Forget every plan (tests)."""
    with _lock:
        _plans.clear()
