"""PDL launches (pdl.py): when they are on, and the kernels' PDL paths equal the plain ones bit for bit.

On a Hopper GPU the PDL paths run for real (programs placed early wait in `griddepcontrol.wait`),
including chained layers under CUDA-graph replay, where a wait placed after a load would read the
previous kernel's output before it is written. The interpreter has no inline assembly, so on CPU
the same kernel code calls recording stand-ins: the waits and early triggers are counted and the
results checked; the hardware ordering is not.
"""

import dataclasses

import pytest
import torch

from tests.oracle import assert_within_rounding, scaled_mm_float64
from tests.problems import LAYER_SCHEMES as SCHEMES
from tests.problems import SMALL_TILES, layer_problem
from vllm_int8 import ops
from vllm_int8.ops import pdl, quant_kernel, scaled_mm_kernel
from vllm_int8.ops.pdl import PDL_EARLY, PDL_WAIT, gemm_pdl_options, pdl_forced, quant_pdl_options
from vllm_int8.platform import DeviceInfo

HOPPER = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 9 and not torch.version.hip


class StandIns:
    """The interpreter's grid-dependency calls, counted (plain Python: the interpreter runs a
    kernel's callees as Python)."""

    def __init__(self):
        self.waits = self.triggers = 0

    def wait(self):
        self.waits += 1

    def launch_dependents(self):
        self.triggers += 1


@pytest.fixture(params=[PDL_WAIT, PDL_EARLY], ids=["wait", "early_trigger"])
def pdl_paths(request, monkeypatch, device):
    """Force the PDL constexprs on: real PDL on a Hopper GPU (yields None; the launchers pick the
    trigger, so one parameter suffices there); on CPU the stand-ins, at each PDL level."""
    if device == "cuda":
        if not HOPPER or not pdl._device_supports(0):
            pytest.skip("PDL needs an NVIDIA GPU of compute capability >= 9.0 (and VLLM_INT8_PDL not 0)")
        if request.param == PDL_WAIT:
            monkeypatch.setattr(pdl, "GEMM_EARLY_MAX_M", 0)
            monkeypatch.setattr(pdl, "QUANT_EARLY_MAX_SM_FRACTION", 0.0)
        with pdl_forced(True):
            yield None
        return
    stand_ins = StandIns()
    monkeypatch.setattr(scaled_mm_kernel, "gemm_pdl_options", lambda device, m: {"PDL": request.param})
    monkeypatch.setattr(quant_kernel, "quant_pdl_options", lambda device, programs: {"PDL": request.param})
    monkeypatch.setattr(pdl, "gdc_wait", stand_ins.wait)
    monkeypatch.setattr(pdl, "gdc_launch_dependents", stand_ins.launch_dependents)
    stand_ins.level = request.param
    yield stand_ins


def test_off_on_cpu_and_when_forced_off(monkeypatch):
    for device in ("cpu", "meta"):  # meta: the ROCm compile gate builds launches on meta tensors
        assert quant_pdl_options(torch.device(device), 1) == {} and gemm_pdl_options(torch.device(device), 1) == {}
    monkeypatch.setattr(pdl, "_device_supports", lambda index: True)
    monkeypatch.setattr(pdl, "_sm_count", lambda index: 132)
    cuda = torch.device("cuda", 0)
    assert gemm_pdl_options(cuda, 1) == {"PDL": PDL_EARLY, "launch_pdl": True}
    with pdl_forced(False):
        assert gemm_pdl_options(cuda, 1) == {} and quant_pdl_options(cuda, 1) == {}
    assert quant_pdl_options(cuda, 1) == {"PDL": PDL_EARLY, "launch_pdl": True}


def test_early_trigger_rule(monkeypatch):
    """Quant: early while its grid covers at most half the SMs; GEMM: early for decode (M <= 64)."""
    monkeypatch.setattr(pdl, "_device_supports", lambda index: True)
    monkeypatch.setattr(pdl, "_sm_count", lambda index: 132)
    cuda = torch.device("cuda", 0)
    assert [quant_pdl_options(cuda, p)["PDL"] for p in (8, 64, 66, 67, 128)] == [PDL_EARLY] * 3 + [PDL_WAIT] * 2
    assert [gemm_pdl_options(cuda, m)["PDL"] for m in (1, 16, 64, 65, 4096)] == [PDL_EARLY] * 3 + [PDL_WAIT] * 2


