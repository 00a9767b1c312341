"""register() against the installed vLLM: its real lists, its own selection, and refusals."""

import logging

import pytest
from vllm.platforms import PlatformEnum

import vllm_int8.vllm_plugin as plugin
from vllm_int8.vllm_plugin import compat
from vllm_int8.vllm_plugin.kernels import VllmInt8CPUKernel, VllmInt8TritonKernel


def names(kernels):
    return [k.__name__ for k in kernels]


def test_entry_point_names_register():
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="vllm.general_plugins") if e.name == "vllm_int8"]
    assert entry.load() is plugin.register


def test_register_places_ours_in_vllms_lists(restore_vllm_lists, monkeypatch):
    monkeypatch.delenv("VLLM_INT8_FIRST", raising=False)
    linear = restore_vllm_lists
    plugin.register()
    plugin.register()  # vLLM may load plugins more than once: still one entry each
    lists = linear._POSSIBLE_INT8_KERNELS
    rocm, cuda = names(lists[PlatformEnum.ROCM]), names(lists[PlatformEnum.CUDA])
    assert rocm.count("VllmInt8TritonKernel") == 1 and cuda.count("VllmInt8TritonKernel") == 1
    assert rocm.index("AiterInt8ScaledMMLinearKernel") < rocm.index("VllmInt8TritonKernel")
    assert rocm.index("VllmInt8TritonKernel") < rocm.index("TritonInt8ScaledMMLinearKernel")
    assert cuda.index("CutlassInt8ScaledMMLinearKernel") < cuda.index("VllmInt8TritonKernel")
    assert cuda.index("VllmInt8TritonKernel") < cuda.index("TritonInt8ScaledMMLinearKernel")
    assert "VllmInt8CPUKernel" not in names(lists[PlatformEnum.CPU])
    assert VllmInt8TritonKernel in linear._LINEAR_BACKEND_KERNEL_MAP["triton"]  # --linear-backend=triton keeps it
    assert len(plugin.registered()) == 2


def test_first_puts_ours_first_on_cuda_and_cpu(restore_vllm_lists, monkeypatch):
    monkeypatch.setenv("VLLM_INT8_FIRST", "1")
    linear = restore_vllm_lists
    plugin.register()
    lists = linear._POSSIBLE_INT8_KERNELS
    assert lists[PlatformEnum.CUDA][0] is VllmInt8TritonKernel
    assert lists[PlatformEnum.CPU][0] is VllmInt8CPUKernel
    assert names(lists[PlatformEnum.ROCM])[0] == "AiterInt8ScaledMMLinearKernel"


def test_vllm_selects_ours_and_honours_disabled_kernels(restore_vllm_lists, monkeypatch):
    """vLLM's own choose_scaled_mm_linear_kernel on this CPU: ours first, then disabled by name."""
    monkeypatch.setenv("VLLM_INT8_FIRST", "1")
    linear = restore_vllm_lists
    plugin.register()
    config = linear.Int8ScaledMMLinearLayerConfig(is_static_input_scheme=False, is_channelwise=True,
                                                  input_symmetric=False)  # fmt: skip
    choose = linear.choose_scaled_mm_linear_kernel
    assert choose(config, linear._POSSIBLE_INT8_KERNELS, quantization="int8_w8a8") is VllmInt8CPUKernel
    monkeypatch.setenv("VLLM_DISABLED_KERNELS", "VllmInt8CPUKernel")
    assert choose(config, linear._POSSIBLE_INT8_KERNELS, quantization="int8_w8a8").__name__ == (
        "CPUInt8ScaledMMLinearKernel"
    )


def test_triton_kernel_is_not_supported_on_a_cpu_platform():
    ok, reason = VllmInt8TritonKernel.is_supported()
    assert not ok and "CUDA or ROCm" in reason


def test_untested_vllm_registers_nothing(restore_vllm_lists, monkeypatch, caplog):
    linear = restore_vllm_lists
    before = {k: list(v) for k, v in linear._POSSIBLE_INT8_KERNELS.items()}
    monkeypatch.setattr(compat, "vllm_version", lambda: "0.99.0")
    monkeypatch.delenv(compat.ALLOW_UNTESTED_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="vllm.vllm_int8"):
        assert plugin.register() == []
    assert {k: list(v) for k, v in linear._POSSIBLE_INT8_KERNELS.items()} == before
    (record,) = [r for r in caplog.records if r.name == "vllm.vllm_int8"]
    assert "0.99.0 is not a tested version" in record.getMessage() and "\n" not in record.getMessage()
    monkeypatch.setenv(compat.ALLOW_UNTESTED_ENV, "1")  # the user's override: interface checks still apply
    assert plugin.register() != []


@pytest.mark.parametrize("missing", ["_POSSIBLE_INT8_KERNELS", "Int8ScaledMMLinearKernel"])
def test_moved_interface_registers_nothing(restore_vllm_lists, monkeypatch, missing):
    linear = restore_vllm_lists
    monkeypatch.delattr(linear, missing)
    api, reason = compat.check_vllm()
    assert api is None and missing in reason
    assert plugin.register() == []


def test_changed_kernel_constructor_registers_nothing(restore_vllm_lists, monkeypatch):
    linear = restore_vllm_lists

    def init(self, config, names, extra):  # an interface that moved
        pass

    monkeypatch.setattr(linear.Int8ScaledMMLinearKernel, "__init__", init)
    api, reason = compat.check_vllm()
    assert api is None and "__init__" in reason


def test_info_reports_vllms_choice(restore_vllm_lists, monkeypatch):
    from vllm_int8.vllm_plugin.report import describe_vllm

    monkeypatch.setenv("VLLM_INT8_FIRST", "1")
    report = describe_vllm()
    assert "entry point vllm_int8 installed" in report and "VllmInt8CPUKernel on CPU (first)" in report
    choices = [line.split()[-1] for line in report.splitlines() if line.startswith(("dynamic", "static"))]
    assert choices == ["VllmInt8CPUKernel"] * 4  # every scheme
    monkeypatch.delenv("VLLM_INT8_FIRST")
    report = describe_vllm()
    choices = [line.split()[-1] for line in report.splitlines() if line.startswith(("dynamic", "static"))]
    assert choices == ["CPUInt8ScaledMMLinearKernel"] * 4


def test_an_error_while_registering_is_one_line_not_a_crash(restore_vllm_lists, monkeypatch, caplog):
    from vllm_int8.vllm_plugin import placement

    def broken(*args, **kwargs):
        raise RuntimeError("placement exploded")

    monkeypatch.setattr(placement, "placements", broken)
    with caplog.at_level(logging.WARNING, logger="vllm.vllm_int8"):
        assert plugin.register() == []
    (record,) = [r for r in caplog.records if r.name == "vllm.vllm_int8"]
    assert "not registered: RuntimeError: placement exploded" in record.getMessage()
