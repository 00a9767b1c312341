"""The Triton internals of the fast launch path, behind one adapter: a compiled kernel replayed.

An eager launch through `kernel[grid](...)` binds and specializes every argument in Python
(~25-30 µs on the GPU machine's host, twice per int8 linear). A `Replay` launches the compiled
kernel an ordinary launch returned, again, with only named tensor arguments changed: what
`JITFunction.run` itself ends with, `CompiledKernel.run(grid, stream, function, metadata,
launch_metadata, enter_hook, exit_hook, *args)` with the arguments in the kernel's parameter
order (`JITFunction.params`); on Triton 3.6 (`DIRECT_LAUNCH_TRITON`) the C launcher under it,
with TMA descriptors encoded once (`direct_launch`, `descriptor_launcher`). Replays run only
where that is safe:

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

from vllm_int8.ops.split_k_workspace import tensor_stream
from vllm_int8.platform import env_flag, env_reader

logger = logging.getLogger(__name__)

TESTED_TRITON = ("3.6", "3.9")  # 3.6: natively on the H100/H200; 3.9: the CPU interpreter (no replays there)
FAST_LAUNCH_ENV = "VLLM_INT8_FAST_LAUNCH"
_disabled: str | None = None  # why replays are off in this process (None: they are not)
_fast_launch_env = env_reader(FAST_LAUNCH_ENV)


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
    if _fast_launch_env() is None:  # the usual case, without parsing
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
    if not hooks_active():
        return None, None
    runtime = _triton.knobs.runtime
    return runtime.launch_enter_hook, runtime.launch_exit_hook


def hooks_active() -> bool:
    """Whether a launch hook is set (a profiler): then replays pass tensors, not addresses. Kept
    to a few attribute reads: every replay's gate asks it."""
    global _triton
    if _triton is None:
        import triton

        _triton = triton
    runtime = _triton.knobs.runtime
    enter, leave = runtime.launch_enter_hook, runtime.launch_exit_hook
    return bool(getattr(enter, "calls", enter is not None) or getattr(leave, "calls", leave is not None))


def replay_stream(x: torch.Tensor) -> int | None:
    """The stream a planned eager call on CUDA tensor x replays on, or None where it must not
    replay now: replays switched off, launch hooks set (they want tensors), or x's stream
    recording a CUDA graph. The per-call gate of every plan, kept to a few attribute reads."""
    if _disabled is not None or (_fast_launch_env() is not None and replays_off()):
        return None
    if hooks_active():
        return None
    stream = tensor_stream(x)
    if stream and torch.cuda.is_current_stream_capturing():
        return None
    return stream


DIRECT_LAUNCH_TRITON = ("3.6",)  # whose CudaLauncher.__call__ only adds the two scratch buffers


def direct_launch(run) -> tuple[object, bool, bool] | None:
    """(the C launcher, cooperative, pdl) under `CompiledKernel.run`, where its Python wrapper
    would only pass them and two absent scratch buffers (Triton 3.6's `CudaLauncher.__call__`);
    None elsewhere (then replays call `run` itself)."""
    version = ".".join(triton_version().split("+")[0].split(".")[:2])
    if type(run).__name__ != "CudaLauncher" or version not in DIRECT_LAUNCH_TRITON:
        return None
    try:
        if run.global_scratch_size or run.profile_scratch_size:  # it allocates them per launch
            return None
        return run.launch, bool(run.launch_cooperative_grid), bool(run.launch_pdl)
    except AttributeError:
        return None


def descriptor_launcher(launch, metadata, encode=None) -> tuple[object, object, int] | None:
    """(the C launcher, expand, descriptor count) under Triton 3.6's wrapper of a TMA kernel's
    launcher, which encodes every host descriptor into its map, shape and strides on every launch
    (`make_tensordesc_arg`, or `encode`); `expand(descriptor, i)` does that once for the i-th
    descriptor parameter, so a replay passes the result again. None where `launch` is no such
    wrapper or a descriptor would not be encoded (then it would hold its tensor)."""
    cells = getattr(launch, "__closure__", None) or ()
    names = getattr(getattr(launch, "__code__", None), "co_freevars", ())
    closure = dict(zip(names, (c.cell_contents for c in cells)))
    metas = closure.get("tensordesc_meta")
    if getattr(launch, "__name__", "") != "inner" or "launcher" not in closure or not metas or None in metas:
        return None
    if list(metas) != list(getattr(metadata, "tensordesc_meta", None) or []):
        return None
    if encode is None:
        try:
            from triton.backends.nvidia.driver import make_tensordesc_arg as encode
        except ImportError:
            return None
    return closure["launcher"], lambda descriptor, i: tuple(encode(descriptor, metas[i])), len(metas)


MAX_KEPT_DESCRIPTORS = 16  # per operand of a plan: the caching allocator hands out few addresses


def keep_descriptor(replay: Replay, kept: dict, address: int, value: object) -> None:
    """Keep `value` (what `replay.descriptor` made for a tensor at `address`) in `kept`, at most
    `MAX_KEPT_DESCRIPTORS`, where it is encoded; an unencoded descriptor holds its tensor, which a
    plan must not keep alive."""
    if replay.descriptors_encoded:
        if len(kept) >= MAX_KEPT_DESCRIPTORS:
            kept.clear()
        kept[address] = value


