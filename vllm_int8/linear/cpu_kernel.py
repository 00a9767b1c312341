"""The CPU kernel: the pure-torch reference ops (an exact int8 GEMM in chunked float arithmetic)."""

from __future__ import annotations

from vllm_int8.linear.kernel import Int8ScaledMMLinearKernel
from vllm_int8.platform import Platform, current_platform


class CPUInt8ScaledMMLinearKernel(Int8ScaledMMLinearKernel):
    ops_backend = "torch"

    @classmethod
    def is_supported(
        cls, compute_capability: int | None = None, platform: Platform | None = None
    ) -> tuple[bool, str | None]:
        platform = platform or current_platform()
        if platform.is_cpu:
            return True, None
        return False, f"the CPU kernel runs on CPU platforms only, this platform is {platform.kind}"
