"""Where the plugin puts our kernels in vLLM's lists, and which vLLM versions it accepts (no vLLM needed)."""

import pytest

from vllm_int8.vllm_plugin.compat import version_supported
from vllm_int8.vllm_plugin.placement import Placement, insert, placements


def kernel(name: str) -> type:
    return type(name, (), {})


AITER, VTRITON, CUTLASS, HUMMING, ZEN, VCPU = (
    kernel(n)
    for n in ("AiterInt8ScaledMMLinearKernel", "TritonInt8ScaledMMLinearKernel", "CutlassInt8ScaledMMLinearKernel",
              "HummingInt8ScaledMMLinearKernel", "ZentorchInt8ScaledMMLinearKernel", "CPUInt8ScaledMMLinearKernel")
)  # fmt: skip
OURS_TRITON, OURS_CPU = kernel("VllmInt8TritonKernel"), kernel("VllmInt8CPUKernel")


def names(kernels):
    return [k.__name__ for k in kernels]


def placed(first: bool) -> dict[str, list[str]]:
    lists = {"ROCM": [AITER, VTRITON], "CUDA": [CUTLASS, VTRITON, HUMMING], "CPU": [ZEN, VCPU]}
    for p in placements(OURS_TRITON, OURS_CPU, first=first):
        insert(lists[p.platform], p)
    return {k: names(v) for k, v in lists.items()}


def test_default_placement():
    lists = placed(first=False)
    assert lists["ROCM"] == ["AiterInt8ScaledMMLinearKernel", "VllmInt8TritonKernel", "TritonInt8ScaledMMLinearKernel"]
    assert lists["CUDA"] == ["CutlassInt8ScaledMMLinearKernel", "VllmInt8TritonKernel",
                             "TritonInt8ScaledMMLinearKernel", "HummingInt8ScaledMMLinearKernel"]  # fmt: skip
    assert lists["CPU"] == ["ZentorchInt8ScaledMMLinearKernel", "CPUInt8ScaledMMLinearKernel"]  # not asked for


def test_first_placement():
    lists = placed(first=True)
    assert lists["ROCM"][1] == "VllmInt8TritonKernel"  # AITER stays ahead on ROCm
    assert lists["CUDA"][0] == "VllmInt8TritonKernel"
    assert lists["CPU"][0] == "VllmInt8CPUKernel"


def test_first_placement_follows_the_environment(monkeypatch):
    monkeypatch.setenv("VLLM_INT8_FIRST", "1")
    assert [p.platform for p in placements(OURS_TRITON, OURS_CPU)] == ["ROCM", "CUDA", "CPU"]
    monkeypatch.setenv("VLLM_INT8_FIRST", "0")
    assert [p.platform for p in placements(OURS_TRITON, OURS_CPU)] == ["ROCM", "CUDA"]


def test_insert_is_idempotent_by_name():
    kernels = [AITER, VTRITON]
    p = Placement("ROCM", OURS_TRITON, after=(AITER.__name__,), before=(VTRITON.__name__,))
    insert(kernels, p)
    insert(kernels, Placement("ROCM", kernel("VllmInt8TritonKernel"), p.after, p.before))  # a reloaded class
    assert names(kernels) == ["AiterInt8ScaledMMLinearKernel", "VllmInt8TritonKernel", "TritonInt8ScaledMMLinearKernel"]


def test_insert_when_the_named_kernels_are_missing():
    only_triton = [VTRITON]
    insert(only_triton, Placement("ROCM", OURS_TRITON, after=(AITER.__name__,), before=(VTRITON.__name__,)))
    assert names(only_triton)[0] == "VllmInt8TritonKernel"  # before vLLM's Triton
    other = [HUMMING]
    insert(other, Placement("CUDA", OURS_TRITON, after=(CUTLASS.__name__,), before=(VTRITON.__name__,)))
    assert names(other) == ["HummingInt8ScaledMMLinearKernel", "VllmInt8TritonKernel"]  # out of the way
    empty = []
    insert(empty, Placement("CPU", OURS_CPU))
    assert empty == [OURS_CPU]


@pytest.mark.parametrize(
    ("version", "ok"),
    [("0.32.0", True), ("0.32.1+cpu", True), ("0.33.0rc1", True), ("0.31.2", False), ("0.34.0", False),
     ("1.32.0", False)],
)  # fmt: skip
def test_version_supported(version, ok):
    assert version_supported(version) is ok
