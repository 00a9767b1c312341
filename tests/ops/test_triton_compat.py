"""The replay adapter on CPU with stand-ins for the Triton pieces the interpreter lacks: arguments
land by parameter name, refusals, the version check and switch, and the first-replay check."""

import functools
import logging
from types import SimpleNamespace

import pytest
import torch

from vllm_int8.ops import layer_plans, triton_compat
from vllm_int8.ops.triton_compat import Replay


class FakeCompiled:
    """Records what a replay passes to `CompiledKernel.run`."""

    function, packed_metadata = "fn", "meta"

    def __init__(self):
        self.runs = []

    def run(self, *args):
        self.runs.append(args)

    def launch_metadata(self, grid, stream, *args):
        return ("metadata", grid)


class FakeJit:
    """A JITFunction's launch surface: `fn[grid](*args, **constexprs)` and `params`."""

    def __init__(self, names, defaults=None, pre_run_hooks=()):
        self.params = [SimpleNamespace(name=n, default=(defaults or {}).get(n)) for n in names]
        self.pre_run_hooks = list(pre_run_hooks)
        self.compiled = FakeCompiled()
        self.launches = []

    def __getitem__(self, grid):
        def launch(*args, **constexprs):
            self.launches.append((grid, args, constexprs))
            return self.compiled

        return launch


@pytest.fixture(autouse=True)
def _fresh_adapter(monkeypatch):
    monkeypatch.delenv(triton_compat.FAST_LAUNCH_ENV, raising=False)
    triton_compat.enable_again()
    yield
    triton_compat.enable_again()


def no_hooks(monkeypatch):
    import triton

    runtime = SimpleNamespace(launch_enter_hook=None, launch_exit_hook=None)
    monkeypatch.setattr(triton, "knobs", SimpleNamespace(runtime=runtime), raising=False)
    return runtime


def test_replay_puts_tensors_by_parameter_name(monkeypatch):
    no_hooks(monkeypatch)
    jit = FakeJit(["x", "w", "out", "n", "BLOCK", "PDL"], defaults={"PDL": 0})
    w, x0, out0 = torch.zeros(4), torch.zeros(2), torch.zeros(2)
    replay = Replay.launch(jit, (3,), (x0, w, out0, 7), {"BLOCK": 16}, per_call=("out", "x"))
    assert len(jit.launches) == 1  # the ordinary launch happened
    x, out = torch.ones(2), torch.ones(2)
    replay(42, out=out, x=x)
    (args,) = jit.compiled.runs
    assert args[:9] == (3, 1, 1, 42, "fn", "meta", None, None, None)  # grid padded, stream, no hooks
    assert args[9:] == (x.data_ptr(), w.data_ptr(), out.data_ptr(), 7, 16, 0)  # declared order, defaults filled


def test_addresses_put_values_by_parameter_name_and_follow_held_storage():
    jit = FakeJit(["x", "w", "out", "n", "BLOCK", "PDL"], defaults={"PDL": 0})
    w, x0, out0 = torch.zeros(4), torch.zeros(2), torch.zeros(2)
    replay = Replay.launch(jit, (3, 2), (x0, w, out0, 7), {"BLOCK": 16}, per_call=("out", "x"))
    replay.addresses(5, 111, 222)  # per_call order: out, then x
    old_w = w.data_ptr()
    w.data = torch.ones(4)  # the layer's weight storage swapped: the next replay reads the new one
    replay.addresses(6, 333, 444, None, None)  # values past per_call are ignored
    first, second = jit.compiled.runs
    assert first == (3, 2, 1, 5, "fn", "meta", None, None, None, 222, old_w, 111, 7, 16, 0)
    assert second == (3, 2, 1, 6, "fn", "meta", None, None, None, 444, w.data_ptr(), 333, 7, 16, 0)
    assert w.data_ptr() != old_w


