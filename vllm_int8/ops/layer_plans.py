"""A linear layer's apply with its weight side bound once: the least host work per eager call.

An eager int8 linear is host-bound at every batch size below prefill: two Triton launches
(quant, GEMM) through `kernel[grid](...)` cost ~130 µs of host time at M=16 on the H200 machine,
against ~12 µs of GPU time and ~18 µs for a whole bf16 `F.linear`. So the layer binds its
processed weight tensors here once, and for each activation shape makes a launch plan: the
config chosen once, the compiled kernels of one ordinary launch kept, and then replayed
(`triton_compat.Replay`) with only the activation, the quantized activation and its scales, the
output, (split-K) the workspace and (TMA) the tensor descriptors changing per call. Plans cover
the one-launch decode path (the GEMM quantizing its own row) and the two-launch path (quant
kernel, then the pointer GEMM, or on Hopper the TMA GEMM).

A plan is keyed on everything Triton specializes on that can change between calls (M, dtypes,
the activation's strides and 16-byte alignment, which bias), so a replay runs exactly the kernel
Triton itself would pick; its first replay is checked bit for bit against an ordinary launch.
Anything unusual (the interpreter, a CPU tensor, launch hooks, a Triton without these internals,
`VLLM_INT8_FAST_LAUNCH=0`) takes the ordinary launch path instead.
"""

from __future__ import annotations

import collections

import torch

from vllm_int8.ops import triton_compat
from vllm_int8.ops.quant_mm import one_launch, quant_scaled_mm_impl
from vllm_int8.ops.scratch import scratch_or_new
from vllm_int8.ops.split_k_workspace import arrival_counters, eager_counters_address, tensor_stream
from vllm_int8.ops.triton_compat import Replay

MAX_PLANS = 64  # per layer: distinct (M, dtype, layout) activation shapes kept
_GEMM_PER_CALL = ("a_ptr", "c_ptr", "workspace_ptr", "counter_ptr")  # then ("scale_a_ptr", "azp_ptr")


