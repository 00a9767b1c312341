"""Arrival counters for the split-K GEMM: zero before every launch, never freed under a live graph.

The split-K kernel needs two buffers. Its partial tiles (one slot per K-slice, plain stores, read
back by the last slice) need no initial value, so they come from PyTorch's caching allocator per
call: stream-ordered in eager mode, and owned by the graph's private pool under CUDA-graph capture,
which keeps them alive for as long as the graph can replay. No code of ours manages them.

The arrival counters must read zero when a launch starts. The kernel leaves them zero (the last
slice of a tile resets its counter), so a counter needs zeroing once, when it is created, and must
then never be shared by two launches that can run at the same time. Hence:

- eager calls: one persistent buffer per (device, stream), created zeroed on first use and grown
  (replaced) only by an eager call on that same stream, so stream order protects every reuse;
- calls under graph capture: a fresh, never-reused range of a per-device pool of zeroed chunks.
  Each captured launch owns its counters for the life of the process, so no other graph, stream
  or eager call touches them, and nothing is allocated or zeroed inside the graph. The pool's first
  chunk is made outside capture (`reserve_capture_counters`, called when a layer is prepared, or
  any eager call); if a capture finds no room, that launch zeroes fresh counters inside the graph
  (a memset node per replay: correct, slightly slower).

A memset per call would be the simplest correct design, but it adds a launch (or graph node) to
every decode GEMM, which is exactly where split-K is meant to save time.
"""

from __future__ import annotations

import threading

import torch

COUNTERS_PER_CHUNK = 1 << 18  # 1 MiB of int32 counters: thousands of captured decode GEMMs

_lock = threading.Lock()
_eager: dict[tuple[torch.device, int], torch.Tensor] = {}
_capture_chunks: dict[torch.device, list[torch.Tensor]] = {}
_capture_used: dict[torch.device, int] = {}  # counters handed out from the newest chunk
# (device index, stream) -> (address, count) of its eager buffer, for the replay path: kept only
# while that device's capture pool needs no refill, so every capture hand-out empties it.
_eager_addresses: dict[tuple[int, int], tuple[int, int]] = {}


def device_index(device: torch.device) -> int:
    """The CUDA index of `device`, the current device for an index-less "cuda"."""
    return device.index if device.index is not None else torch.cuda.current_device()


def current_raw_stream(device: torch.device) -> int:
    """The CUDA handle of `device`'s current stream (0: the legacy default stream).

    `torch._C._cuda_getCurrentRawStream` is what Triton and Inductor launch with; the public
    `torch.cuda.current_stream(device)` builds a Stream object, several µs per call on the
    eager decode path (H100 host, 2026-11-26: 2.5 such calls per Int8Linear apply).
    """
    return _raw_stream(device_index(device))


def tensor_stream(x: torch.Tensor) -> int:
    """`current_raw_stream` of a CUDA tensor's device, with the least host work (the replay path)."""
    return _raw_stream(x.get_device())


_current_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # absent from CPU-only builds


def _raw_stream(index: int) -> int:
    if _current_raw_stream is not None:
        return _current_raw_stream(index)
    return torch.cuda.current_stream(index).cuda_stream


def is_capturing(device: torch.device) -> bool:
    """Whether `device` is recording a CUDA graph now (on its current stream).

    Eager PyTorch runs on the legacy default stream, where capture is impossible and where asking
    CUDA (`cudaStreamIsCapturing`) synchronizes with the device: on the H100, 2026-11-26, that one
    call per apply made an 8-layer Llama-3-8B-shaped prefill 27.1 ms instead of 16.9. So the stream
    is looked at first.
    """
    if device.type != "cuda" or current_raw_stream(device) == 0:
        return False
    return torch.cuda.is_current_stream_capturing()


def _new_zeroed(device: torch.device, count: int) -> torch.Tensor:
    counters = torch.zeros(count, dtype=torch.int32, device=device)
    if device.type == "cuda":  # graphs replayed on another stream must see the zeros
        torch.cuda.current_stream(device).synchronize()
    return counters


def _refill_due(device: torch.device) -> bool:
    """Whether the capture pool of `device` has no chunk, or its newest is three quarters used."""
    return not _capture_chunks.get(device) or _capture_used[device] > COUNTERS_PER_CHUNK * 3 // 4


def reserve_capture_counters(device: torch.device | str) -> None:
    """Make sure the pool has a zeroed chunk at least a quarter free for launches captured later.

    Call outside capture; every eager split-K call does, so warm-ups before a capture refill it.
    """
    device = torch.device(device)
    if device.type != "cuda" or is_capturing(device):
        return
    with _lock:
        chunks = _capture_chunks.setdefault(device, [])
        if _refill_due(device):
            chunks.append(_new_zeroed(device, COUNTERS_PER_CHUNK))
            _capture_used[device] = 0


def arrival_counters(device: torch.device, tiles: int) -> torch.Tensor:
    """`tiles` int32 counters that read zero now and that no concurrent launch shares."""
    if not is_capturing(device):
        stream = current_raw_stream(device) if device.type == "cuda" else 0
        key = (device, stream)
        with _lock:
            counters = _eager.get(key)
            if counters is None or counters.numel() < tiles:
                counters = _eager[key] = _new_zeroed(device, max(tiles, 1024))
                _eager_addresses.clear()  # the buffer it held is freed
        reserve_capture_counters(device)
        return counters[:tiles]
    with _lock:
        _eager_addresses.clear()  # the pool may now need a refill, which eager calls make
        chunks, used = _capture_chunks.get(device), _capture_used.get(device, 0)
        if chunks and used + tiles <= chunks[-1].numel():
            _capture_used[device] = used + tiles
            return chunks[-1][used : used + tiles]
    # No zeroed room left: zero inside the graph (replayed each time, private to this launch).
    return torch.zeros(tiles, dtype=torch.int32, device=device)


def eager_counters_address(device: torch.device, stream: int, tiles: int) -> int:
    """`arrival_counters(device, tiles).data_ptr()` for an eager call on `stream` (the replay path,
    which knows it is not capturing; `device` has an index): one dictionary look-up while the
    buffer is large enough and the capture pool needs no refill."""
    key = (device.index, stream)
    hit = _eager_addresses.get(key)
    if hit is not None and hit[1] >= tiles:
        return hit[0]
    counters = arrival_counters(device, tiles)
    with _lock:
        buffer = _eager.get((device, stream))
        if buffer is not None and not _refill_due(device):
            _eager_addresses[key] = (buffer.data_ptr(), buffer.numel())
    return counters.data_ptr()


def all_counters() -> list[torch.Tensor]:
    """Every counter buffer this module owns (tests and the stress test check they are zero)."""
    with _lock:
        return list(_eager.values()) + [c for chunks in _capture_chunks.values() for c in chunks]
