"""Kernel choice per platform, with stand-in platforms (no ROCm device here)."""

import pytest

from vllm_int8.linear import (
    AiterInt8ScaledMMLinearKernel,
    CPUInt8ScaledMMLinearKernel,
    Int8ScaledMMLinearLayerConfig,
    TritonInt8ScaledMMLinearKernel,
    choose_scaled_mm_linear_kernel,
    describe_selection,
)
from vllm_int8.linear import aiter_kernel as aiter_mod
from vllm_int8.platform import CPU, CUDA, ROCM, Platform, use_platform

MI325 = Platform(ROCM, "gfx942:sramecc+:xnack-", "AMD Instinct MI325X", 94)
RDNA3 = Platform(ROCM, "gfx1100", "Radeon RX 7900 XTX", 110)
H100 = Platform(CUDA, "sm_90", "NVIDIA H100 80GB HBM3", 90)
T4 = Platform(CUDA, "sm_75", "Tesla T4", 75)
P100 = Platform(CUDA, "sm_60", "Tesla P100", 60)
SYM = Int8ScaledMMLinearLayerConfig(is_static_input_scheme=False, is_channelwise=True, input_symmetric=True)
ASYM = Int8ScaledMMLinearLayerConfig(is_static_input_scheme=False, is_channelwise=True, input_symmetric=False)


def test_rocm_with_aiter_on_picks_aiter(aiter_env):
    with use_platform(MI325):
        assert choose_scaled_mm_linear_kernel(SYM) is AiterInt8ScaledMMLinearKernel


def test_rocm_with_aiter_off_falls_back_to_triton(aiter_env):
    aiter_env.setenv("VLLM_ROCM_USE_AITER", "0")
    with use_platform(MI325):
        assert choose_scaled_mm_linear_kernel(SYM) is TritonInt8ScaledMMLinearKernel


def test_rocm_with_aiter_linear_off_falls_back_to_triton(aiter_env):
    aiter_env.setenv("VLLM_ROCM_USE_AITER_LINEAR", "0")
    with use_platform(MI325):
        assert choose_scaled_mm_linear_kernel(SYM) is TritonInt8ScaledMMLinearKernel


def test_rocm_with_aiter_on_but_not_importable_falls_back_to_triton(aiter_env):
    aiter_env.setattr(aiter_mod, "aiter_importable", lambda: False)
    with use_platform(MI325):
        assert choose_scaled_mm_linear_kernel(SYM) is TritonInt8ScaledMMLinearKernel


def test_rocm_asymmetric_goes_to_triton_even_with_aiter(aiter_env):
    with use_platform(MI325):
        assert choose_scaled_mm_linear_kernel(ASYM) is TritonInt8ScaledMMLinearKernel


def test_aiter_needs_a_gfx9_arch(aiter_env):
    with use_platform(RDNA3):
        assert choose_scaled_mm_linear_kernel(SYM) is TritonInt8ScaledMMLinearKernel
        ok, reason = AiterInt8ScaledMMLinearKernel.is_supported()
        assert not ok and "gfx9" in reason and "gfx1100" in reason


@pytest.mark.parametrize("plat", [H100, T4])
def test_cuda_picks_triton(plat, aiter_env):
    with use_platform(plat):
        assert choose_scaled_mm_linear_kernel(ASYM) is TritonInt8ScaledMMLinearKernel


def test_cpu_picks_cpu(aiter_env):
    with use_platform(Platform(CPU)):
        assert choose_scaled_mm_linear_kernel(SYM) is CPUInt8ScaledMMLinearKernel


def test_disabled_kernels_are_skipped(aiter_env):
    aiter_env.setenv("VLLM_DISABLED_KERNELS", "AiterInt8ScaledMMLinearKernel")
    with use_platform(MI325):
        assert choose_scaled_mm_linear_kernel(SYM) is TritonInt8ScaledMMLinearKernel


def test_no_candidate_lists_every_kernel_and_reason(aiter_env):
    aiter_env.setenv("VLLM_DISABLED_KERNELS", "TritonInt8ScaledMMLinearKernel")
    with use_platform(MI325), pytest.raises(ValueError) as err:
        choose_scaled_mm_linear_kernel(ASYM)
    message = str(err.value)
    assert "AiterInt8ScaledMMLinearKernel: AITER's int8 GEMM has no zero-point epilogue" in message
    assert "TritonInt8ScaledMMLinearKernel: disabled by VLLM_DISABLED_KERNELS" in message


def test_old_cuda_gpu_is_refused_with_its_capability(aiter_env):
    with use_platform(P100), pytest.raises(ValueError, match="compute capability >= 75, this GPU has 60"):
        choose_scaled_mm_linear_kernel(SYM)


def test_explicit_compute_capability_overrides_the_platform(aiter_env):
    with use_platform(H100):
        ok, reason = TritonInt8ScaledMMLinearKernel.is_supported(compute_capability=70)
    assert not ok and "70" in reason


@pytest.mark.parametrize(
    "env, expected",
    [({}, "switched off"), ({"VLLM_ROCM_USE_AITER": "1", "VLLM_ROCM_USE_AITER_LINEAR": "0"}, "linear is switched off")],
)
def test_aiter_reports_why_it_is_unusable(aiter_env, env, expected):
    aiter_env.delenv("VLLM_ROCM_USE_AITER")
    for name, value in env.items():
        aiter_env.setenv(name, value)
    with use_platform(MI325):
        ok, reason = AiterInt8ScaledMMLinearKernel.is_supported()
    assert not ok and expected in reason


def test_describe_selection_names_platform_and_kernels(aiter_env):
    aiter_env.setenv("VLLM_ROCM_USE_AITER", "0")
    with use_platform(MI325):
        report = describe_selection()
    assert "gfx942" in report and "TritonInt8ScaledMMLinearKernel" in report and "switched off" in report


def test_describe_selection_says_why_each_scheme_gets_its_kernel(aiter_env):
    aiter_env.setenv("VLLM_ROCM_USE_AITER", "0")
    with use_platform(MI325):
        report = describe_selection().splitlines()
    assert "tried:    AiterInt8ScaledMMLinearKernel > TritonInt8ScaledMMLinearKernel (in this order)" in report
    rows = [line for line in report if line.startswith(("dynamic ", "static "))]
    assert len(rows) == 4 and all("TritonInt8ScaledMMLinearKernel" in r and r.endswith("the first that fits")
                                  for r in rows)  # fmt: skip
    skipped = [line.strip() for line in report if "skipped AiterInt8ScaledMMLinearKernel" in line]
    assert len(skipped) == 4 and all("switched off" in line for line in skipped)
    with use_platform(Platform(CPU)):
        rows = [line for line in describe_selection().splitlines() if line.startswith(("dynamic ", "static "))]
    assert all(r.endswith("the first tried") for r in rows)
