"""Search the scaled-MM kernel's tiles per (device, N, K, M bucket) and write the JSON vllm_int8 ships.

For each shape and M bucket, every candidate config and the one shipped now are timed (asym
epilogue, bf16 out, CUDA-graph replays over rotated inputs: gpu_timing.py, where split-K runs
inside the graph like every decode launch) and the fastest is kept. The result is written to
`vllm_int8/ops/tuned/<device>.json`, which `vllm_int8.ops.mm_configs.select_config` loads at run
time; shapes or devices without an entry fall back to the heuristic.

Decode buckets (M <= 16) are judged in the chain, not here: a decode GEMM runs between a quant
kernel and the next layer's launches, and tiles that won timed alone lost 4-9% chained on the
H200 (2026-12-02, `benchmark_chained_decode`); check there before shipping them.

    python -m benchmarks.tune_int8_scaled_mm [--models Llama-3-8B,SmolLM2-135M] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
from pathlib import Path

import torch
import triton

from benchmarks.benchmark_int8_scaled_mm import SHAPES, int8_problem
from benchmarks.gpu_timing import graph_time_ms, input_sets
from vllm_int8.ops import torch_scaled_mm
from vllm_int8.ops.mm_configs import M_BUCKETS, TUNED_DIR, MMConfig, device_key, untuned_config
from vllm_int8.ops.scaled_mm_kernel import fit_block_k, launch_scaled_mm, record_launches
from vllm_int8.ops.tma_mm_kernel import tma_available

SHARED_MEMORY_BYTES = 220 * 1024  # H100/H200 per-block limit is 227 KB
# (block_n, block_k, warps, stages, split_k) of the swapped decode tiles (block_m 16)
SWAPPED_DECODE = [(64, 256, 4, 5, 1), (64, 256, 4, 6, 2), (128, 256, 4, 4, 1), (256, 128, 8, 4, 1),
                  (64, 512, 4, 4, 1), (64, 128, 4, 8, 4), (128, 256, 4, 4, 4), (64, 512, 4, 4, 2)]  # fmt: skip


def exact(cfg: MMConfig, m: int, n: int, k: int) -> str:
    """ "exact" when the config's result equals the torch reference bit for bit (float32 out);
    else why not ("fell back": a TMA config that ran on the pointer kernel)."""
    p = int8_problem(m, n, k)
    args = (p["a"], p["w"], p["scale_a"], p["scale_b"], torch.float32, p["bias"], p["azp_adj"], p["azp"])
    try:
        with record_launches() as log:
            out = launch_scaled_mm(*args, cfg)
        ref = torch_scaled_mm(*args)
    except Exception as e:  # noqa: BLE001 - a config that fails to compile is a result
        return f"error: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
    if not torch.equal(out, ref):
        return f"WRONG max {(out - ref).abs().max().item():.3g}"
    return "fell back" if cfg.tma and not log[-1][3].tma else "exact"


def tma_here() -> bool:
    """Whether this machine's GPU runs the TMA kernel (its configs are candidates only there)."""
    return torch.cuda.is_available() and tma_available(torch.device("cuda"))


def new_candidates(m: int) -> list[MMConfig]:
    """Only what GEMM v2 added (TMA tiles, split-K below one wave, swapped decode tiles), for a
    re-tune against the shipped table."""
    return [c for c in candidates(m) if c.tma or c.swap_ab or (m > 64 and c.split_k > 1)]


