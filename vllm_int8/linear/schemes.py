"""The four W8A8 activation schemes by name (what `vllm-int8 --scheme` and the configs say)."""

from __future__ import annotations

from vllm_int8.linear.kernel import Int8ScaledMMLinearLayerConfig

ACTIVATION_SCHEMES: dict[str, Int8ScaledMMLinearLayerConfig] = {
    "dynamic-sym": Int8ScaledMMLinearLayerConfig(
        is_static_input_scheme=False, is_channelwise=True, input_symmetric=True
    ),
    "dynamic-asym": Int8ScaledMMLinearLayerConfig(False, True, False),
    "static-sym": Int8ScaledMMLinearLayerConfig(True, True, True),
    "static-asym": Int8ScaledMMLinearLayerConfig(True, True, False),
}