class CudaLauncher:
    """Triton 3.6's launcher surface: the C `launch` and what its Python `__call__` adds."""

    global_scratch_size = profile_scratch_size = 0
    launch_cooperative_grid, launch_pdl = False, True

    def __init__(self):
        self.calls, self.direct = [], []
        self.launch = lambda *args: self.direct.append(args)

    def __call__(self, *args):
        self.calls.append(args)


@pytest.mark.parametrize("version, scratch, direct", [("3.6.0", 0, True), ("3.9.0", 0, False), ("3.6.0", 64, False)])
def test_the_c_launcher_is_called_directly_only_where_its_wrapper_adds_nothing(version, scratch, direct,
                                                                               monkeypatch):  # fmt: skip
    monkeypatch.setattr(triton_compat, "triton_version", lambda: version)
    jit = FakeJit(["x", "n"])
    jit.compiled.run = launcher = CudaLauncher()
    launcher.global_scratch_size = scratch
    replay = Replay.launch(jit, (4,), (torch.zeros(1), 9), {}, per_call=("x",))
    replay.addresses(3, 1234)
    if direct:  # as 3.6's __call__ would: cooperative, pdl, no global or profile scratch
        assert launcher.direct == [(4, 1, 1, 3, "fn", False, True, None, None, "meta", None, None, None, 1234, 9)]
        assert not launcher.calls
    else:
        assert launcher.calls == [(4, 1, 1, 3, "fn", "meta", None, None, None, 1234, 9)] and not launcher.direct


class TensorDescriptor:
    """Named like Triton's host descriptor: a replay finds descriptor parameters by that name."""

    def __init__(self, base):
        self.base = base


def descriptor_wrapper(launcher, tensordesc_meta):
    """Triton 3.6's `wrap_handle_tensordesc` shape: a closure named `inner` over the C launcher."""

    def inner(*args):
        return launcher(*args, tensordesc_meta)

    return inner


@pytest.mark.parametrize("version", ["3.6.0", "3.9.0"])
def test_descriptors_are_encoded_once_where_the_c_launcher_is_called_directly(version, monkeypatch):
    monkeypatch.setattr(triton_compat, "triton_version", lambda: version)
    encodings = []

    def encode(descriptor, meta):
        encodings.append(descriptor.base)
        return [f"map {descriptor.base}", meta["block"]]

    monkeypatch.setattr(triton_compat, "descriptor_launcher",
                        functools.partial(triton_compat.descriptor_launcher, encode=encode))  # fmt: skip
    metas = [{"block": 64}, {"block": 128}, {"block": 32}]
    raw = []
    jit = FakeJit(["a_desc", "b_desc", "c_desc", "n"])
    jit.compiled.run = launcher = CudaLauncher()
    launcher.launch = descriptor_wrapper(lambda *args: raw.append(args), metas)
    jit.compiled.metadata = SimpleNamespace(tensordesc_meta=list(metas))
    first = [TensorDescriptor(name) for name in ("a0", "b", "c0")]
    replay = Replay.launch(jit, (4,), (*first, 9), {}, per_call=("a_desc", "c_desc"))
    a, c = replay.descriptor("a_desc", TensorDescriptor("a")), replay.descriptor("c_desc", TensorDescriptor("c"))
    replay.addresses(3, a, c)
    replay.addresses(3, a, c)
    if version == "3.6.0":  # the wrapper skipped: each descriptor encoded once, the plan's own (b) too
        assert replay.descriptors_encoded and encodings == ["a", "c", "b"]
        expected = (4, 1, 1, 3, "fn", False, True, None, None, "meta", None, None, None,
                    "map a", 64, "map b", 128, "map c", 32, 9)  # fmt: skip
        assert raw == [expected, expected] and not launcher.calls
    else:  # descriptors go to `CompiledKernel.run` as they are, and nothing is encoded here
        assert not replay.descriptors_encoded and not encodings and a.base == "a"
        assert launcher.calls[0][9:] == (a, first[1], c, 9) and not raw


