"""Split-K under CUDA graphs and streams: used in the first capture, never sharing live counters."""

import dataclasses

import pytest
import torch

from tests.oracle import scaled_mm_float64
from tests.problems import SMALL_TILES, make_problem
from vllm_int8.ops import split_k_workspace
from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm, record_launches

SPLIT = dataclasses.replace(SMALL_TILES, split_k=4)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs and streams need a GPU")


def exact_problem(m, k, n, device):
    a, b, _, _, _, azp_adj, azp = make_problem("asym_token", m, k, n, "nk", False, False, torch.float32, device)
    ones = torch.ones(1, device=device)
    exact, _ = scaled_mm_float64(a, b, ones, ones, None, azp_adj, azp)
    return (a, b, ones, ones, torch.float32, None, azp_adj, azp), exact.cpu()


def assert_counters_clean():
    assert not any(c.any() for c in split_k_workspace.all_counters())


def test_eager_counters_are_zero_per_stream_and_grow(device):
    first = split_k_workspace.arrival_counters(torch.device(device), 10)
    assert first.numel() == 10 and not first.any()
    bigger = split_k_workspace.arrival_counters(torch.device(device), 5000)
    assert bigger.numel() == 5000 and not bigger.any()


def test_launch_log_records_the_config(device):
    args, exact = exact_problem(3, 130, 40, device)
    with record_launches() as log:
        out = launch_scaled_mm(*args, config=SPLIT)
    assert [entry[3].split_k for entry in log] == [4]
    assert torch.equal(out.double().cpu(), exact)
    assert_counters_clean()


@needs_cuda
def test_split_k_runs_in_the_first_capture_without_warm_up():
    args, exact = exact_problem(2, 512, 96, "cuda")
    graph = torch.cuda.CUDAGraph()
    with record_launches() as log, torch.cuda.graph(graph):
        out = launch_scaled_mm(*args, config=SPLIT)
    assert [entry[3].split_k for entry in log] == [4]
    for _ in range(3):
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out.double().cpu(), exact)
    assert_counters_clean()


@needs_cuda
def test_graphs_survive_larger_eager_calls_and_each_other():
    """Two graphs captured, then eager calls on bigger grids (which once regrew the shared
    workspace under the graphs), then replays: all still exact."""
    small, exact_small = exact_problem(2, 256, 40, "cuda")
    big, exact_big = exact_problem(40, 512, 400, "cuda")
    graphs, outs = [], []
    for args in (small, big):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outs.append(launch_scaled_mm(*args, config=SPLIT))
        graphs.append(graph)
    huge, exact_huge = exact_problem(64, 512, 1000, "cuda")
    assert torch.equal(launch_scaled_mm(*huge, config=SPLIT).double().cpu(), exact_huge)
    for _ in range(2):
        for graph, out in zip(graphs, outs):
            out.zero_()
            graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(outs[0].double().cpu(), exact_small)
        assert torch.equal(outs[1].double().cpu(), exact_big)
    assert_counters_clean()


@needs_cuda
def test_two_streams_at_once_use_their_own_counters():
    problems = [exact_problem(4, 1024, 256, "cuda") for _ in range(2)]
    streams = [torch.cuda.Stream() for _ in problems]
    torch.cuda.synchronize()
    outs = [[] for _ in problems]
    for _ in range(20):
        for stream, (args, _), out in zip(streams, problems, outs):
            with torch.cuda.stream(stream):
                out.append(launch_scaled_mm(*args, config=SPLIT))
    torch.cuda.synchronize()
    for (_, exact), out in zip(problems, outs):
        assert all(torch.equal(o.double().cpu(), exact) for o in out)
    assert_counters_clean()


def test_eager_calls_never_ask_cuda_about_capture(monkeypatch, device):
    """On the legacy default stream `cudaStreamIsCapturing` synchronizes with the device, so eager
    split-K launches (every decode GEMM with split_k > 1) must not call it."""

    def asked():
        raise AssertionError("torch.cuda.is_current_stream_capturing() called on an eager launch")

    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", asked)
    a, b, sa, sb, _, azp_adj, azp = make_problem("asym_token", 3, 256, 40, "nk", True, False, torch.float32, device)
    out = launch_scaled_mm(
        a, b, sa, sb, torch.float32, None, azp_adj, azp, config=dataclasses.replace(SMALL_TILES, split_k=4)
    )
    assert not split_k_workspace.is_capturing(torch.device(device))
    ref, _ = scaled_mm_float64(a, b, sa, sb, None, azp_adj, azp)
    assert torch.allclose(out.double().cpu(), ref.cpu(), rtol=1e-5, atol=1e-6)


@needs_cuda
def test_current_raw_stream_is_the_current_stream():
    device = torch.device("cuda", torch.cuda.current_device())
    assert split_k_workspace.current_raw_stream(device) == torch.cuda.current_stream().cuda_stream
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        assert split_k_workspace.current_raw_stream(torch.device("cuda")) == side.cuda_stream != 0


def test_the_replay_path_counter_address_follows_the_eager_buffer(monkeypatch):
    """`eager_counters_address` keeps an address only while it is the eager buffer's and the
    capture pool needs no refill (then each call asks `arrival_counters`, which refills it)."""
    cpu = torch.device("cpu")
    monkeypatch.setattr(split_k_workspace, "_refill_due", lambda device: False)  # a GPU's pool, filled
    split_k_workspace._eager_addresses.clear()
    first = split_k_workspace.eager_counters_address(cpu, 0, 10)
    assert split_k_workspace._eager_addresses[(None, 0)][0] == first
    assert first == split_k_workspace.arrival_counters(cpu, 10).data_ptr()
    grown = split_k_workspace.arrival_counters(cpu, 1 << 16)  # an ordinary call grows the buffer
    assert split_k_workspace.eager_counters_address(cpu, 0, 10) == grown.data_ptr() != first
    asked = []
    monkeypatch.setattr(split_k_workspace, "_refill_due", lambda device: True)
    real = split_k_workspace.arrival_counters
    monkeypatch.setattr(split_k_workspace, "arrival_counters", lambda *a: asked.append(a) or real(*a))
    split_k_workspace._eager_addresses.clear()  # as a capture's hand-out does
    for _ in range(2):
        assert split_k_workspace.eager_counters_address(cpu, 0, 10) == grown.data_ptr()
    assert len(asked) == 2
