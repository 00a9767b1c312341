"""Per-stream scratch for the int8 rows (and their scales and zero points) between a layer's quant
kernel and its GEMM.

They live from one kernel to the next on one stream, so an eager layer needs no fresh allocation
for them: one buffer per (device stream, thread), grown when a call needs more, is reused by every
layer. Stream order makes that safe: the next call's quant kernel runs after this call's GEMM (a
PDL-launched quant kernel waits for it before its first load or store, `pdl.py`). The thread is
part of the key because two threads launching on one stream could interleave a quant between
another thread's quant and GEMM. Calls under CUDA-graph capture never use it (they allocate from
the graph's pool), and calls needing more than `MAX_SCRATCH_BYTES` allocate as before (their GPU
time dwarfs an allocation).
"""

from __future__ import annotations

import threading

import torch

MAX_SCRATCH_BYTES = 64 << 20
_buffers: dict[tuple[int, int, int], torch.Tensor] = {}


def scratch(stream: int, nbytes: int, device: torch.device) -> torch.Tensor | None:
    """An int8 buffer of at least `nbytes` for use on `device`'s `stream` by this thread (None:
    too large). The device is part of the key: stream 0 is each device's legacy default stream."""
    if nbytes > MAX_SCRATCH_BYTES:
        return None
    key = (device.index, stream, threading.get_ident())
    buffer = _buffers.get(key)
    if buffer is None or buffer.numel() < nbytes:
        buffer = _buffers[key] = torch.empty(max(nbytes, 1 << 20), dtype=torch.int8, device=device)
    return buffer


def scratch_or_new(stream: int, nbytes: int, device: torch.device) -> torch.Tensor:
    """`scratch`, or a fresh buffer where that would be too large: the caching allocator keeps its
    memory from the next allocation on `stream` until the kernels queued before then ran."""
    buffer = scratch(stream, nbytes, device)
    return buffer if buffer is not None else torch.empty(nbytes, dtype=torch.int8, device=device)


def release() -> None:
    """Free every scratch buffer (tests; a process that wants the memory back)."""
    _buffers.clear()