@pytest.mark.parametrize(
    ("env", "hip", "capability", "expected"),
    [({}, None, (9, 0), True), ({}, None, (8, 9), False), ({}, "6.2", (9, 4), False),
     ({"VLLM_INT8_PDL": "0"}, None, (9, 0), False), ({"TRITON_INTERPRET": "1"}, None, (9, 0), False)],
)  # fmt: skip
def test_device_support(env, hip, capability, expected, monkeypatch):
    for name in ("VLLM_INT8_PDL", "TRITON_INTERPRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    info = DeviceInfo("a GPU", capability, 132, hip is not None, "gfx942" if hip else None)
    monkeypatch.setattr(pdl, "device_info", lambda index: info)
    pdl._device_supports.cache_clear()
    try:
        assert pdl._device_supports(0) is expected
    finally:
        pdl._device_supports.cache_clear()


@pytest.mark.parametrize("config", [SMALL_TILES, dataclasses.replace(SMALL_TILES, block_n=32, swap_ab=1, split_k=3)],
                         ids=["small_tiles", "swap_split_k"])  # fmt: skip
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", [(1, 300, 40), (5, 512, 33)])
def test_pdl_paths_equal_plain_launches(shape, scheme, config, pdl_paths, device):
    """Quant, GEMM (split-K: the arrival counters) and the one-launch path with PDL against the same
    launches without it."""
    from vllm_int8.ops.scaled_mm_kernel import launch_quant_scaled_mm

    m, k, n = shape
    p = layer_problem(scheme, m, k, n, torch.bfloat16, True, True, device)
    with_pdl = launch_quant_scaled_mm(**p, out_dtype=torch.float32, config=config)
    x_q, x_s, x_zp = ops.triton_scaled_int8_quant(p["x"], p["input_scale"], p["input_zero_point"], p["symmetric"])
    azp = None if p["input_scale"] is not None or p["symmetric"] else x_zp.reshape(-1)
    two = scaled_mm_kernel.launch_scaled_mm(x_q, p["weight"], x_s, p["scale_b"], torch.float32, p["bias"],
                                            p["azp_adj"], azp, config=config)  # fmt: skip
    assert torch.equal(with_pdl, two)
    assert_within_rounding(two, *scaled_mm_float64(x_q, p["weight"], x_s, p["scale_b"], p["bias"], p["azp_adj"], azp))
    with pdl_forced(False):
        plain_q, plain_s, plain_zp = ops.triton_scaled_int8_quant(
            p["x"], p["input_scale"], p["input_zero_point"], p["symmetric"]
        )
        plain = launch_quant_scaled_mm(**p, out_dtype=torch.float32, config=config)
    if pdl_paths is None:  # on the GPU: the same launches without PDL
        assert torch.equal(plain_q, x_q) and torch.equal(plain_s, x_s)
        assert torch.equal(plain, with_pdl)
    else:  # on CPU the stand-ins ignore pdl_forced: every program of every launch above waited
        assert pdl_paths.waits >= 6 and pdl_paths.triggers == (pdl_paths.waits if pdl_paths.level == PDL_EARLY else 0)


@pytest.mark.skipif(not HOPPER, reason="PDL under CUDA graphs needs a Hopper GPU")
@pytest.mark.parametrize("m", [1, 16])
def test_chained_layers_under_graph_replay_wait_for_their_inputs(m, pdl_paths):
    """layer2 quantizes layer1's output: with PDL its programs start while layer1 runs, so a load
    placed before the wait would read stale rows. Replays with fresh inputs must equal eager math."""
    from vllm_int8.ops.quant_mm import quant_scaled_mm

    d, hidden = 1024, 4096
    first = layer_problem("dynamic_asym", m, d, hidden, torch.bfloat16, True, True, "cuda")
    second = layer_problem("dynamic_sym", m, hidden, d, torch.bfloat16, False, True, "cuda")
    second.pop("x")
    x = first.pop("x")

    def step(inp):
        return quant_scaled_mm(quant_scaled_mm(inp, **first), **second)  # nothing between them

    inputs = [torch.randn_like(x) * (i + 1) for i in range(3)]
    with pdl_forced(False):
        expected = [step(inp) for inp in inputs]
    static_x = x.clone()
    step(static_x)  # compile outside capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = step(static_x)
    for inp, want in zip(inputs, expected):
        assert torch.equal(step(inp), want)  # eagerly
        static_x.copy_(inp)
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(static_out, want)
