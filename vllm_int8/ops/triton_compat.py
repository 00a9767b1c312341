"""The Triton internals of the fast launch path, behind one adapter: a compiled kernel replayed.

An eager launch through `kernel[grid](...)` binds and specializes every argument in Python
(~25-30 µs on the GPU machine's host, twice per int8 linear). A `Replay` launches the compiled
kernel an ordinary launch returned, again, with only named tensor arguments changed: what
`JITFunction.run` itself ends with, `CompiledKernel.run(grid, stream, function, metadata,
launch_metadata, enter_hook, exit_hook, *args)` with the arguments in the kernel's parameter
order (`JITFunction.params`). Replays run only where that is safe:

- Triton versions this was tested with are `TESTED_TRITON`; on others replays are still made,
  and every plan's first replay is checked bit for bit against an ordinary launch anyway
  (`BoundQuantScaledMM` does that check on every version), so a Triton whose `run()` changed
  its argument order cannot mis-launch silently: the first mismatch or API error turns replays
  off for the process, with one logged line (`disable`).
- Not under the interpreter, not with JIT pre-run hooks, not with `VLLM_INT8_FAST_LAUNCH=0`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import torch

from vllm_int8.platform import env_flag

logger = logging.getLogger(__name__)

TESTED_TRITON = ("3.6", "3.9")  # 3.6: natively on the H100/H200; 3.9: the CPU interpreter (no replays there)
FAST_LAUNCH_ENV = "VLLM_INT8_FAST_LAUNCH"
_disabled: str | None = None  # why replays are off in this process (None: they are not)


def triton_version() -> str:
    import triton

    return triton.__version__


def version_tested(version: str | None = None) -> bool:
    version = version or triton_version()
    return ".".join(version.split("+")[0].split(".")[:2]) in TESTED_TRITON


def describe_version() -> str:
    """ "Triton 3.6.0 (tested)" or "Triton 3.7.0 (untested; tested: 3.6, 3.9)", for log lines."""
    version = triton_version()
    if version_tested(version):
        return f"Triton {version} (tested)"
    return f"Triton {version} (untested; tested: {', '.join(TESTED_TRITON)})"


def disable(reason: str) -> None:
    """Turn replays off for this process (ordinary launches from now on), saying why once."""
    global _disabled
    if _disabled is None:
        logger.warning("vllm-int8: fast launch off, ordinary Triton launches from now on: %s", reason)
    _disabled = reason


def enable_again() -> None:
    """Undo `disable` (tests)."""
    global _disabled
    _disabled = None


def replays_off() -> str | None:
    """The per-call check (cheap): replays switched off by `disable` or by the environment."""
    if _disabled is not None:
        return _disabled
    if os.environ.get(FAST_LAUNCH_ENV) is None:  # the usual case, without parsing
        return None
    return None if env_flag(FAST_LAUNCH_ENV, True) else f"{FAST_LAUNCH_ENV}=0"


def replay_unavailable(x: torch.Tensor) -> str | None:
    """Why compiled kernels are not replayed for tensors like x (None: they are)."""
    off = replays_off()
    if off:
        return off
    if x.device.type != "cuda":
        return f"{x.device.type} tensor"
    return _process_unavailable()


@functools.cache
def _process_unavailable() -> str | None:
    """What rules replays out for the whole process (read once: the interpreter is chosen at start)."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "TRITON_INTERPRET=1"
    try:
        from triton import knobs
        from triton.runtime import driver

        knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook, driver.active.get_current_stream  # noqa: B018
    except (ImportError, AttributeError) as e:
        return f"this Triton ({triton_version()}) lacks what a replay calls: {e}"
    return None


def replay_matches(got: Sequence, expected: Sequence) -> bool:
    """Whether a plan's first replay gave an ordinary launch's outputs bit for bit (NaNs included);
    where it did not, replays go off for the process with one logged line."""
    same = all(a is None and b is None or torch.equal(a.view(torch.uint8), b.view(torch.uint8))
               for a, b in zip(got, expected))  # fmt: skip
    if not same:
        disable(f"a replayed launch differed from an ordinary one ({describe_version()})")
    return same


_triton = None  # the triton module, imported on first use (CPU-only installs may lack it)


def launch_hooks() -> tuple[object, object]:
    """Triton's (enter, exit) launch hooks, or (None, None) where none is set (Triton 3.6 keeps
    empty hook chains there: a launch passes them, and they do nothing)."""
    global _triton
    if _triton is None:
        import triton

        _triton = triton
    runtime = _triton.knobs.runtime
    enter, leave = runtime.launch_enter_hook, runtime.launch_exit_hook
    if not getattr(enter, "calls", enter is not None) and not getattr(leave, "calls", leave is not None):
        return None, None
    return enter, leave


