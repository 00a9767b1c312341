"""Where our kernels go in vLLM's per-platform INT8 priority lists (first that fits wins there).

- ROCm: after AITER, before vLLM's Triton kernel: an AITER-off ROCm server (the case this
  project exists for) gets ours, AITER-on keeps AITER.
- CUDA: after CUTLASS, vLLM's first choice there; `VLLM_INT8_FIRST=1` puts ours first.
- CPU: only with `VLLM_INT8_FIRST=1`, first (vLLM's oneDNN kernel is faster on CPU; ours
  follows the checkpoint's static scales, which vLLM's AMX path replaces by per-token ones).

`vllm.register_linear_kernel` only appends, so the lists are edited in place here. Placing is
idempotent: a kernel of the same name already in a list is taken out before it is put back.
"""

from __future__ import annotations

from dataclasses import dataclass

from vllm_int8.platform import env_flag

FIRST_ENV = "VLLM_INT8_FIRST"


@dataclass(frozen=True)
class Placement:
    platform: str  # vLLM's PlatformEnum member name: "CUDA", "ROCM", "CPU"
    kernel: type
    after: tuple[str, ...] = ()  # class names ours goes after (the last one present)
    before: tuple[str, ...] = ()  # class names ours goes before (the first one present)

    def describe(self) -> str:
        where = [f"after {n}" for n in self.after[:1]] + [f"before {n}" for n in self.before[:1]]
        return f"{self.kernel.__name__} on {self.platform}" + (f" ({', '.join(where)})" if where else " (first)")


def placements(triton_kernel: type, cpu_kernel: type, first: bool | None = None) -> list[Placement]:
    """The placements for this process (`first`: default from VLLM_INT8_FIRST)."""
    first = env_flag(FIRST_ENV, False) if first is None else first
    vllm_triton = ("TritonInt8ScaledMMLinearKernel",)
    rocm = Placement("ROCM", triton_kernel, after=("AiterInt8ScaledMMLinearKernel",), before=vllm_triton)
    cuda = Placement("CUDA", triton_kernel) if first else Placement(
        "CUDA", triton_kernel, after=("CutlassInt8ScaledMMLinearKernel",), before=vllm_triton
    )  # fmt: skip
    return [rocm, cuda] + ([Placement("CPU", cpu_kernel)] if first else [])


def insert(kernels: list[type], placement: Placement) -> int:
    """Put `placement.kernel` into `kernels` in place; returns its index."""
    name = placement.kernel.__name__
    kernels[:] = [k for k in kernels if k.__name__ != name]
    names = [k.__name__ for k in kernels]
    after = max((i + 1 for i, n in enumerate(names) if n in placement.after), default=None)
    before = min((i for i, n in enumerate(names) if n in placement.before), default=None)
    if after is not None:
        index = after if before is None else min(after, before)
    elif before is not None:
        index = before
    else:  # "first" when nothing is named; last (least in the way) when the named kernels are gone
        index = len(names) if placement.after or placement.before else 0
    kernels.insert(index, placement.kernel)
    return index