def candidates(m: int) -> list[MMConfig]:
    """Tile shapes worth trying for an M bucket (thin tiles for decode, wide ones for prefill)."""
    if m <= 16:
        space = ([16], [32, 64, 128], [128, 256, 512], [4], [3, 4, 5])
    elif m <= 32:
        space = ([32], [32, 64, 128], [128, 256], [4], [3, 4, 5])
    elif m <= 64:
        space = ([32, 64], [64, 128], [128, 256], [4], [3, 4])
    elif m <= 512:  # 64-wide tiles and deep pipelines: more programs per SM where latency bounds (H200, M 128-256)
        space = ([64, 128], [64, 128, 256], [64, 128, 256], [4, 8], [3, 4, 5, 6])
    else:
        space = ([128, 256], [128, 256], [64, 128], [8], [3, 4, 5])
    configs = []
    for bm, bn, bk, warps, stages in itertools.product(*space):
        if bm * bn > 128 * 256 or stages * (bm * bk + bk * bn) > SHARED_MEMORY_BYTES:
            continue
        configs.append(MMConfig(bm, bn, bk, group_m=1 if m <= 64 else 8, num_warps=warps, num_stages=stages))
    if m <= 64:  # decode: split K so that enough programs stream the weight
        for bn, bk, split in itertools.product([32, 64, 128], [128, 256], [2, 4, 8]):
            configs.append(MMConfig(min(max(m, 16), 64), bn, bk, group_m=1, num_warps=4, num_stages=4, split_k=split))
    elif m <= 512:  # too few output tiles for one wave: split K, exactly, in the same launch
        for bm, split in itertools.product([64, 128], [2, 4]):
            configs.append(MMConfig(bm, 128, 128, group_m=8, num_warps=8, num_stages=3, split_k=split))
        # Wide tiles re-read less of A and B from L2 per MMA; split K so that they still fill the SMs.
        for bm, stages, split in itertools.product([64, 128], [3, 4], [2, 3, 4]):
            configs.append(MMConfig(bm, 256, 128, group_m=8, num_warps=8, num_stages=stages, split_k=split))
    if m <= 16:  # C^T = B^T A^T: the weight tile as the MMA's M side (the GEMM v2 sweep, at commit d3b4b33)
        for bn, bk, warps, stages, split in SWAPPED_DECODE:
            configs.append(MMConfig(16, bn, bk, 1, warps, stages, split_k=split, swap_ab=1))
    elif m <= 64:  # the same for 32-64 rows: 64- or 128-row weight tiles fill the wgmma's M side
        for bn, bk, stages, split in itertools.product([64, 128], [128, 256], [4], [1, 2]):
            configs.append(MMConfig(32 if m <= 32 else 64, bn, bk, 1, 4, stages, split_k=split, swap_ab=1))
    if tma_here():
        configs += (TMA_CANDIDATES if m >= 256 else []) + (MID_TMA_CANDIDATES if 64 < m <= 512 else [])
    return configs


def small_layer_candidates(m: int) -> list[MMConfig]:
    """Beside `candidates`: smaller and shallower tiles for layers of a few hundred to a few thousand
    features (SmolLM2's 576 x 576), where the wide prefill tiles leave most SMs idle or the last
    column of tiles mostly empty and bf16 cuBLAS was faster (benchmarks/results, 2026-11-26)."""
    if m <= 64:
        return []
    configs = [
        MMConfig(bm, bn, bk, group_m=8, num_warps=warps, num_stages=stages)
        for bm, bn, bk, warps, stages in itertools.product([64, 128], [64, 128], [64, 128], [4, 8], [2, 3, 4])
        if not (bm == 64 and warps == 8)
    ]
    if tma_here():
        configs += [MMConfig(bm, bn, 128, 8, 4, 4, tma=1) for bm, bn in ((64, 64), (128, 64), (64, 128))]
    return configs


# The Hopper TMA kernel's candidates that fit in shared memory (the GEMM v2 sweep, at commit d3b4b33).
TMA_CANDIDATES = [
    MMConfig(128, 256, 128, 8, 8, 3, tma=1, subtile=1),
    MMConfig(128, 256, 128, 16, 8, 3, tma=1, subtile=1),
    MMConfig(256, 128, 128, 8, 8, 3, tma=1, subtile=1),
    MMConfig(128, 128, 128, 8, 4, 4, tma=1),
    MMConfig(128, 128, 128, 8, 8, 4, tma=1, subtile=1),
    MMConfig(64, 128, 128, 8, 4, 5, tma=1),
    MMConfig(64, 256, 128, 8, 4, 4, tma=1, subtile=1),
]


# Small TMA tiles with two or three programs per SM (co-resident, so one program's epilogue and
# pipeline ramp overlap another's MMAs): 1.04-1.05x the pointer kernel's 64x64 tiles at M = 256
# of the qkv linears on the H200 (results/NVIDIA_H200/mid_programs_per_sm.log), one per SM lost.
MID_TMA_CANDIDATES = [
    *(MMConfig(64, 64, 128, 8, 4, stages, tma=1, programs_per_sm=3) for stages in (3, 4)),
    *(MMConfig(64, 64, 128, 8, 4, stages, tma=1, programs_per_sm=2) for stages in (4, 5, 6)),
    MMConfig(64, 128, 128, 8, 4, 3, tma=1, programs_per_sm=2),
]


def _compile_one(task: tuple[dict, int, int]) -> str | None:
    """Compile one (config, M, K) variant on tiny tensors, filling Triton's on-disk cache."""
    config, m, k = MMConfig(**task[0]), task[1], task[2]
    try:
        p = int8_problem(m, 256, k)
        launch_scaled_mm(
            p["a"], p["w"], p["scale_a"], p["scale_b"], torch.bfloat16, p["bias"], p["azp_adj"], p["azp"], config
        )
        torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001 - a config the GPU cannot run is simply not a candidate
        return f"{config}: {type(e).__name__}"
    return None