class _Gemm:
    """The GEMM half of a plan: its replay, output and split-K workspace per call."""

    __slots__ = ("replay", "shape", "stride", "out_dtype", "split_k", "tiles", "workspace_bytes", "device")

    def __init__(self, replay: Replay, m: int, n: int, out_dtype, cfg, tiles: int, device: torch.device):
        self.replay, self.shape, self.stride, self.out_dtype, self.tiles = replay, (m, n), (n, 1), out_dtype, tiles
        self.split_k = cfg.split_k
        self.workspace_bytes = 4 * tiles * cfg.split_k * cfg.block_m * cfg.block_n if cfg.split_k > 1 else 0
        self.device = device

    def run(self, stream: int, x: torch.Tensor, a, scale_a=None, azp=None, workspace=None) -> torch.Tensor:
        """Into a fresh output on x's device (`torch.empty_strided`: 4.1-4.5 µs on the GPU machine's
        host against 5.1-5.6 for `new_empty`), launch hooks off: addresses of the int8 rows `a` (or of x for
        the one-launch plan), for dynamic schemes of the per-row scale and zero point, and
        (split-K) of the workspace in the plan's scratch."""
        out = torch.empty_strided(self.shape, self.stride, dtype=self.out_dtype, device=self.device)
        if self.split_k > 1:
            counters = eager_counters_address(self.device, stream, self.tiles)
            self.replay.addresses(stream, a, out.data_ptr(), workspace, counters, scale_a, azp)
        else:
            self.replay.addresses(stream, a, out.data_ptr(), None, None, scale_a, azp)
        return out

    def with_tensors(self, stream: int, a: torch.Tensor, scale_a=None, azp=None) -> torch.Tensor:
        """`run` with launch hooks set: they see tensors, as in an ordinary launch."""
        out = torch.empty(self.shape, dtype=self.out_dtype, device=self.device)
        ws = counters = None
        if self.split_k > 1:
            ws = torch.empty(self.workspace_bytes // 4, dtype=torch.int32, device=self.device)
            counters = arrival_counters(self.device, self.tiles)
        self.replay(stream, a_ptr=a, c_ptr=out, workspace_ptr=ws, counter_ptr=counters, **_per_row(scale_a, azp))
        return out


def _per_row(scale_a, azp) -> dict:
    return {} if scale_a is None else {"scale_a_ptr": scale_a, "azp_ptr": azp}


class _TmaGemm(_Gemm):
    """The TMA GEMM half: the weight's and the rows' descriptors made once (the rows live in the
    plan's scratch), the output's once per output address (`Replay.descriptor`: encoding is most
    of a TMA launch's host time, and the caching allocator hands out few addresses)."""

    __slots__ = ("weight", "cfg", "operands", "c_args")

    def __init__(self, replay: Replay, m: int, weight: torch.Tensor, out_dtype, cfg, device: torch.device):
        super().__init__(replay, m, weight.shape[1], out_dtype, cfg, 1, device)
        self.weight, self.cfg = weight, cfg
        self.operands = (None, None, None, None)  # rows' and weight's addresses, then their descriptors
        self.c_args: dict[int, object] = {}

    def run(self, stream: int, x: torch.Tensor, a, scale_a=None, azp=None, workspace=None) -> torch.Tensor:
        """`a`: the scratch buffer holding the int8 rows (its descriptor needs a tensor)."""
        from vllm_int8.ops.tma_mm_kernel import tma_descriptors, tma_output_descriptor

        replay = self.replay
        out = torch.empty_strided(self.shape, self.stride, dtype=self.out_dtype, device=self.device)
        operands = self.operands  # one tuple, replaced whole: threads replaying this plan see a matching set
        if operands[0] != a.data_ptr() or operands[1] != self.weight.data_ptr():
            rows = a[: self.shape[0] * self.weight.shape[0]].view(self.shape[0], -1)
            a_desc, b_desc, _ = tma_descriptors(rows, self.weight, out, self.cfg)
            operands = (a.data_ptr(), self.weight.data_ptr(), replay.descriptor("a_desc", a_desc),
                        replay.descriptor("b_desc", b_desc))  # fmt: skip
            self.operands = operands
        address = out.data_ptr()
        c_arg = self.c_args.get(address)
        if c_arg is None:
            c_arg = replay.descriptor("c_desc", tma_output_descriptor(out, self.cfg))
            triton_compat.keep_descriptor(replay, self.c_args, address, c_arg)
        replay.addresses(stream, operands[2], operands[3], c_arg, scale_a, azp)
        return out

    def with_tensors(self, stream: int, a: torch.Tensor, scale_a=None, azp=None) -> torch.Tensor:
        from vllm_int8.ops.tma_mm_kernel import tma_descriptors

        out = torch.empty(self.shape, dtype=self.out_dtype, device=self.device)
        a_desc, b_desc, c_desc = tma_descriptors(a, self.weight, out, self.cfg)
        self.replay(stream, a_desc=a_desc, b_desc=b_desc, c_desc=c_desc, **_per_row(scale_a, azp))
        return out


class _OneLaunchPlan:
    """Decode: the GEMM quantizes its own row."""

    __slots__ = ("gemm", "checked")

    def __init__(self, gemm: _Gemm):
        self.gemm, self.checked = gemm, False

    def run(self, x: torch.Tensor, stream: int) -> torch.Tensor:
        gemm = self.gemm
        workspace = None
        if gemm.workspace_bytes:
            workspace = scratch_or_new(stream, gemm.workspace_bytes, gemm.device).data_ptr()
        return gemm.run(stream, x, x.data_ptr(), workspace=workspace)

    def with_tensors(self, x: torch.Tensor, stream: int) -> torch.Tensor:
        return self.gemm.with_tensors(stream, x)


class _TwoLaunchPlan:
    """The quant kernel's replay, then the GEMM's: the int8 rows (and, for dynamic schemes,
    their scales and zero points) and the split-K workspace in the stream's scratch buffer
    (`scratch.py`), each part 256-byte aligned (as Triton's pointer specialization saw fresh
    tensors)."""

    __slots__ = ("quant", "gemm", "dynamic", "symmetric", "checked", "scale_at", "azp_at", "workspace_at",
                 "nbytes", "tma")  # fmt: skip

    def __init__(self, quant: Replay, gemm: _Gemm, dynamic: bool, symmetric: bool, m: int, k: int):
        self.quant, self.gemm, self.dynamic, self.symmetric, self.checked = quant, gemm, dynamic, symmetric, False
        self.scale_at = _aligned(m * k)
        self.azp_at = self.scale_at + _aligned(4 * m)
        self.workspace_at = self.azp_at + _aligned(4 * m)
        self.nbytes = self.workspace_at + gemm.workspace_bytes
        self.tma = isinstance(gemm, _TmaGemm)  # its descriptors need the rows as a tensor

    def run(self, x: torch.Tensor, stream: int) -> torch.Tensor:
        gemm = self.gemm
        buffer = scratch_or_new(stream, self.nbytes, gemm.device)
        base = buffer.data_ptr()
        a = buffer if self.tma else base  # the TMA GEMM describes the rows in the buffer itself
        workspace = base + self.workspace_at if gemm.workspace_bytes else None
        if not self.dynamic:
            self.quant.addresses(stream, x.data_ptr(), base)
            return gemm.run(stream, x, a, workspace=workspace)
        scale = base + self.scale_at
        azp = scale if self.symmetric else base + self.azp_at
        self.quant.addresses(stream, x.data_ptr(), base, scale, azp)
        return gemm.run(stream, x, a, scale, None if self.symmetric else azp, workspace)

    def with_tensors(self, x: torch.Tensor, stream: int) -> torch.Tensor:
        m, k = x.shape
        device = self.gemm.device
        q = torch.empty((m, k), dtype=torch.int8, device=device)
        if not self.dynamic:
            self.quant(stream, x_ptr=x, q_ptr=q)
            return self.gemm.with_tensors(stream, q)
        scale = torch.empty((m, 1), dtype=torch.float32, device=device)
        azp = None if self.symmetric else torch.empty((m, 1), dtype=torch.int32, device=device)
        self.quant(stream, x_ptr=x, q_ptr=q, scale_ptr=scale, azp_ptr=scale if azp is None else azp)
        return self.gemm.with_tensors(stream, q, scale, azp)


def _aligned(nbytes: int, alignment: int = 256) -> int:
    return -(-nbytes // alignment) * alignment


def plan_key(x: torch.Tensor, out_dtype: torch.dtype, bias: torch.Tensor | None) -> tuple:
    """What a plan is keyed on: everything Triton specializes on that can change between calls, and
    x's device. A key equal to one whose call passed the layer's checks passes them too (shape,
    dtype, device; the bias object is held by its plan, so its id is not reused)."""
    return (x.shape, x.stride(), x.dtype, out_dtype, x.data_ptr() & 15, id(bias), x.get_device())


class BoundQuantScaledMM:
    """`quant_scaled_mm(x, <bound weight side>)` for x [M, K], with cached launch plans. The weight
    is a layer's, written once at loading: its GEMMs may read it before their PDL wait (pdl.py)."""

    def __init__(self, weight, scale_b, azp_adj, input_scale, input_zero_point, symmetric: bool, backend: str):
        self.weight, self.scale_b, self.azp_adj = weight, scale_b, azp_adj
        self.input_scale, self.input_zero_point, self.symmetric, self.backend = (
            input_scale,
            input_zero_point,
            symmetric,
            backend,
        )
        self._plans: collections.OrderedDict = collections.OrderedDict()
        self._fast = None  # decided on the first call (needs a GPU tensor to know)
        self.slow_reason = ""  # why plans are not used, when they are not

    def ordinary(self, x: torch.Tensor, out_dtype: torch.dtype, bias: torch.Tensor | None) -> torch.Tensor:
        return quant_scaled_mm_impl(x, self.weight, self.scale_b, out_dtype, bias, self.azp_adj, self.input_scale,
                                    self.input_zero_point, self.symmetric, self.backend, True)  # fmt: skip

    def replay(self, x: torch.Tensor, out_dtype: torch.dtype, bias: torch.Tensor | None) -> torch.Tensor | None:
        """The eager hot path: a checked plan for x's key replayed with launch hooks off. None where
        the call needs `__call__`'s whole path (no such plan yet, replays off, hooks, capture)."""
        plan = self._plans.get(plan_key(x, out_dtype, bias))
        if plan is None or not plan.checked:
            return None
        stream = triton_compat.replay_stream(x)
        if stream is None:
            return None
        try:
            return plan.run(x, stream)
        except (TypeError, AttributeError, ValueError) as e:  # this Triton's launcher takes other arguments
            triton_compat.disable(f"a replay raised {e!r}")
            return None

    def __call__(self, x: torch.Tensor, out_dtype: torch.dtype, bias: torch.Tensor | None) -> torch.Tensor:
        out = self.replay(x, out_dtype, bias)
        return out if out is not None else self._planned_call(x, out_dtype, bias)

    def _planned_call(self, x: torch.Tensor, out_dtype: torch.dtype, bias: torch.Tensor | None) -> torch.Tensor:
        """Every call `replay` does not take: the first of a shape makes its plan, the second checks
        its replay against an ordinary launch; launch hooks get tensors; the rest launch ordinarily."""
        fast = self._fast
        if fast is None:
            self.slow_reason = triton_compat.replay_unavailable(x) or ""
            fast = self._fast = not self.slow_reason
        if not fast or triton_compat.replays_off():
            return self.ordinary(x, out_dtype, bias)
        stream = tensor_stream(x)
        if stream and torch.cuda.is_current_stream_capturing():  # two launches there (quant_mm says why)
            return self.ordinary(x, out_dtype, bias)
        key = plan_key(x, out_dtype, bias)
        plan = self._plans.get(key)
        if plan is None:
            plan, out = self._make_plan(x, out_dtype, bias)
            if plan is not None:
                self._plans[key] = plan
                if len(self._plans) > MAX_PLANS:
                    self._plans.popitem(last=False)
            return out
        try:
            out = plan.with_tensors(x, stream) if triton_compat.hooks_active() else plan.run(x, stream)
        except (TypeError, AttributeError, ValueError) as e:  # this Triton's launcher takes other arguments
            triton_compat.disable(f"a replay raised {e!r}")
            return self.ordinary(x, out_dtype, bias)
        if not plan.checked:  # once per plan: the replay must equal an ordinary launch, bit for bit
            expected = self.ordinary(x, out_dtype, bias)
            if not triton_compat.replay_matches((out,), (expected,)):
                return expected
            plan.checked = True
        return out

    def _make_plan(self, x, out_dtype, bias):
        """(plan or None, this call's output): the first call of a shape launches the ordinary
        way, keeping the compiled kernels."""
        from vllm_int8.ops import scaled_mm_kernel as mm

        m, k = x.shape
        n = self.weight.shape[1]
        cfg = mm.gemm_config(m, n, k, x.device)
        if m == 0:
            return None, self.ordinary(x, out_dtype, bias)
        if one_launch(x, cfg):
            mode, scale_a, azp, has_azp = mm.quant_a_operands(
                self.scale_b, self.input_scale, self.input_zero_point, self.symmetric
            )
            out = torch.empty((m, n), dtype=out_dtype, device=x.device)
            gemm = self._gemm_replay(mm, x, out, scale_a, bias, azp, has_azp, mode, cfg, ())
            return (None if gemm is None else _OneLaunchPlan(gemm)), out
        if x.stride(1) != 1:  # the quant launcher copies such rows first: ordinary launches
            return None, self.ordinary(x, out_dtype, bias)
        from vllm_int8.ops import quant_kernel

        dynamic = self.input_scale is None
        q = torch.empty((m, k), dtype=torch.int8, device=x.device)
        scale = self.input_scale if not dynamic else torch.empty((m, 1), dtype=torch.float32, device=x.device)
        azp = self.input_zero_point if not dynamic else (
            None if self.symmetric else torch.empty((m, 1), dtype=torch.int32, device=x.device))  # fmt: skip
        grid, args, constexprs = quant_kernel.quant_launch_arguments(x, q, scale, azp, not dynamic, self.symmetric)
        per_call = ("x_ptr", "q_ptr") + (("scale_ptr", "azp_ptr") if dynamic else ())
        quant = Replay.launch(quant_kernel._scaled_int8_quant_kernel, grid, args, constexprs, per_call)
        if not dynamic and quant is not None:  # static: the layer's own scale and zero point, held
            ok = quant.hold("scale_ptr", self.input_scale)
            ok = ok and (azp is None or quant.hold("azp_ptr", self.input_zero_point))
            quant = quant if ok else None
        out = torch.empty((m, n), dtype=out_dtype, device=x.device)
        per_token_azp = azp if dynamic and not self.symmetric else None
        per_call = ("scale_a_ptr", "azp_ptr") if dynamic else ()
        if mm.runs_tma(cfg, q, self.weight, out):
            gemm = self._tma_replay(q, out, scale, bias, per_token_azp, cfg, per_call)
        else:
            gemm = self._gemm_replay(mm, q, out, scale, bias, per_token_azp, per_token_azp is not None, mm.A_INT8,
                                     cfg, per_call)  # fmt: skip
        if quant is None or gemm is None:
            return None, out
        return _TwoLaunchPlan(quant, gemm, dynamic, self.symmetric, m, k), out

    def _tma_replay(self, q, out, scale_a, bias, azp, cfg, extra_per_call) -> _Gemm | None:
        """Launch the TMA GEMM once into `out` (as `scaled_mm_kernel._launch` would); its replay."""
        from vllm_int8.ops import tma_mm_kernel as tma
        from vllm_int8.ops.scaled_mm_kernel import flat_contiguous

        vectors = [flat_contiguous(t) for t in (scale_a, self.scale_b, bias, self.azp_adj, azp)]
        grid, args, constexprs = tma.tma_launch_arguments(q, self.weight, out, *vectors, cfg)
        per_call = ("a_desc", "b_desc", "c_desc") + extra_per_call
        replay = Replay.launch(tma._tma_scaled_mm_kernel, grid, args, constexprs, per_call)
        if replay is None or not self._hold_weight_side(replay, scale_a, bias, azp, extra_per_call):
            return None
        return _TmaGemm(replay, q.shape[0], self.weight, out.dtype, cfg, out.device)

    def _hold_weight_side(self, replay: Replay, scale_a, bias, azp, extra_per_call) -> bool:
        """Hold the layer's own vectors where the launch got views of them (False: it got copies)."""
        sources = {"scale_b_ptr": self.scale_b, "bias_ptr": bias, "azp_adj_ptr": self.azp_adj}
        if "scale_a_ptr" not in extra_per_call:
            sources["scale_a_ptr"] = scale_a
            sources["azp_ptr"] = azp
        return all(source is None or replay.hold(name, source) for name, source in sources.items())

    def _gemm_replay(self, mm, a, out, scale_a, bias, azp, has_azp, mode, cfg, extra_per_call) -> _Gemm | None:
        """Launch the pointer GEMM once into `out`; its replay, or None where none can be made."""
        cfg = mm.pointer_config(cfg)
        grid, args, constexprs = mm.launch_arguments(
            a, self.weight, out, scale_a, self.scale_b, bias, self.azp_adj, azp, has_azp, mode, self.symmetric, cfg,
            static_weight=True,
        )  # fmt: skip
        replay = Replay.launch(mm._scaled_mm_kernel, grid, args, constexprs, _GEMM_PER_CALL + extra_per_call)
        if replay is None:
            return None
        # The launch got 1-D views of the vectors (`flat_contiguous`); the plan holds the tensors
        # they view, whose storage a `.data` swap replaces, or makes no plan where a view was a copy.
        if not replay.hold("b_ptr", self.weight):
            return None
        if not self._hold_weight_side(replay, scale_a, bias, azp, extra_per_call):
            return None
        return _Gemm(replay, a.shape[0], self.weight.shape[1], out.dtype, cfg, grid[0], out.device)
