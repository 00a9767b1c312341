"""Per-platform kernel choice: the first kernel of the platform's priority list that fits."""

from __future__ import annotations

import logging
import os

from vllm_int8.linear.aiter_kernel import AiterInt8ScaledMMLinearKernel, aiter_linear_status
from vllm_int8.linear.cpu_kernel import CPUInt8ScaledMMLinearKernel
from vllm_int8.linear.kernel import Int8ScaledMMLinearKernel, Int8ScaledMMLinearLayerConfig
from vllm_int8.linear.triton_kernel import TritonInt8ScaledMMLinearKernel
from vllm_int8.platform import CPU, CUDA, ROCM, Platform, current_platform

logger = logging.getLogger(__name__)

# ROCm: AITER when it is switched on and fits, else the Triton fallback (the MI3xx CI path).
_POSSIBLE_INT8_KERNELS: dict[str, list[type[Int8ScaledMMLinearKernel]]] = {
    ROCM: [AiterInt8ScaledMMLinearKernel, TritonInt8ScaledMMLinearKernel],
    CUDA: [TritonInt8ScaledMMLinearKernel],
    CPU: [CPUInt8ScaledMMLinearKernel],
}
_logged: set[tuple[str, Int8ScaledMMLinearLayerConfig]] = set()


def disabled_kernels() -> set[str]:
    """Class names listed in VLLM_DISABLED_KERNELS (comma-separated)."""
    return {name.strip() for name in os.environ.get("VLLM_DISABLED_KERNELS", "").split(",") if name.strip()}


def explain_choice(
    config: Int8ScaledMMLinearLayerConfig,
    compute_capability: int | None = None,
    platform: Platform | None = None,
    shape: tuple[int, int] | None = None,
) -> tuple[type[Int8ScaledMMLinearKernel] | None, list[tuple[str, str]]]:
    """(the chosen kernel or None, [(kernel name, why it was passed over), ...]).

    `platform`: whose priority list to walk (default: this process's). `shape`: the layer's
    (in_features, out_features), for kernels that refuse some shapes.
    """
    platform = platform or current_platform()
    skipped = []
    disabled = disabled_kernels()
    for kernel in _POSSIBLE_INT8_KERNELS[platform.kind]:
        name = kernel.__name__
        if name in disabled:
            skipped.append((name, "disabled by VLLM_DISABLED_KERNELS"))
            continue
        checks = [
            lambda k=kernel: k.is_supported(compute_capability, platform),
            lambda k=kernel: k.can_implement(config),
        ]
        if shape is not None:
            checks.append(lambda k=kernel: k.can_implement_shape(*shape))
        for check in checks:
            ok, reason = check()
            if not ok:
                skipped.append((name, reason or "not usable"))
                break
        else:
            return kernel, skipped
    return None, skipped


def choose_scaled_mm_linear_kernel(
    config: Int8ScaledMMLinearLayerConfig,
    compute_capability: int | None = None,
    platform: Platform | None = None,
    shape: tuple[int, int] | None = None,
) -> type[Int8ScaledMMLinearKernel]:
    """The kernel class for `config` on `platform` (default: this process's); ValueError listing
    every candidate and its reason if none fits."""
    platform = platform or current_platform()
    kernel, skipped = explain_choice(config, compute_capability, platform, shape)
    if kernel is None:
        reasons = "\n".join(f"  {name}: {reason}" for name, reason in skipped) or "  (no kernels for this platform)"
        raise ValueError(f"no INT8 scaled-MM kernel can implement {config} on {platform.kind}. Reasons:\n{reasons}")
    if (kernel.__name__, config) not in _logged:
        _logged.add((kernel.__name__, config))
        logger.info("Using %s for INT8 linear layers with %s", kernel.__name__, config)
    return kernel


def describe_selection() -> str:
    """A report of the platform and the kernel each activation scheme gets (the `info` command)."""
    platform = current_platform()
    aiter_ok, aiter_reason = aiter_linear_status(platform)
    lines = [
        f"platform: {platform.kind}",
        f"device:   {platform.device_name or '-'}",
        f"arch:     {platform.arch or '-'}",
        f"AITER:    {'usable' if aiter_ok else 'not usable: ' + str(aiter_reason)}",
        f"disabled: {', '.join(sorted(disabled_kernels())) or '-'}",
        f"tried:    {' > '.join(k.__name__ for k in _POSSIBLE_INT8_KERNELS[platform.kind]) or '-'} (in this order)",
        "",
        "activation scheme        kernel                            why",
    ]
    for static in (False, True):
        for symmetric in (True, False):
            config = Int8ScaledMMLinearLayerConfig(static, True, symmetric)
            scheme = f"{'static' if static else 'dynamic'} {'sym' if symmetric else 'asym'}"
            kernel, skipped = explain_choice(config)
            why = "no kernel fits" if kernel is None else "the first that fits" if skipped else "the first tried"
            lines.append(f"{scheme:<24} {kernel.__name__ if kernel else 'NONE':<33} {why}")
            lines.extend(f"{'':<26}skipped {name}: {reason}" for name, reason in skipped)
    return "\n".join(lines)
