"""What `vllm-int8 info` says about vLLM: is the plugin installed, would it register here, and
which kernel vLLM's own selection picks for each activation scheme on this machine."""

from __future__ import annotations

import importlib.util


def _entry_point_installed() -> bool:
    from importlib.metadata import entry_points

    return any(e.name == "vllm_int8" for e in entry_points(group="vllm.general_plugins"))


def describe_vllm() -> str:
    from vllm_int8.vllm_plugin.compat import vllm_version

    version = vllm_version()
    lines = [f"vLLM:     {version or 'not installed'}"]
    lines.append(f"plugin:   entry point vllm_int8 {'installed' if _entry_point_installed() else 'NOT installed'}")
    if version is None or importlib.util.find_spec("vllm") is None:
        return "\n".join(lines)
    import vllm_int8.vllm_plugin as plugin

    placed = plugin.register()  # in this process only, as vLLM would at start-up
    lines.append("placed:   " + ("; ".join(placed) if placed else "nothing (see the warning above)"))
    if not placed:
        return "\n".join(lines)
    from vllm.model_executor.kernels import linear

    lines += ["", "vLLM's choice here        kernel"]
    for static in (False, True):
        for symmetric in (True, False):
            config = linear.Int8ScaledMMLinearLayerConfig(
                is_static_input_scheme=static, is_channelwise=True, input_symmetric=symmetric
            )
            scheme = f"{'static' if static else 'dynamic'} {'sym' if symmetric else 'asym'}"
            try:
                kernel = linear.choose_scaled_mm_linear_kernel(config, linear._POSSIBLE_INT8_KERNELS,
                                                               quantization="int8_w8a8").__name__  # fmt: skip
            except ValueError as e:
                kernel = f"NONE ({str(e).splitlines()[0]})"
            lines.append(f"{scheme:<25} {kernel}")
    return "\n".join(lines)
