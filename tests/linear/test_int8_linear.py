"""Int8Linear as a module: compile without graph breaks, CUDA-graph replay, kernel in repr."""

import pytest
import torch

from tests.linear.layers import ALL_CONFIGS, random_layer
from tests.problems import captured
from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig, TritonInt8ScaledMMLinearKernel


def small_stack(device, kernel=None):
    """Two fused int8 layers with a nonlinearity between: dynamic asym, then static asym."""
    first = random_layer(ALL_CONFIGS[2], kernel, widths=(32, 16), k=48).to(device)
    second = random_layer(ALL_CONFIGS[6], kernel, widths=(48,), k=48).to(device)
    for layer in (first, second):
        layer.process_weights_after_loading()
    return torch.nn.Sequential(first, torch.nn.SiLU(), second)


def test_compile_fullgraph_has_no_graph_break(device):
    model = small_stack(device)
    x = torch.randn(2, 5, 48, device=device)
    eager = model(x)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), eager, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_replay_is_identical():
    model = small_stack("cuda", TritonInt8ScaledMMLinearKernel)
    static_x = torch.randn(4, 48, device="cuda")
    model(static_x)  # compile the kernels before capture
    graph, static_y = captured(model, static_x)
    for _ in range(3):
        fresh = torch.randn(4, 48, device="cuda")
        static_x.copy_(fresh)
        graph.replay()
        torch.testing.assert_close(static_y, model(fresh), rtol=0, atol=0)


def test_parameters_follow_the_compressed_tensors_layout():
    config = Int8ScaledMMLinearLayerConfig(is_static_input_scheme=True, is_channelwise=False, input_symmetric=False)
    layer = Int8Linear(64, [32, 8, 8], config, bias=True)
    assert layer.weight.shape == (48, 64) and layer.weight.dtype == torch.int8
    assert layer.weight_scale.shape == (3,) and layer.input_scale.shape == (3,)
    assert layer.input_zero_point.dtype == torch.int8 and layer.bias.shape == (48,)
    assert type(layer.kernel).__name__ == "CPUInt8ScaledMMLinearKernel"  # a CPU layer
    assert "CPUInt8ScaledMMLinearKernel" in repr(layer)
    if torch.cuda.is_available():
        on_gpu = Int8Linear(64, [32, 8, 8], config, bias=True, device="cuda")
        assert type(on_gpu.kernel).__name__ == "TritonInt8ScaledMMLinearKernel" in repr(on_gpu)


def test_bad_sizes_are_refused():
    config = Int8ScaledMMLinearLayerConfig(False, True, True)
    with pytest.raises(ValueError, match="in_features and out_features"):
        Int8Linear(0, 8, config)


def test_a_cpu_layer_gets_the_cpu_kernel_on_any_platform():
    from vllm_int8.linear import CPUInt8ScaledMMLinearKernel
    from vllm_int8.platform import CUDA, Platform, use_platform

    with use_platform(Platform(CUDA, "sm_90", "H100", 90)):
        layer = Int8Linear(16, 8, Int8ScaledMMLinearLayerConfig(False, True, False), device="cpu")
    assert isinstance(layer.kernel, CPUInt8ScaledMMLinearKernel)
