"""The vLLM plugin: `register()` puts our INT8 W8A8 kernels into vLLM's own kernel selection.

vLLM runs it from the `vllm.general_plugins` entry point in every process (front end, engine
core, each worker) before the model is built. It checks that this vLLM is a tested version and
has the internals it edits (`compat`), then places our kernel classes (`kernels`, derived from
vLLM's `Int8ScaledMMLinearKernel`) in vLLM's per-platform lists (`placement`) and says so in one
log line. On any mismatch it logs one line and changes nothing. vLLM's own switches apply:
`VLLM_PLUGINS` (leave `vllm_int8` out to skip the plugin), `VLLM_DISABLED_KERNELS` (by class name)
and `--linear-backend` (ours counts as `triton`).
"""

from __future__ import annotations

import logging

from vllm_int8.platform import env_flag
from vllm_int8.vllm_plugin.compat import ALLOW_UNTESTED_ENV, check_vllm

logger = logging.getLogger("vllm.vllm_int8")  # under vLLM's logger, so vLLM's handlers print it

_registered: list[str] = []  # what the last register() placed, for `vllm-int8 info`
_announcement: list[str] = []  # its log line, until logged


def register() -> list[str]:
    """Place our kernels in vLLM's INT8 lists; returns what was placed ([] when nothing was).
    Never raises: vLLM calls it while starting, and a plugin's error would stop the server."""
    from vllm_int8 import __version__

    try:
        return _register(__version__)
    except Exception as error:  # noqa: BLE001 - vLLM keeps its own kernels, whatever went wrong
        logger.warning("vllm-int8 %s: not registered: %s: %s", __version__, type(error).__name__, error)
        _registered[:] = []
        return []


def _register(package_version: str) -> list[str]:
    api, reason = check_vllm(allow_untested=env_flag(ALLOW_UNTESTED_ENV, False))
    if api is None:
        logger.warning("vllm-int8 %s: not registered: %s", package_version, reason)
        _registered[:] = []
        return []
    from vllm_int8.vllm_plugin.kernels import VllmInt8CPUKernel, VllmInt8TritonKernel
    from vllm_int8.vllm_plugin.placement import insert, placements

    lists = api.kernels._POSSIBLE_INT8_KERNELS
    ours = {VllmInt8TritonKernel.__name__, VllmInt8CPUKernel.__name__}
    for kernels in lists.values():  # a second register() places anew, as the environment now says
        kernels[:] = [k for k in kernels if k.__name__ not in ours]
    placed = []
    for placement in placements(VllmInt8TritonKernel, VllmInt8CPUKernel):
        platform = getattr(api.platform_enum, placement.platform, None)
        if platform is None:
            continue
        insert(lists.setdefault(platform, []), placement)
        placed.append(placement.describe())
    api.kernels._LINEAR_BACKEND_KERNEL_MAP.setdefault("triton", set()).add(VllmInt8TritonKernel)
    _registered[:] = placed
    where = "; ".join(placed)
    _announcement[:] = [f"vllm-int8 {package_version}: registered for INT8 W8A8 (vLLM {api.version}): {where}"]
    if logger.hasHandlers():
        announce()
    return placed


def announce() -> None:
    """Log what register() placed, once per process. vLLM loads plugins before it configures its
    logging (EngineArgs), so a line logged then is lost: our kernels call this when vLLM first
    builds one."""
    if _announcement and logger.hasHandlers():
        logger.info(_announcement.pop())


def registered() -> list[str]:
    """What `register()` placed in this process (empty before it ran or when it placed nothing)."""
    return list(_registered)
