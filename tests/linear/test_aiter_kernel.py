"""The AITER kernel with stand-ins (no AMD GPU here): what it refuses, and what it hands to aiter."""

import sys
import types

import pytest
import torch

from tests.linear.layers import random_layer
from tests.oracle import assert_within_rounding
from vllm_int8.linear import (
    AiterInt8ScaledMMLinearKernel,
    Int8ScaledMMLinearLayerConfig,
    TritonInt8ScaledMMLinearKernel,
    choose_scaled_mm_linear_kernel,
    explain_choice,
)
from vllm_int8.platform import ROCM, Platform, current_platform

MI325 = Platform(ROCM, "gfx942:sramecc+:xnack-", "AMD Instinct MI325X", 94)
SYM = Int8ScaledMMLinearLayerConfig(is_static_input_scheme=False, is_channelwise=True, input_symmetric=True)
STATIC_SYM = Int8ScaledMMLinearLayerConfig(is_static_input_scheme=True, is_channelwise=False, input_symmetric=True)


@pytest.fixture
def fake_aiter(monkeypatch):
    """A stand-in `aiter` module whose gemm_a8w8_CK checks its arguments as CK documents them and
    computes the product in float64, recording every call."""
    calls = []

    def gemm_a8w8_CK(xq, wq, x_scale, w_scale, bias, dtype):  # noqa: N802 - aiter's name
        m, k = xq.shape
        n = wq.shape[0]
        assert xq.dtype == wq.dtype == torch.int8 and wq.shape == (n, k) and wq.is_contiguous()
        assert x_scale.shape == (m, 1) and x_scale.is_contiguous() and x_scale.dtype == torch.float32
        assert w_scale.shape == (1, n) and w_scale.is_contiguous() and w_scale.dtype == torch.float32
        assert bias is None or bias.shape == (1, n) and bias.dtype == dtype
        assert dtype in (torch.float16, torch.bfloat16)
        calls.append({"w_scale": w_scale, "x_scale": x_scale})
        out = (xq.double() @ wq.double().t()) * x_scale.double() * w_scale.double()
        return (out if bias is None else out + bias.double()).to(dtype)

    monkeypatch.setitem(sys.modules, "aiter", types.SimpleNamespace(gemm_a8w8_CK=gemm_a8w8_CK))
    return calls


def test_selection_takes_the_platform_as_an_argument(aiter_env):
    assert choose_scaled_mm_linear_kernel(SYM, platform=MI325) is AiterInt8ScaledMMLinearKernel
    assert current_platform() != MI325  # nothing process-wide was swapped


def test_shapes_aiter_cannot_tile_fall_back_to_triton_with_a_reason(aiter_env):
    kernel, skipped = explain_choice(SYM, platform=MI325, shape=(100, 64))
    assert kernel is TritonInt8ScaledMMLinearKernel
    assert skipped == [("AiterInt8ScaledMMLinearKernel", skipped[0][1])] and "multiples of 16" in skipped[0][1]
    assert explain_choice(SYM, platform=MI325, shape=(128, 64))[0] is AiterInt8ScaledMMLinearKernel


@pytest.mark.parametrize("config", [SYM, STATIC_SYM], ids=["dynamic", "static"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_apply_hands_ck_what_it_documents(config, dtype, aiter_env, fake_aiter, device):
    from vllm_int8 import ops

    layer = random_layer(config, AiterInt8ScaledMMLinearKernel, widths=(32, 16, 16), k=64).to(device)
    layer.process_weights_after_loading()
    w_scale = layer.kernel._w_scale
    for m in (3, 5, 3):
        x = torch.randn(m, 64, device=device).to(dtype)
        out = layer(x)
        i_s = layer.input_scale
        x_q, x_s, _ = ops.torch_scaled_int8_quant(x, i_s, None, True)
        ref = (x_q.double() @ layer.weight.double()) * x_s.double().reshape(-1, 1) * layer.weight_scale.double().t()
        ref = ref + layer.bias.double()
        assert_within_rounding(out, ref.cpu(), (ref.abs() + layer.bias.double().abs()).cpu())
    if dtype == torch.float32:  # CK writes no fp32: the Triton GEMM answered
        assert fake_aiter == []
    else:
        assert len(fake_aiter) == 3 and all(c["w_scale"] is w_scale for c in fake_aiter)  # made once
        if config.is_static_input_scheme:  # one buffer for every M, no allocation per forward
            assert fake_aiter[0]["x_scale"].data_ptr() == fake_aiter[2]["x_scale"].data_ptr()


def test_processing_refuses_a_shape_ck_cannot_tile(aiter_env):
    layer = random_layer(SYM, AiterInt8ScaledMMLinearKernel, widths=(24, 8, 8), k=48)  # N = 40
    with pytest.raises(ValueError, match="multiples of 16"):
        layer.process_weights_after_loading()
