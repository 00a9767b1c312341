"""Our kernel classes on vLLM's own layers: `CompressedTensorsW8A8Int8.create_weights` builds the
parameters (vLLM's parameter classes, fused logical widths) and picks the kernel through vLLM's
selection; the output is checked against a float64 oracle built from the checkpoint tensors.
The Triton class runs under the Triton interpreter here (a CUDA platform stand-in lets it pass
its platform check) and natively on a GPU."""

import pytest
import torch
from compressed_tensors.quantization import QuantizationStrategy
from vllm.model_executor.layers.quantization.compressed_tensors.schemes.compressed_tensors_w8a8_int8 import (
    CompressedTensorsW8A8Int8,
)
from vllm.platforms import PlatformEnum

from tests.oracle import assert_within_rounding
from vllm_int8.platform import CUDA, Platform, use_platform
from vllm_int8.vllm_plugin.kernels import VllmInt8CPUKernel, VllmInt8TritonKernel

WIDTHS, K = [48, 16, 16], 64  # a fused q/k/v-like layer
SCHEMES = [(static, sym) for static in (False, True) for sym in (True, False)]


def scheme_id(scheme) -> str:
    static, sym = scheme
    return f"{'static' if static else 'dynamic'}-{'sym' if sym else 'asym'}"


def vllm_layer(kernel, static: bool, sym: bool, channelwise: bool, device: str):
    """(vLLM scheme, layer with random checkpoint tensors loaded, those tensors), kernel chosen by vLLM."""
    from vllm.model_executor.kernels import linear

    strategy = QuantizationStrategy.CHANNEL if channelwise else QuantizationStrategy.TENSOR
    scheme = CompressedTensorsW8A8Int8(strategy, is_static_input_scheme=static, input_symmetric=sym)
    layer = torch.nn.Module()
    saved = linear._POSSIBLE_INT8_KERNELS[PlatformEnum.CPU]
    linear._POSSIBLE_INT8_KERNELS[PlatformEnum.CPU] = [kernel]  # vLLM's selection, offered only ours
    try:
        scheme.create_weights(layer, WIDTHS, K, torch.float32, weight_loader=None)
    finally:
        linear._POSSIBLE_INT8_KERNELS[PlatformEnum.CPU] = saved
    assert type(scheme.kernel) is kernel
    n = sum(WIDTHS)
    raw = {
        "weight": torch.randint(-128, 128, (n, K), dtype=torch.int8),
        "weight_scale": torch.rand(n, 1) * 0.01 + 1e-3 if channelwise else torch.rand(len(WIDTHS)) * 0.01 + 1e-3,
    }
    if static:
        raw["input_scale"] = torch.rand(1) * 0.05 + 0.01
        if not sym:
            raw["input_zero_point"] = torch.randint(-20, 20, (1,), dtype=torch.int8)
    for name, tensor in raw.items():
        getattr(layer, name).data.copy_(tensor)
    return scheme, layer.to(device), raw


def oracle(raw: dict, x: torch.Tensor, static: bool, sym: bool, bias: torch.Tensor):
    """float64 output on activation codes quantized by the documented rule (IEEE float32 x / s,
    round half to even, saturate; dynamic asym ranges widened to contain 0)."""
    x = x.cpu().float()
    if static:
        s = raw["input_scale"].float().reshape(1, 1)
        zp = raw["input_zero_point"].float().reshape(1, 1) if not sym else torch.zeros(1, 1)
    elif sym:
        s, zp = x.abs().amax(dim=1, keepdim=True) / 127, torch.zeros(x.shape[0], 1)
    else:
        hi, lo = x.amax(dim=1, keepdim=True).clamp(min=0), x.amin(dim=1, keepdim=True).clamp(max=0)
        s = (hi - lo) / 255
        zp = torch.round(-128 - lo / s)
    q = torch.clamp(torch.round(x / s) + zp, -128, 127)
    w_s = raw["weight_scale"].double().reshape(-1)
    if w_s.numel() == len(WIDTHS):
        w_s = w_s.repeat_interleave(torch.tensor(WIDTHS))
    acc = (q.double() - zp.double()) @ raw["weight"].double().t()
    ref = acc * s.double() * w_s.reshape(1, -1)
    return ref + bias.cpu().double(), ref.abs() + bias.cpu().double().abs()


@pytest.mark.parametrize("channelwise", [True, False], ids=["channel", "tensor"])
@pytest.mark.parametrize("scheme", SCHEMES, ids=scheme_id)
@pytest.mark.parametrize("kernel", [VllmInt8TritonKernel, VllmInt8CPUKernel], ids=lambda k: k.__name__)
def test_vllm_layer_matches_float64(vllm_single_process_group, kernel, scheme, channelwise, device):
    static, sym = scheme
    on_gpu = kernel is VllmInt8TritonKernel
    stand_in = Platform(CUDA, "sm_90", "stand-in", 90) if on_gpu and device == "cpu" else None
    device = device if on_gpu else "cpu"
    with use_platform(stand_in) if stand_in else _nothing():
        vllm_scheme, layer, raw = vllm_layer(kernel, static, sym, channelwise, device)
        vllm_scheme.process_weights_after_loading(layer)
        x = torch.randn(5, K, device=device) * 2
        bias = torch.randn(sum(WIDTHS), device=device)
        y = vllm_scheme.apply_weights(layer, x, bias)
    assert y.shape == (5, sum(WIDTHS)) and y.dtype == torch.float32
    assert_within_rounding(y, *oracle(raw, x, static, sym, bias))


def _nothing():
    import contextlib

    return contextlib.nullcontext()