def precompile(tasks: set[tuple[MMConfig, int, int]], workers: int) -> None:
    """Compile every variant in parallel processes: compilation, not timing, dominates tuning."""
    import multiprocessing

    # Kernels specialize on M == 1 and on K % BLOCK_K == 0, not on the sizes themselves.
    unique = {(c, 1 if m == 1 else 16, k % c.block_k == 0, k) for c, m, k in tasks}
    seen, work = set(), []
    for c, m, even, k in sorted(unique, key=str):
        if (c, m, even) not in seen:
            seen.add((c, m, even))
            work.append((c.to_dict(), m, k))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for failure in pool.imap_unordered(_compile_one, work):
            if failure:
                print(f"  cannot compile {failure}")
    print(f"precompiled {len(work)} kernel variants", flush=True)


def shippable(config: MMConfig, n: int, k: int) -> bool:
    """Whether a config's result equals the torch reference bit for bit (exact:
    fp32 out, asym, fresh random operands), checked before it ships; a TMA config that falls back
    to the pointer kernel counts with what it runs, as it was timed."""
    status = exact(config, 200, n, k)
    if status in ("exact", "fell back"):
        return True
    print(f"  not shipped ({status}): {config}")
    return False


def time_config(sets: list[dict], config: MMConfig) -> float:
    def call(p):
        return launch_scaled_mm(
            p["a"], p["w"], p["scale_a"], p["scale_b"], torch.bfloat16, p["bias"], p["azp_adj"], p["azp"], config
        )

    return graph_time_ms([lambda p=p: call(p) for p in sets], rep_ms=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="Llama-3-8B,Llama-3-70B,SmolLM2-135M")
    parser.add_argument("--out", type=Path, default=TUNED_DIR)
    parser.add_argument("--buckets", default=",".join(map(str, M_BUCKETS)), help="M buckets to (re)tune")
    parser.add_argument("--workers", type=int, default=12, help="parallel compile processes")
    parser.add_argument("--new-only", action="store_true", help="try only GEMM v2's candidates (shipped competes)")
    parser.add_argument("--small-tiles", action="store_true", help="also try small_layer_candidates")
    args = parser.parse_args()

    def pick(m: int) -> list[MMConfig]:
        if args.new_only:
            return new_candidates(m)
        return candidates(m) + (small_layer_candidates(m) if args.small_tiles else [])

    name = torch.cuda.get_device_name()
    path = args.out / f"{device_key(name)}.json"
    table = json.loads(path.read_text()) if path.is_file() else {"device": name, "configs": {}}
    models = args.models.split(",")
    shapes = {key: nk for key, nk in SHAPES.items() if key[0] in models}
    buckets_to_tune = [int(b) for b in args.buckets.split(",")]
    precompile({(c, m, k) for (_, k) in shapes.values() for m in buckets_to_tune for c in pick(m)}, args.workers)
    for (model, layer), (n, k) in shapes.items():
        buckets = table["configs"].setdefault(f"{n},{k}", {})
        for m in buckets_to_tune:
            sets = [int8_problem(m, n, k) for _ in range(input_sets(n * k + m * k))]
            rule = fit_block_k(untuned_config(m, n, k, torch.device("cuda")), k)
            shipped = fit_block_k(MMConfig(**buckets[str(m)]), k) if str(m) in buckets else None
            timed: dict[MMConfig, float] = {}
            # The shipped config and the untuned rule compete in the same run: an entry ships only
            # if it is faster than both.
            for config in dict.fromkeys(fit_block_k(c, k) for c in [*pick(m), rule, *([shipped] if shipped else [])]):
                try:
                    timed[config] = time_config(sets, config)
                except (triton.runtime.errors.OutOfResources, RuntimeError) as e:
                    print(f"  skip {config}: {type(e).__name__}")
            base = timed[rule]  # the untuned rule, timed once among the candidates
            best = next(c for c in sorted(timed, key=timed.get) if c == shipped or shippable(c, n, k))
            best_ms = timed[best]
            buckets[str(m)] = best.to_dict()
            tops = 2 * m * n * k / best_ms / 1e9
            was = f"shipped {timed[shipped] * 1e3:8.1f} us, " if shipped in timed else ""
            print(
                f"{model:<13}{layer:<8}M={m:<5} N={n:<6} K={k:<6} best {best_ms * 1e3:8.1f} us {tops:7.1f} TOPS "
                f"({was}heuristic {base * 1e3:8.1f} us, {base / best_ms:4.2f}x; "
                f"{'kept the shipped config' if best == shipped else 'new'}) {best}",
                flush=True,
            )
            del sets
        table["date"] = datetime.date.today().isoformat()
        table["triton"] = triton.__version__
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=1, sort_keys=True))  # after each shape: partial runs count
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