class Replay:
    """One compiled launch, replayed with new tensors in the named parameters (`per_call`).

    Tensors go to Triton's launcher as device addresses: for a tensor it calls `data_ptr()` and
    asks the driver about the pointer, ten times a GEMM launch; an int it takes as it is. Held
    tensors (the weight side) are re-read per call, so a parameter whose storage was swapped for
    one of the same layout (`.data = ...`) is followed. With launch hooks set (a profiler), they
    get the tensors themselves and launch metadata, as in an ordinary launch (`__call__`); without,
    `addresses` is the hot path: values in `per_call`'s order, already ints, into one generated
    call of the launcher with every other argument in place (no per-call list or loop).
    """

    __slots__ = ("compiled", "grid", "template", "names", "slots", "order", "held", "descriptor_slots", "addresses",
                 "_mode")  # fmt: skip

    def __init__(self, compiled, grid: tuple[int, int, int], full: list, names: list[str], per_call: Sequence[str]):
        self.compiled, self.grid, self.names = compiled, grid, names
        self.slots = {name: names.index(name) for name in per_call}
        self.order = tuple(self.slots[name] for name in per_call)
        self.held = [(i, a) for i, a in enumerate(full) if isinstance(a, torch.Tensor) and names[i] not in per_call]
        # Per-call values are not kept (a descriptor holds its tensor, the first call's output).
        self.template = [None if isinstance(a, torch.Tensor) or i in self.order else a for i, a in enumerate(full)]
        self.descriptor_slots = tuple(i for i, a in enumerate(full) if type(a).__name__ == "TensorDescriptor")
        self.addresses = self._first_addresses
        self._mode = None  # (launcher, head arguments, expand, descriptor slots), read on first use

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
        self.addresses = self._first_addresses  # generated again with the held tensor
        return True

    def _first_addresses(self, stream: int, *values: object) -> None:
        """`addresses` before its first call: generate it, then launch."""
        self.addresses = self._generated()
        self.addresses(stream, *values)

    def _launch_mode(self) -> tuple:
        """(launcher, the arguments it takes after the stream, expand, descriptor slots): Triton
        3.6's C launcher called directly where its Python wrappers would add nothing but the
        scratch buffers and the descriptors' encoding (`direct_launch`, `descriptor_launcher`;
        then `expand` is set and `addresses` takes descriptors as `descriptor` made them), else
        `CompiledKernel.run`."""
        if self._mode is None:
            compiled = self.compiled
            direct = direct_launch(compiled.run)
            if direct is None:
                self._mode = (compiled.run, "function, metadata, None, None, None", None, ())
            else:
                launcher, expand = direct[0], None
                unwrapped = descriptor_launcher(launcher, getattr(compiled, "metadata", None))
                if unwrapped is not None and unwrapped[2] == len(self.descriptor_slots):
                    launcher, expand = unwrapped[:2]
                head = f"function, {direct[1]}, {direct[2]}, None, None, metadata, None, None, None"
                self._mode = (launcher, head, expand, self.descriptor_slots if expand else ())
        return self._mode

    def descriptor(self, name: str, value: object) -> object:
        """What `addresses` takes for the tensor-descriptor parameter `name`: `value`, or where the
        launcher is called directly its encoded arguments, which hold no tensor (so a caller may
        keep them per address; encoding is the costly part of a TMA launch)."""
        _, _, expand, slots = self._launch_mode()
        if expand is None:
            return value
        return expand(value, slots.index(self.slots[name]))

    @property
    def descriptors_encoded(self) -> bool:
        """Whether `descriptor` encodes (then its results may be kept per address)."""
        return self._launch_mode()[2] is not None

    def _generated(self):
        """`addresses(stream, *per_call values)`: one call of the launcher, every constant and held
        tensor's `data_ptr()` written into it (descriptors splatted where they come encoded)."""
        compiled = self.compiled
        launcher, head, expand, slots = self._launch_mode()
        scope = {"run": launcher, "function": compiled.function, "metadata": compiled.packed_metadata}
        held = dict(self.held)
        per_call = {slot: j for j, slot in enumerate(self.order)}
        args = []
        for i, value in enumerate(self.template):
            if i in per_call:
                args.append(f"*v{per_call[i]}" if i in slots else f"v{per_call[i]}")
            elif i in held:
                scope[f"h{i}"] = held[i]
                args.append(f"h{i}.data_ptr()")
            elif i in slots:  # a descriptor fixed in the plan: encoded once here
                scope[f"c{i}"] = expand(value, slots.index(i))
                args.append(f"*c{i}")
            else:
                scope[f"c{i}"] = value
                args.append(f"c{i}")
        values = "".join(f", v{j}" for j in range(len(self.order)))
        call = "run({}, {}, {}, stream, ".format(*self.grid) + head
        # Values past `per_call` are ignored: a GEMM half without per-row operands is passed them as None.
        exec(f"def addresses(stream{values}, *_):\n    {call}, {', '.join(args)})\n", scope)  # noqa: S102
        return scope["addresses"]

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
