"""INT8 linear kernels: weight processing against independent formulas, forward against float64."""

import pytest
import torch

from tests.linear.layers import ALL_CONFIGS, config_id, random_layer
from tests.oracle import assert_within_rounding
from vllm_int8 import ops
from vllm_int8.linear import CPUInt8ScaledMMLinearKernel, TritonInt8ScaledMMLinearKernel
from vllm_int8.linear.kernel import static_asymmetric_scale_and_azp

KERNELS = [TritonInt8ScaledMMLinearKernel, CPUInt8ScaledMMLinearKernel]


def kernel_device(kernel, device):
    return "cpu" if kernel is CPUInt8ScaledMMLinearKernel else device


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_process_weights_after_loading(config):
    layer = random_layer(config, CPUInt8ScaledMMLinearKernel)
    raw = dict(layer.named_parameters())
    raw = {k: v.detach().clone() for k, v in raw.items()}
    layer.process_weights_after_loading()

    assert torch.equal(layer.weight, raw["weight"].t()) and layer.weight.stride(0) == 1
    expected_scale = (
        raw["weight_scale"]
        if config.is_channelwise
        else raw["weight_scale"].repeat_interleave(torch.tensor(layer.logical_widths)).reshape(-1, 1)
    )
    assert torch.equal(layer.weight_scale.reshape(-1), expected_scale.reshape(-1))

    if not config.is_static_input_scheme:
        assert layer.input_scale is None and layer.input_zero_point is None
    elif config.input_symmetric:
        assert layer.input_scale.item() == raw["input_scale"].max().item() and layer.input_zero_point is None
    else:  # float64 rebuild of the union of the shards' ranges (which contain 0 here)
        s, zp = raw["input_scale"].double(), raw["input_zero_point"].double()
        lo, hi = (s * (-128 - zp)).min(), (s * (127 - zp)).max()
        scale = (hi - lo) / 255
        assert abs(layer.input_scale.item() - scale.item()) <= 1e-6 * scale.item()
        assert layer.input_zero_point.item() == round((-128 - lo / scale).item())

    col_sums = raw["weight"].to(torch.int64).sum(dim=1)
    if config.input_symmetric:
        assert layer.azp_adj is None
    elif config.is_static_input_scheme:
        assert torch.equal(layer.azp_adj.to(torch.int64), col_sums * layer.input_zero_point.item())
    else:
        assert torch.equal(layer.azp_adj.to(torch.int64), col_sums)


def test_second_processing_raises():
    layer = random_layer(ALL_CONFIGS[0], CPUInt8ScaledMMLinearKernel)
    layer.process_weights_after_loading()
    with pytest.raises(RuntimeError, match="already called"):
        layer.process_weights_after_loading()


def float64_forward(layer, x):
    """The layer's output in float64 on the same integers (x quantized by the reference op)."""
    c = layer.config
    x_q, x_s, x_zp = ops.torch_scaled_int8_quant(
        x.cpu(),
        None if layer.input_scale is None else layer.input_scale.cpu(),
        None if layer.input_zero_point is None else layer.input_zero_point.cpu(),
        c.input_symmetric,
    )
    zp = 0.0 if x_zp is None else x_zp.double().reshape(-1, 1)
    x_int = x_q.reshape(-1, x.shape[-1]).double() - zp
    ref = (x_int @ layer.weight.cpu().double()) * x_s.double().reshape(-1, 1)
    ref = ref * layer.weight_scale.cpu().double().reshape(1, -1)
    magnitude = ref.abs()
    if layer.bias is not None:
        ref = ref + layer.bias.cpu().double()
        magnitude = magnitude + layer.bias.cpu().double().abs()
    return ref, magnitude


@pytest.mark.parametrize("x_shape", [(5, 48), (2, 3, 48)], ids=["2d", "3d"])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_forward_matches_float64(kernel, config, with_bias, x_shape, device):
    device = kernel_device(kernel, device)
    layer = random_layer(config, kernel, bias=with_bias).to(device)
    layer.process_weights_after_loading()
    x = (torch.randn(x_shape) * 2).to(device)
    y = layer(x)
    assert y.shape == (*x_shape[:-1], layer.out_features) and y.dtype == x.dtype
    assert_within_rounding(y.reshape(-1, layer.out_features), *float64_forward(layer, x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("config", ALL_CONFIGS[::3], ids=config_id)
def test_half_precision_activations(config, dtype, device):
    layer = random_layer(config, TritonInt8ScaledMMLinearKernel).to(device)
    layer.process_weights_after_loading()
    x = torch.randn(7, 48, device=device).to(dtype)
    y = layer(x)
    assert y.dtype == dtype
    assert_within_rounding(y, *float64_forward(layer, x))


def test_static_asymmetric_zero_range_does_not_divide_by_zero():
    scale, azp = static_asymmetric_scale_and_azp(torch.zeros(3), torch.zeros(3, dtype=torch.int8))
    assert scale.item() == 0.0 and azp.item() == 0


def test_an_activation_on_another_device_is_one_error():
    layer = random_layer(ALL_CONFIGS[0], CPUInt8ScaledMMLinearKernel)
    layer.process_weights_after_loading()
    with pytest.raises(ValueError, match="x is on meta but the layer's weight is on cpu"):
        layer(torch.empty(2, 48, device="meta"))
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="x is on cuda:0 but the layer's weight is on cpu"):
            layer(torch.randn(2, 48, device="cuda"))
