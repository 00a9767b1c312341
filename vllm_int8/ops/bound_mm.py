"""A linear layer's apply with its weight side bound once: the least host work per eager call.

An eager `Int8Linear` call on a small batch is host-bound: Triton's per-call argument binding
alone cost ~27 µs on the H100 machine's host, against ~16 µs for a whole bf16 `F.linear`. So the
layer binds its processed weight tensors here once, and for each activation shape it launches the
one-launch path (the GEMM quantizing its own rows) by replaying the compiled kernel with a cached
argument list: only the activation, the output and (split-K) the workspace change per call.

A plan is keyed on everything Triton specializes on that can change between calls (M, dtypes,
the activation's strides and 16-byte alignment, which bias), so a replay runs exactly the kernel
Triton itself would pick. Anything unusual (the interpreter, a CPU tensor, launch hooks set by a
profiler, a Triton without these internals) takes the ordinary launch path instead.
"""

from __future__ import annotations

import collections

import torch

from vllm_int8.ops.quant_mm import capturing, fused_fits, quant_scaled_mm_impl
from vllm_int8.ops.split_k_workspace import arrival_counters

MAX_PLANS = 64  # per layer: distinct (M, dtype, layout) activation shapes kept


class _Plan:
    """One compiled launch and its argument list, replayed with new activation/output tensors.

    Tensors go to Triton's launcher as device addresses: for a tensor argument it calls
    `data_ptr()` and asks the driver about the pointer (`cuPointerGetAttribute`), ten times a
    launch; an int it takes as it is. The activation was checked to be on the weight's device and
    the output and workspace are allocated there. The weight-side tensors (the layer's own, not
    views of them) stay held here and their addresses are re-read per call, so a parameter whose
    storage was swapped for one of the same layout (`.data = ...`, `Module.to`) is followed.
    Launch hooks (a profiler) get the ordinary tensor arguments; Triton 3.6's empty hook chains
    are passed as no hooks, as a launch without them.
    """

    __slots__ = ("kernel", "grid", "args", "held", "n", "out_dtype", "split_k", "workspace_elems", "tiles",
                 "stream_of")  # fmt: skip

    def __init__(self, kernel, grid, args, n, out_dtype, cfg, stream_of):
        self.kernel, self.grid, self.n, self.out_dtype = kernel, grid, n, out_dtype
        self.held = [(i, a) for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        self.args = [None if isinstance(a, torch.Tensor) else a for a in args]  # tensors: per call
        self.split_k, self.tiles = cfg.split_k, grid[0]
        self.workspace_elems = grid[0] * cfg.split_k * cfg.block_m * cfg.block_n
        self.stream_of = stream_of

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty((x.shape[0], self.n), dtype=self.out_dtype, device=x.device)
        kernel, stream, runtime = self.kernel, self.stream_of(x.device.index), _knobs.runtime
        enter, leave = runtime.launch_enter_hook, runtime.launch_exit_hook  # as JITFunction.run passes them
        if not getattr(enter, "calls", True) and not getattr(leave, "calls", True):
            enter = leave = None
        args = self.args.copy()  # a copy per call: two threads may replay one plan at once
        for i, tensor in self.held:
            args[i] = tensor if enter is not None else tensor.data_ptr()
        workspace = counters = None
        if self.split_k > 1:
            workspace = torch.empty(self.workspace_elems, dtype=torch.int32, device=x.device)
            counters = arrival_counters(x.device, self.tiles)
        if enter is None:
            args[0], args[2] = x.data_ptr(), out.data_ptr()
            if workspace is not None:
                args[8], args[9] = workspace.data_ptr(), counters.data_ptr()
            metadata = None
        else:
            args[0], args[2], args[8], args[9] = x, out, workspace, counters
            metadata = kernel.launch_metadata((*self.grid, 1), stream, *args)
        kernel.run(*self.grid, 1, stream, kernel.function, kernel.packed_metadata, metadata, enter, leave, *args)
        return out


class BoundQuantScaledMM:
    """`quant_scaled_mm(x, <bound weight side>)` for x [M, K], with cached launch plans."""

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

    def __call__(self, x: torch.Tensor, out_dtype: torch.dtype, bias: torch.Tensor | None) -> torch.Tensor:
        if self._fast is None:
            self._fast, self.slow_reason = _fast_launch_available(x)
        if self._fast and not capturing(x):  # captured calls take two launches (quant_mm says why)
            key = (x.shape[0], x.dtype, out_dtype, x.stride(0), x.stride(1), x.data_ptr() % 16, id(bias))
            plan = self._plans.get(key)
            if plan is not None:
                try:
                    return plan(x)
                except (TypeError, AttributeError) as e:  # this Triton's launcher takes other arguments
                    self._fast, self.slow_reason = False, f"replay failed: {e!r}"
                    self._plans.clear()
            made = self._make_plan(x, out_dtype, bias)
            if made is not None:
                plan, out = made
                if plan is not None:
                    self._plans[key] = plan
                    if len(self._plans) > MAX_PLANS:
                        self._plans.popitem(last=False)
                return out
        return quant_scaled_mm_impl(x, self.weight, self.scale_b, out_dtype, bias, self.azp_adj, self.input_scale,
                                    self.input_zero_point, self.symmetric, self.backend)  # fmt: skip

    def _make_plan(self, x, out_dtype, bias) -> tuple[_Plan | None, torch.Tensor] | None:
        """Launch once the ordinary way, keeping the compiled kernel: (plan, this call's output).
        None where no plan applies (two launches: the separate quant kernel path, whose host cost
        hides under its GPU time), and nothing was launched then."""
        from vllm_int8.ops import scaled_mm_kernel as mm

        m, k = x.shape
        n = self.weight.shape[1]
        cfg = mm.fit_block_k(mm.select_config(m, n, k, x.device), k)
        if m == 0 or not fused_fits(m, x.element_size(), cfg.block_n, cfg.split_k):
            return None
        mode, scale_a, azp, has_azp = mm.quant_a_operands(
            self.scale_b, self.input_scale, self.input_zero_point, self.symmetric
        )
        out = torch.empty((m, n), dtype=out_dtype, device=x.device)
        grid, args, constexprs = mm.launch_arguments(
            x, self.weight, out, scale_a, self.scale_b, bias, self.azp_adj, azp, has_azp, mode, self.symmetric, cfg
        )
        kernel = mm._scaled_mm_kernel[grid](*args, **constexprs)
        params = mm._scaled_mm_kernel.params
        names = [param.name for param in params]  # constexprs a launch leaves out take their defaults
        full = list(args) + [constexprs.get(param.name, param.default) for param in params[len(args) :]]
        if not hasattr(kernel, "run") or len(full) != len(names):  # not a CompiledKernel: launched, no plan
            self._fast, self.slow_reason = False, f"the launch returned {type(kernel).__name__}, not a compiled kernel"
            return None, out
        from triton.runtime import driver

        full[0] = full[2] = full[8] = full[9] = None  # per call: activation, output, split-K buffers
        # The launch got 1-D views of the vectors (`flat_contiguous`); the plan holds the tensors
        # they view, whose storage a `.data` swap replaces, or makes no plan where a view was a copy.
        for i, source in ((1, self.weight), (3, scale_a), (4, self.scale_b), (5, bias), (6, self.azp_adj), (7, azp)):
            if full[i] is not None:
                if source.data_ptr() != full[i].data_ptr():
                    return None, out
                full[i] = source
        plan = _Plan(kernel, (grid[0], grid[1]), full, n, out_dtype, cfg, driver.active.get_current_stream)
        return plan, out


def _fast_launch_available(x: torch.Tensor) -> tuple[bool, str]:
    """(whether compiled kernels can be replayed here, why not): a real GPU launch, not the
    interpreter, and a Triton whose runtime knobs carry the launch hooks JITFunction.run passes."""
    import os

    global _knobs
    if x.device.type != "cuda":
        return False, f"{x.device.type} tensor"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return False, "TRITON_INTERPRET=1"
    try:
        from triton import knobs

        knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook  # noqa: B018 - present in this Triton?
    except (ImportError, AttributeError) as e:
        return False, f"this Triton has no runtime launch hooks: {e}"
    _knobs = knobs
    return True, ""


_knobs = None  # triton.knobs, once a fast launch is known to be available