def test_descriptors_are_not_encoded_where_a_descriptor_would_keep_its_tensor(monkeypatch):
    monkeypatch.setattr(triton_compat, "triton_version", lambda: "3.6.0")
    for metas in ([None, {"block": 1}], []):
        launch = descriptor_wrapper(lambda *args: None, metas)
        assert triton_compat.descriptor_launcher(launch, SimpleNamespace(tensordesc_meta=metas), encode=list) is None
    launch = descriptor_wrapper(lambda *args: None, [{"block": 1}])
    assert triton_compat.descriptor_launcher(launch, SimpleNamespace(tensordesc_meta=[{"block": 2}]), list) is None
    assert triton_compat.descriptor_launcher(lambda *args: None, None, encode=list) is None


def test_replay_with_launch_hooks_passes_tensors_and_metadata(monkeypatch):
    runtime = no_hooks(monkeypatch)
    runtime.launch_enter_hook = runtime.launch_exit_hook = print  # a profiler's hooks
    jit = FakeJit(["x", "n"])
    replay = Replay.launch(jit, (1, 2), (torch.zeros(1), 5), {}, per_call=("x",))
    x = torch.ones(1)
    replay(0, x=x)
    (args,) = jit.compiled.runs
    assert args[6] == ("metadata", (1, 2, 1)) and args[7] is print and args[9] is x


def test_the_per_call_gate_refuses_while_replays_are_off_or_hooks_are_set(monkeypatch):
    runtime = no_hooks(monkeypatch)
    monkeypatch.setattr(triton_compat, "tensor_stream", lambda x: 0)
    x = torch.zeros(1)
    assert triton_compat.replay_stream(x) == 0
    runtime.launch_enter_hook = print  # a profiler's hook
    assert triton_compat.replay_stream(x) is None
    runtime.launch_enter_hook = SimpleNamespace(calls=[])  # Triton 3.6's empty hook chain
    assert triton_compat.replay_stream(x) == 0
    runtime.launch_exit_hook = SimpleNamespace(calls=[print])
    assert triton_compat.replay_stream(x) is None
    runtime.launch_exit_hook = None
    monkeypatch.setenv(triton_compat.FAST_LAUNCH_ENV, "0")
    assert triton_compat.replay_stream(x) is None
    monkeypatch.setenv(triton_compat.FAST_LAUNCH_ENV, "1")
    assert triton_compat.replay_stream(x) == 0
    triton_compat.disable("a test")
    assert triton_compat.replay_stream(x) is None


def test_no_replay_where_a_launch_cannot_be_repeated():
    hooked = FakeJit(["x"], pre_run_hooks=[print])
    assert Replay.launch(hooked, (1,), (torch.zeros(1),), {}, ("x",)) is None
    unknown = FakeJit(["x"])
    assert Replay.launch(unknown, (1,), (torch.zeros(1),), {}, ("y",)) is None  # no such parameter
    jit = FakeJit(["x"])
    jit.compiled = object()  # not a compiled kernel
    assert Replay.launch(jit, (1,), (torch.zeros(1),), {}, ("x",)) is None
    assert len(hooked.launches) == len(unknown.launches) == len(jit.launches) == 1  # each still launched


def test_hold_refuses_a_copy():
    jit = FakeJit(["x", "w"])
    w = torch.zeros(4)
    replay = Replay.launch(jit, (1,), (torch.zeros(1), w.reshape(-1)), {}, ("x",))
    assert replay.hold("w", w)  # a view of the same storage: the layer's own tensor is held
    assert not replay.hold("w", torch.zeros(4))  # a copy would go stale


def test_version_check():
    assert triton_compat.version_tested("3.6.0") and triton_compat.version_tested("3.9.1+git123")
    assert not triton_compat.version_tested("3.7.0") and not triton_compat.version_tested("4.0.0")