def hooks_active() -> bool:
    """Whether a launch hook is set (a profiler): then replays pass tensors, not addresses."""
    return launch_hooks() != (None, None)


class Replay:
    """One compiled launch, replayed with new tensors in the named parameters (`per_call`).

    Tensors go to Triton's launcher as device addresses: for a tensor it calls `data_ptr()` and
    asks the driver about the pointer, ten times a GEMM launch; an int it takes as it is. Held
    tensors (the weight side) are re-read per call, so a parameter whose storage was swapped for
    one of the same layout (`.data = ...`) is followed. With launch hooks set (a profiler), they
    get the tensors themselves and launch metadata, as in an ordinary launch (`__call__`); without,
    `addresses` is the hot path: values in `per_call`'s order, already ints.
    """

    __slots__ = ("compiled", "grid", "template", "names", "slots", "order", "held", "head")

    def __init__(self, compiled, grid: tuple[int, int, int], full: list, names: list[str], per_call: Sequence[str]):
        self.compiled, self.grid, self.names = compiled, grid, names
        self.slots = {name: names.index(name) for name in per_call}
        self.order = tuple(self.slots[name] for name in per_call)
        self.held = [(i, a) for i, a in enumerate(full) if isinstance(a, torch.Tensor) and names[i] not in per_call]
        self.template = [None if isinstance(a, torch.Tensor) else a for a in full]
        self.head = None  # (launcher, grid..., function, metadata), read off the kernel on first use

    @classmethod
    def launch(cls, jit_fn, grid, args: tuple, constexprs: dict, per_call: Sequence[str]) -> Replay | None:
        """Launch once the ordinary way; the Replay of that launch, or None where none can be made
        (the launch happened either way)."""
        return cls.of_launch(jit_fn[grid](*args, **constexprs), jit_fn, grid, args, constexprs, per_call)

    @classmethod
    def of_launch(cls, compiled, jit_fn, grid, args: tuple, constexprs: dict, per_call: Sequence[str]) -> Replay | None:
        """The Replay of a launch that returned `compiled`, or None where none can be made."""
        params = getattr(jit_fn, "params", None)
        if params is None or getattr(jit_fn, "pre_run_hooks", None) or not hasattr(compiled, "run"):
            return None
        names = [p.name for p in params]
        full = list(args) + [constexprs.get(p.name, p.default) for p in params[len(args) :]]
        if len(full) != len(names) or any(name not in names for name in per_call):
            return None
        grid3 = (*grid, *(1,) * (3 - len(grid)))
        return cls(compiled, grid3, full, names, per_call)

    def hold(self, name: str, source: torch.Tensor) -> bool:
        """Hold `source` (the layer's own tensor) in parameter `name` where the launch got a view of
        the same storage; False if it got a copy (then a replay would read stale data: make no plan)."""
        name_index = self.names.index(name)
        for j, (i, tensor) in enumerate(self.held):
            if i == name_index:
                if tensor.data_ptr() != source.data_ptr():
                    return False
                self.held[j] = (i, source)
        return True

    def addresses(self, stream: int, *values: object) -> None:
        """Launch with `values` (ints, descriptors or None) in the `per_call` order; no hooks set
        (the caller checked `hooks_active`)."""
        args = self.template.copy()  # a copy per call: two threads may replay one plan at once
        for i, tensor in self.held:
            args[i] = tensor.data_ptr()
        for i, value in zip(self.order, values):
            args[i] = value
        head = self.head
        if head is None:
            compiled = self.compiled
            head = self.head = (compiled.run, *self.grid, compiled.function, compiled.packed_metadata)
        run, gx, gy, gz, function, metadata = head
        run(gx, gy, gz, stream, function, metadata, None, None, None, *args)

    def __call__(self, stream: int, **tensors: object) -> None:
        compiled = self.compiled
        enter, leave = launch_hooks()
        args = self.template.copy()
        if enter is None and leave is None:
            for i, tensor in self.held:
                args[i] = tensor.data_ptr()
            for name, value in tensors.items():  # tensors as addresses; descriptors, None as they are
                args[self.slots[name]] = value.data_ptr() if isinstance(value, torch.Tensor) else value
            metadata = None
        else:
            for i, tensor in self.held:
                args[i] = tensor
            for name, tensor in tensors.items():
                args[self.slots[name]] = tensor
            metadata = compiled.launch_metadata(self.grid, stream, *args)
        compiled.run(*self.grid, stream, compiled.function, compiled.packed_metadata, metadata, enter, leave, *args)
