"""Launch configs for AMD Instinct GPUs (gfx942: MI300X/MI325X, gfx950: MI350/MI355). COMPILED, NOT TIMED.

No AMD GPU was available to this project: these tiles were chosen from public facts and checked
by the ROCm compile gate (`vllm-int8 rocm-check`: no spills, no scratch, LDS within the arch's
limit, int8 MFMA in every GEMM), never timed. Facts used:
- CDNA3/4 run wave64 with 512 VGPRs (arch + accumulation registers) per SIMD lane; LDS is 64 KiB
  per CU on gfx942 and 160 KiB on gfx950; MI300X has 304 CUs, MI355X 256.
- Triton's AMD stream pipeliner wants num_stages=2 (one LDS buffer, the next K-step prefetched
  into registers), not the 3-5 stages of NVIDIA's cp.async pipelines.
- aiter's Triton A8W8 fallback configs for MI300X: 256x256x64 with 8 warps, 2 stages,
  waves_per_eu=2, matrix_instr_nonkdim=16 for M+N >= 4096; 128x128x32 below; decode configs
  16 x 64 x 512 with 4 warps, split-K.
"""

from __future__ import annotations

from dataclasses import replace

from vllm_int8.ops.tile_config import MMConfig, heuristic_split_k

LDS_BYTES = {"gfx942": 64 * 1024, "gfx950": 160 * 1024}
COMPUTE_UNITS = {"gfx942": 304, "gfx950": 256}
VGPRS_PER_LANE = 512  # arch VGPRs + AGPRs on CDNA3/4


def rocm_heuristic_config(m: int, n: int, k: int, arch: str = "gfx942", compute_units: int | None = None) -> MMConfig:
    """The tile config for an M x N x K int8 GEMM on a CDNA3/4 GPU."""
    amd = {"matrix_instr_nonkdim": 16, "num_stages": 2}
    if m <= 16:
        cfg = MMConfig(16, 64, 256, group_m=1, num_warps=4, waves_per_eu=2, **amd)
    elif m <= 64:
        cfg = MMConfig(64, 64, 128, group_m=1, num_warps=4, waves_per_eu=2, **amd)
    elif m <= 512:
        return MMConfig(128, 128, 64, group_m=4, num_warps=8, waves_per_eu=2, **amd)
    elif arch == "gfx950":  # 256x256x64 spills 8-40 VGPRs on gfx950 (wider MFMA, more AGPRs); this does not
        return MMConfig(256, 128, 128, group_m=4, num_warps=8, waves_per_eu=2, **amd)
    else:
        return MMConfig(256, 256, 64, group_m=4, num_warps=8, waves_per_eu=2, **amd)
    cus = compute_units or COMPUTE_UNITS.get(arch, 304)
    return replace(cfg, split_k=heuristic_split_k(m, n, k, cfg, target_programs=2 * cus))


def rocm_configs_to_check(arch: str) -> list[tuple[str, MMConfig]]:
    """Every config the heuristic can return on `arch` (the compile gate builds each), named by M range."""
    seen: dict[MMConfig, str] = {}
    for m, label in ((1, "M<=16"), (64, "M<=64"), (512, "M<=512"), (4096, "M>512")):
        for split_k in (1, 2, 4, 8):
            cfg = replace(rocm_heuristic_config(m, 4096, 4096, arch), split_k=split_k)
            if m > 64 and split_k > 1:
                continue  # prefill configs never split K
            seen.setdefault(cfg, label if split_k == 1 else f"{label} split_k={split_k}")
    return [(label, cfg) for cfg, label in seen.items()]