def test_switch_and_disable(monkeypatch, caplog):
    assert triton_compat.replays_off() is None
    monkeypatch.setenv(triton_compat.FAST_LAUNCH_ENV, "0")
    assert triton_compat.replays_off() == "VLLM_INT8_FAST_LAUNCH=0"
    monkeypatch.delenv(triton_compat.FAST_LAUNCH_ENV)
    with caplog.at_level(logging.WARNING, logger="vllm_int8.ops.triton_compat"):
        triton_compat.disable("first")
        triton_compat.disable("second")
    assert [r.getMessage() for r in caplog.records] == [
        "vllm-int8: fast launch off, ordinary Triton launches from now on: first"
    ]
    assert triton_compat.replays_off() == "second"
    assert triton_compat.replay_unavailable(torch.zeros(1)) == "second"


def test_the_switch_is_read_per_call(monkeypatch):
    class Right(WrongPlan):
        def run(self, x, stream):
            return "replayed"

    plan = Right()
    plan.checked = True
    bound, x = bound_with_plan(monkeypatch, plan)
    monkeypatch.setattr(bound, "ordinary", lambda *a: "ordinary")
    assert bound(x, x.dtype, None) == "replayed"
    monkeypatch.setenv(triton_compat.FAST_LAUNCH_ENV, "0")
    assert bound(x, x.dtype, None) == "ordinary"
    monkeypatch.delenv(triton_compat.FAST_LAUNCH_ENV)
    assert bound(x, x.dtype, None) == "replayed"  # the plans were kept


def test_cpu_tensors_never_replay():
    assert triton_compat.replay_unavailable(torch.zeros(1)) == "cpu tensor"


class WrongPlan:
    """A plan whose replay computes something else (a launcher that took its arguments in another order)."""

    checked = False

    def run(self, x, stream):
        return torch.full((x.shape[0], 3), 7.0)


def bound_with_plan(monkeypatch, plan) -> layer_plans.BoundQuantScaledMM:
    monkeypatch.setattr(triton_compat, "replay_unavailable", lambda x: None)  # stand-in: a GPU tensor
    monkeypatch.setattr(layer_plans, "tensor_stream", lambda x: 0)
    monkeypatch.setattr(triton_compat, "tensor_stream", lambda x: 0)
    monkeypatch.setattr(triton_compat, "hooks_active", lambda: False)
    weight = torch.randint(-128, 128, (4, 3), dtype=torch.int8)
    bound = layer_plans.BoundQuantScaledMM(weight, torch.rand(3), None, None, None, True, "torch")
    x = torch.randn(2, 4)
    bound._plans[layer_plans.plan_key(x, x.dtype, None)] = plan
    return bound, x


def test_first_replay_that_differs_turns_replays_off(monkeypatch):
    bound, x = bound_with_plan(monkeypatch, WrongPlan())
    out = bound(x, x.dtype, None)
    assert torch.equal(out, bound.ordinary(x, x.dtype, None))  # the ordinary result, not the replay's
    assert triton_compat.replays_off().startswith("a replayed launch differed")
    monkeypatch.setattr(bound, "ordinary", lambda *a: "ordinary")
    assert bound(x, x.dtype, None) == "ordinary"  # and from now on ordinary launches


def test_a_replay_that_raises_turns_replays_off(monkeypatch):
    class Raising(WrongPlan):
        def run(self, x, stream):
            raise TypeError("run() takes 9 positional arguments")

    bound, x = bound_with_plan(monkeypatch, Raising())
    assert torch.equal(bound(x, x.dtype, None), bound.ordinary(x, x.dtype, None))
    assert "run() takes 9" in triton_compat.replays_off()


def test_a_checked_plan_is_replayed_without_a_second_launch(monkeypatch):
    class Right(WrongPlan):
        calls = 0

        def run(self, x, stream):
            Right.calls += 1
            return expected

    bound, x = bound_with_plan(monkeypatch, Right())
    expected = bound.ordinary(x, x.dtype, None)
    ordinary_calls = []
    real = bound.ordinary
    monkeypatch.setattr(bound, "ordinary", lambda *a: ordinary_calls.append(1) or real(*a))
    for _ in range(3):
        assert bound(x, x.dtype, None) is expected
    assert Right.calls == 3 and len(ordinary_calls) == 1  # the bit-for-bit check, on the first replay only
