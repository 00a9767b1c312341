"""The per-stream scratch between a layer's quant kernel and its GEMM: one buffer per (device,
stream, thread), grown on demand, never handed out past its cap."""

import threading

import torch

from vllm_int8.ops import scratch as scratch_module
from vllm_int8.ops.scratch import MAX_SCRATCH_BYTES, release, scratch

CPU = torch.device("cpu")


def test_reused_per_stream_and_grown():
    release()
    a = scratch(7, 1000, CPU)
    assert a.dtype == torch.int8 and a.numel() >= 1000
    assert scratch(7, 500, CPU) is a  # reused: no allocation per call
    assert scratch(8, 500, CPU) is not a  # another stream gets its own
    big = scratch(7, a.numel() + 1, CPU)
    assert big is not a and big.numel() > a.numel()
    assert scratch(7, 10, CPU) is big


def test_other_threads_and_devices_get_their_own():
    release()
    mine = scratch(0, 100, CPU)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(scratch(0, 100, CPU)))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    keys = list(scratch_module._buffers)
    assert len(keys) == 2 and len({k[2] for k in keys}) == 2  # keyed by thread
    assert all(k[:2] == (CPU.index, 0) for k in keys)


def test_nothing_past_the_cap():
    release()
    assert scratch(0, MAX_SCRATCH_BYTES + 1, CPU) is None
    assert not scratch_module._buffers


def test_past_the_cap_a_fresh_buffer_else_the_streams():
    release()
    big = scratch_module.scratch_or_new(0, MAX_SCRATCH_BYTES + 1, CPU)
    assert big.numel() == MAX_SCRATCH_BYTES + 1 and big.dtype == torch.int8 and not scratch_module._buffers
    small = scratch_module.scratch_or_new(0, 4096, CPU)
    assert small is scratch(0, 4096, CPU) and small.numel() >= 4096
    release()
