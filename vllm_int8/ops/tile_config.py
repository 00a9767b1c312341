"""The scaled-MM kernel's tile configuration and the vendor-neutral rule for choosing one: what
every per-vendor rule (`hopper_configs`, `rocm_configs`) and the selection (`mm_configs`) share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class MMConfig:
    block_m: int
    block_n: int
    block_k: int
    group_m: int = 8
    num_warps: int = 4
    num_stages: int = 3
    split_k: int = 1  # K-slices reduced exactly in int32 within the one launch (decode)
    # AMD-only compile options (0: not passed). Triton's AMD backend reads them; CUDA has no such knobs.
    waves_per_eu: int = 0
    matrix_instr_nonkdim: int = 0
    kpack: int = 0
    # Hopper prefill path (tma_mm_kernel): persistent TMA kernel, halved epilogue store, and
    # Triton's automatic warp specialization, which Triton 3.6 and 3.9 do not apply on sm_90 (the
    # kernel compiles to the same PTX with it on or off; no shipped tile sets it).
    tma: int = 0
    subtile: int = 0
    warp_specialize: int = 0
    # TMA kernel: persistent programs per SM (0 or 1: one). Two or more co-resident programs let
    # one program's epilogue and pipeline ramp overlap another's MMAs where small mid-batch tiles
    # leave a single program latency-bound; enough of them give every tile its own program.
    programs_per_sm: int = 0
    # Decode on the pointer kernel: compute C^T = B^T A^T, the weight tile as the MMA's M operand
    # (Hopper's wgmma needs M >= 64; a 16-row activation tile would leave it on the older mma path).
    swap_ab: int = 0

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if v or k not in _OPTIONAL_FIELDS}

    def compile_options(self) -> dict[str, int]:
        """The launch keywords besides constexprs: warps, stages and the AMD knobs that are set."""
        # No FMA contraction: `(acc * scale_a) * scale_b + bias` rounds like the reference, step by step.
        options = {"num_warps": self.num_warps, "num_stages": self.num_stages, "enable_fp_fusion": False}
        options.update({name: getattr(self, name) for name in _AMD_OPTIONS if getattr(self, name)})
        return options


_AMD_OPTIONS = ("waves_per_eu", "matrix_instr_nonkdim", "kpack")
# written only when set
_OPTIONAL_FIELDS = (*_AMD_OPTIONS, "tma", "subtile", "warp_specialize", "programs_per_sm", "swap_ab")


def heuristic_config(m: int, n: int, k: int) -> MMConfig:
    """Tiles by M: thin tiles that stream the weight for decode, square ones for prefill."""
    if m <= 16:
        cfg = MMConfig(16, 32 if n <= 8192 else 64, 256, group_m=1, num_warps=4, num_stages=5)
    elif m <= 32:
        cfg = MMConfig(32, 32, 256, group_m=1, num_warps=4, num_stages=5)
    elif m <= 64:
        cfg = MMConfig(64, 64, 256, group_m=1, num_warps=4, num_stages=4)
    elif m <= 512:
        return MMConfig(64, 128, 128, group_m=8, num_warps=8, num_stages=4)
    else:
        return MMConfig(256, 128, 128, group_m=8, num_warps=8, num_stages=3)
    return replace(cfg, split_k=heuristic_split_k(m, n, k, cfg))


def heuristic_split_k(m: int, n: int, k: int, cfg: MMConfig, target_programs: int = 264) -> int:
    """Split K (by powers of two, up to 8) until about two programs per SM of a 132-SM GPU stream
    the weight, keeping at least 4 K-steps per slice."""
    tiles = -(-m // cfg.block_m) * -(-n // cfg.block_n)
    steps = -(-k // cfg.block_k)
    split = 1
    while split < 8 and tiles * split * 2 <= target_programs and steps // (split * 2) >= 4:
        split *= 2
    return split
