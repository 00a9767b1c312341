"""The replay adapter on CPU with stand-ins for the Triton pieces the interpreter lacks: arguments
land by parameter name, refusals, the version check and switch, and the first-replay check."""

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


def test_replay_with_launch_hooks_passes_tensors_and_metadata(monkeypatch):
    runtime = no_hooks(monkeypatch)
    runtime.launch_enter_hook = runtime.launch_exit_hook = print  # a profiler's hooks
    jit = FakeJit(["x", "n"])
    replay = Replay.launch(jit, (1, 2), (torch.zeros(1), 5), {}, per_call=("x",))
    x = torch.ones(1)
    replay(0, x=x)
    (args,) = jit.compiled.runs
    assert args[6] == ("metadata", (1, 2, 1)) and args[7] is print and args[9] is x


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
        def __call__(self, x, stream, hooks):
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

    def __call__(self, x, stream, hooks):
        return torch.full((x.shape[0], 3), 7.0)


def bound_with_plan(monkeypatch, plan) -> layer_plans.BoundQuantScaledMM:
    monkeypatch.setattr(triton_compat, "replay_unavailable", lambda x: None)  # stand-in: a GPU tensor
    monkeypatch.setattr(layer_plans, "tensor_stream", lambda x: 0)
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
        def __call__(self, x, stream, hooks):
            raise TypeError("run() takes 9 positional arguments")

    bound, x = bound_with_plan(monkeypatch, Raising())
    assert torch.equal(bound(x, x.dtype, None), bound.ordinary(x, x.dtype, None))
    assert "run() takes 9" in triton_compat.replays_off()


def test_a_checked_plan_is_replayed_without_a_second_launch(monkeypatch):
    class Right(WrongPlan):
        calls = 0

        def __call__(self, x, stream, hooks):
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
