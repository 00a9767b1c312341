"""Benchmark the INT8 W8A8 ops on a GPU against peers measured in the same run (kernel time).

GEMM (sym and asym epilogues) over M x real model shapes, against bf16 `torch.matmul` and
`torch._int_mm` + a torch epilogue; `scaled_int8_quant` against the measured copy bandwidth;
the full `apply_weights` (quant + GEMM). GPU time: medians of `triton.testing.do_bench` over
CUDA-graph replays with inputs rotated past L2 (see gpu_timing.py); host overhead per eager call
is reported apart. Prints tables, writes `benchmarks/results/<device>.json` and a PNG plot.

    python -m benchmarks.benchmark_int8_scaled_mm [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
from pathlib import Path

import torch
import triton

from benchmarks.gpu_timing import graph_time_ms, host_us_per_call, input_sets, paired_graph_times_ms
from benchmarks.results_summary import device_dir, merge_summary
from vllm_int8 import ops
from vllm_int8.linear import Int8ScaledMMLinearLayerConfig, TritonInt8ScaledMMLinearKernel
from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm

M_VALUES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
# (model, layer): (N, K) of the weight, as y[M, N] = x[M, K] W^T
SHAPES = {
    ("Llama-3-8B", "qkv"): (6144, 4096),
    ("Llama-3-8B", "o"): (4096, 4096),
    ("Llama-3-8B", "gate_up"): (28672, 4096),
    ("Llama-3-8B", "down"): (4096, 14336),
    ("Llama-3-70B", "qkv"): (10240, 8192),
    ("Llama-3-70B", "o"): (8192, 8192),
    ("Llama-3-70B", "gate_up"): (57344, 8192),
    ("Llama-3-70B", "down"): (8192, 28672),
    ("SmolLM2-135M", "qkv"): (960, 576),
    ("SmolLM2-135M", "o"): (576, 576),
    ("SmolLM2-135M", "gate_up"): (3072, 576),
    ("SmolLM2-135M", "down"): (576, 1536),
    # Tuned only where the H200 table has their buckets (the "untuned" figures count the rest).
    ("Qwen2.5-7B", "qkv"): (4608, 3584),
    ("Qwen2.5-7B", "o"): (3584, 3584),
    ("Qwen2.5-7B", "gate_up"): (37888, 3584),
    ("Qwen2.5-7B", "down"): (3584, 18944),
    # The per-GPU shards of a tensor-parallel Llama-3-70B: N / tp for qkv and gate_up, K / tp for o and down.
    **{
        (f"Llama-3-70B-TP{tp}", layer): shard
        for tp in (2, 4, 8)
        for layer, shard in (
            ("qkv", (10240 // tp, 8192)),
            ("o", (8192, 8192 // tp)),
            ("gate_up", (57344 // tp, 8192)),
            ("down", (8192, 28672 // tp)),
        )
    },
}


def copy_bandwidth_gbs() -> float:
    """Device-to-device copy of 1 GiB, bytes read plus written per second."""
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = graph_time_ms([lambda: dst.copy_(src)])
    return 2 * src.numel() / ms / 1e6


def int8_problem(m: int, n: int, k: int) -> dict:
    """Random operands as the linear layer holds them (weight: [K, N] view of an [N, K] tensor)."""
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda").t()
    return {
        "a": torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda"),
        "w": w,
        "scale_a": torch.rand(m, 1, device="cuda") * 1e-2,
        "scale_b": torch.rand(n, 1, device="cuda") * 1e-2,
        "bias": torch.randn(n, device="cuda", dtype=torch.bfloat16),
        "azp": torch.randint(-128, 128, (m,), dtype=torch.int32, device="cuda"),
        "azp_adj": w.sum(0, dtype=torch.int32),
    }


def gemm_row(m: int, n: int, k: int) -> dict:
    """GPU times of ours (sym, asym) and the peers for one problem, on random data."""
    out = torch.bfloat16
    sets = [int8_problem(m, n, k) for _ in range(input_sets(n * k + m * k))]
    row = {"M": m, "N": n, "K": k}
    sym = [lambda p=p: ops.triton_scaled_mm(p["a"], p["w"], p["scale_a"], p["scale_b"], out, p["bias"]) for p in sets]
    asym = [
        lambda p=p: ops.triton_scaled_mm(
            p["a"], p["w"], p["scale_a"], p["scale_b"], out, p["bias"], p["azp_adj"], p["azp"]
        )
        for p in sets
    ]
    row["sym_ms"], row["asym_ms"] = paired_graph_times_ms(sym, asym)  # alternated: their ratio is the epilogue's
    # torch._int_mm needs M > 16 on CUDA: smaller M is padded to 32 rows (what a user would do).
    rows_int_mm = max(m, 32)

    def int_mm_epilogue(p, a):
        acc = torch._int_mm(a, p["w"])
        return (acc.float() * p["scale_a"][:1] * p["scale_b"].reshape(1, -1) + p["bias"]).to(out)

    padded = [torch.randint(-128, 128, (rows_int_mm, k), dtype=torch.int8, device="cuda") for _ in sets]
    row["int_mm_ms"] = graph_time_ms([lambda p=p, a=a: int_mm_epilogue(p, a) for p, a in zip(sets, padded)])
    del sets, padded
    bf16_sets = [
        (torch.randn(m, k, device="cuda", dtype=out), torch.randn(n, k, device="cuda", dtype=out).t())
        for _ in range(input_sets(2 * (n * k + m * k)))
    ]
    row["bf16_ms"] = graph_time_ms([lambda x=x, w=w: torch.matmul(x, w) for x, w in bf16_sets])
    del bf16_sets
    row["fp8_ms"] = fp8_rowwise_ms(m, n, k)
    return row


def fp8_rowwise_ms(m: int, n: int, k: int) -> float | None:
    """cuBLAS FP8 (e4m3) with a scale per row of A and per column of B, bias, bf16 out
    (`torch._scaled_mm`): the vendor's fastest 8-bit GEMM here, as a peer (not exact integer math).
    M is padded to a multiple of 16 rows, which cuBLAS's row-wise scaling wants; None where this
    GPU or torch has no FP8 GEMM."""
    if not hasattr(torch, "float8_e4m3fn") or torch.cuda.get_device_capability() < (8, 9):
        return None
    rows = -(-m // 16) * 16
    fp8 = torch.float8_e4m3fn
    sets = [
        (torch.randn(rows, k, device="cuda").to(fp8), torch.randn(n, k, device="cuda").to(fp8).t(),
         torch.rand(rows, 1, device="cuda"), torch.rand(1, n, device="cuda"),
         torch.randn(n, device="cuda", dtype=torch.bfloat16))
        for _ in range(input_sets(n * k + rows * k))
    ]  # fmt: skip

    def call(a, b, sa, sb, bias):
        return torch._scaled_mm(a, b, scale_a=sa, scale_b=sb, bias=bias, out_dtype=torch.bfloat16)

    try:
        return graph_time_ms([lambda p=p: call(*p) for p in sets])
    except RuntimeError as e:  # this torch/cuBLAS refuses the layout or scaling
        print(f"  fp8 peer unavailable at M={m} N={n} K={k}: {str(e).splitlines()[0][:100]}")
        return None


def derive(row: dict) -> dict:
    m, n, k = row["M"], row["N"], row["K"]
    for name in ("sym", "asym", "bf16", "int_mm"):
        row[f"{name}_tops"] = 2 * m * n * k / row[f"{name}_ms"] / 1e9
    row["asym_weight_gbs"] = n * k / row["asym_ms"] / 1e6  # int8 weight bytes streamed per second
    row["asym_vs_bf16"] = row["bf16_ms"] / row["asym_ms"]
    row["asym_vs_int_mm"] = row["int_mm_ms"] / row["asym_ms"]
    row["asym_over_sym"] = row["asym_ms"] / row["sym_ms"]
    if row.get("fp8_ms"):
        row["fp8_tops"] = 2 * m * n * k / row["fp8_ms"] / 1e9
        row["asym_vs_fp8"] = row["fp8_ms"] / row["asym_ms"]
    return row


def quant_rows(copy_gbs: float, k: int = 4096) -> list[dict]:
    rows = []
    for m in (1, 16, 256, 4096, 16384):
        xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(input_sets(m * k * 3))]
        for symmetric in (True, False):
            ms = graph_time_ms([lambda x=x, s=symmetric: ops.triton_scaled_int8_quant(x, symmetric=s) for x in xs])
            moved = m * k * 3 + m * 8  # bf16 read, int8 write, scale (+azp) write
            gbs = moved / ms / 1e6
            rows.append({"M": m, "K": k, "symmetric": symmetric, "ms": ms, "gbs": gbs, "of_copy": gbs / copy_gbs})
    return rows


def int8_layer(n: int, k: int, symmetric: bool):
    """A processed dynamic-activation layer on the Triton kernel, random weights."""
    kernel = TritonInt8ScaledMMLinearKernel(Int8ScaledMMLinearLayerConfig(False, True, symmetric))
    layer = torch.nn.Module()
    layer.weight = torch.nn.Parameter(torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda"), False)
    layer.weight_scale = torch.nn.Parameter(torch.rand(n, 1, device="cuda") * 1e-2, False)
    layer.input_scale = layer.input_zero_point = layer.azp_adj = None
    kernel.process_weights_after_loading(layer)
    return kernel, layer


def apply_rows(quick: bool) -> list[dict]:
    """The whole layer (quant + GEMM) on Llama-3-8B shapes, against bf16 F.linear."""
    rows = []
    for (model, layer_name), (n, k) in SHAPES.items():
        if model != "Llama-3-8B":
            continue
        for symmetric in (True, False):
            layers = [int8_layer(n, k, symmetric) for _ in range(input_sets(n * k))]
            weights16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(input_sets(2 * n * k))]
            for m in (1, 16, 256, 4096) if not quick else (1, 4096):
                x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
                ms = graph_time_ms([lambda kl=kl, x=x: kl[0].apply_weights(kl[1], x) for kl in layers])
                bf16 = graph_time_ms([lambda w=w, x=x: torch.nn.functional.linear(x, w) for w in weights16])
                scheme = "sym" if symmetric else "asym"
                rows.append({"layer": layer_name, "N": n, "K": k, "M": m, "scheme": scheme, "ms": ms, "bf16_ms": bf16})
            del layers, weights16
    return rows


def host_overhead_us() -> dict:
    """Eager wall time per call on a tiny problem, where only the host cost remains."""
    p = int8_problem(1, 256, 256)
    kernel, layer = int8_layer(256, 256, False)
    x = torch.randn(1, 256, device="cuda", dtype=torch.bfloat16)
    w16 = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
    args = (p["a"], p["w"], p["scale_a"], p["scale_b"], torch.bfloat16, p["bias"], p["azp_adj"], p["azp"])
    return {
        "ops.triton_scaled_mm": host_us_per_call(lambda: ops.triton_scaled_mm(*args)),
        "launch_scaled_mm (no checks, no custom op)": host_us_per_call(lambda: launch_scaled_mm(*args)),
        "apply_weights (quant + GEMM)": host_us_per_call(lambda: kernel.apply_weights(layer, x)),
        "torch.nn.functional.linear bf16": host_us_per_call(lambda: torch.nn.functional.linear(x, w16)),
    }


def geomean(values) -> float | None:
    """None for no values (a run with `--m` may have no rows of a kind)."""
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


PREFILL_M, DECODE_M, MID_M = (1024, 4096, 8192), (1, 16), (64, 256, 512)


def gemm_headlines(rows: list[dict], device: str | None = None) -> dict:
    """The GEMM figures summary.json carries: asym, geomeans over shapes and M. "untuned" figures
    are Qwen2.5-7B's at the M buckets `device`'s table has no entry for (None where it has all)."""
    from vllm_int8.ops.mm_configs import load_tuned, pick_bucket

    table = load_tuned(device) if device else {}
    tuned = [r for r in rows if r["model"] == "Llama-3-8B"]
    mid_rows = [r for r in rows if r["model"] in ("Llama-3-8B", "Qwen2.5-7B")]

    def is_untuned(r) -> bool:
        buckets = table.get((r["N"], r["K"]))
        return not buckets or pick_bucket(buckets, r["M"]) is None

    untuned = [r for r in rows if r["model"] == "Qwen2.5-7B" and is_untuned(r)]

    def prefill(rs, key="asym_tops"):
        values = [r[key] for r in rs if r["M"] in PREFILL_M]
        return geomean(values) if values else None

    def decode(rs, bytes_per_weight=1, ms_key="asym_ms"):
        values = [r["N"] * r["K"] * bytes_per_weight / r[ms_key] / 1e6 for r in rs if r["M"] in DECODE_M]
        return geomean(values) if values else None

    mid = [r["asym_vs_bf16"] for r in mid_rows if r["M"] in MID_M]
    fp8 = [r for r in tuned if r["M"] in PREFILL_M and r.get("fp8_tops")]
    figures = {"mid_m_speedup_min": min(mid), "mid_m_speedup_geomean": geomean(mid)} if mid else {}
    if fp8:
        figures["fp8_prefill_tflops_geomean"] = geomean(r["fp8_tops"] for r in fp8)
    return figures | {
        "prefill_tops_geomean": prefill(tuned),
        "decode_gbps_geomean": decode(tuned),
        "untuned_prefill_tops_geomean": prefill(untuned),
        "untuned_decode_gbps_geomean": decode(untuned),
        "bf16_prefill_tflops_geomean": prefill(tuned, "bf16_tops"),
        "bf16_decode_gbps_geomean": decode(tuned, 2, "bf16_ms"),
        "max_asym_over_sym": max((r["asym_over_sym"] for r in mid_rows), default=None),
    }


def summarize(rows: list[dict], quant: list[dict]) -> dict:
    llama8 = [r for r in rows if (r["N"], r["K"]) in [v for (m, _), v in SHAPES.items() if m == "Llama-3-8B"]]
    return {
        "prefill_geomean_tops_asym_8B_M>=1024": geomean(r["asym_tops"] for r in llama8 if r["M"] >= 1024),
        "decode_geomean_weight_gbs_asym_8B_M1_16": geomean(r["asym_weight_gbs"] for r in llama8 if r["M"] in (1, 16)),
        "min_asym_vs_bf16": min(r["asym_vs_bf16"] for r in rows),
        "min_asym_vs_bf16_M>=256": min((r["asym_vs_bf16"] for r in rows if r["M"] >= 256), default=None),
        "min_asym_vs_int_mm": min(r["asym_vs_int_mm"] for r in rows),
        "max_asym_over_sym": max(r["asym_over_sym"] for r in rows),
        "quant_asym_of_copy_M>=4096": min(
            (q["of_copy"] for q in quant if not q["symmetric"] and q["M"] >= 4096), default=None
        ),
    }


def plot(rows: list[dict], path: Path, peak_tops: float, bandwidth_gbs: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = sorted({(r["N"], r["K"]) for r in rows})
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(shapes) / cols), cols, figsize=(20, 4.2 * math.ceil(len(shapes) / cols)))
    for ax, (n, k) in zip(axes.flat, shapes):
        sub = sorted((r for r in rows if (r["N"], r["K"]) == (n, k)), key=lambda r: r["M"])
        ms = [r["M"] for r in sub]
        for key, label in (("asym_tops", "ours asym"), ("sym_tops", "ours sym"), ("int_mm_tops", "_int_mm+epi")):
            ax.plot(ms, [r[key] for r in sub], marker="o", label=label)
        ax.plot(ms, [r["bf16_tops"] for r in sub], marker="x", linestyle="--", label="bf16 matmul")
        roof = [
            min(peak_tops, 2 * m * n * k / ((n * k + m * k + 2 * m * n) / (bandwidth_gbs * 1e9)) / 1e12) for m in ms
        ]
        ax.plot(ms, roof, color="gray", linestyle=":", label="int8 roofline")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"N={n} K={k}")
        ax.set_xlabel("M")
        ax.set_ylabel("TOPS")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer M values (smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<device>/")
    parser.add_argument("--peak-tops", type=float, default=1979.0, help="INT8 dense peak for the plot (H100 SXM)")
    parser.add_argument("--m", default=None, help="comma-separated M values (default: all)")
    parser.add_argument("--models", default=None, help="comma-separated models of SHAPES (default: all)")
    args = parser.parse_args()
    name = torch.cuda.get_device_name()
    copy_gbs = copy_bandwidth_gbs()
    m_values = [1, 16, 256, 4096] if args.quick else M_VALUES
    if args.m:
        m_values = [int(v) for v in args.m.split(",")]
    rows = []
    models = args.models.split(",") if args.models else None
    for (model, layer_name), (n, k) in SHAPES.items():
        if models and model not in models:
            continue
        for m in m_values:
            rows.append(derive({"model": model, "layer": layer_name, **gemm_row(m, n, k)}))
            r = rows[-1]
            print(
                f"{model:<13}{layer_name:<8}M={m:<5} N={n:<6} K={k:<6} asym {r['asym_tops']:7.1f} TOPS "
                f"{r['asym_weight_gbs']:7.0f} GB/s | sym {r['sym_tops']:7.1f} | bf16 {r['bf16_tops']:6.1f} "
                f"| int_mm {r['int_mm_tops']:6.1f} | vs bf16 {r['asym_vs_bf16']:4.2f}x vs int_mm "
                f"{r['asym_vs_int_mm']:4.2f}x asym/sym {r['asym_over_sym']:4.2f}"
                + (f" | fp8 {r['fp8_tops']:6.1f} ours/fp8 {r['asym_vs_fp8']:4.2f}x" if r.get("fp8_tops") else ""),
                flush=True,
            )
    quant = quant_rows(copy_gbs)
    for q in quant:
        kind = "sym " if q["symmetric"] else "asym"
        print(f"quant {kind} M={q['M']:<6} K={q['K']} {q['gbs']:7.0f} GB/s = {q['of_copy']:.0%} of copy")
    applied = apply_rows(args.quick)
    for r in applied:
        print(
            f"apply {r['scheme']:<4} {r['layer']:<8} M={r['M']:<5} {r['ms'] * 1e3:8.1f} us  "
            f"bf16 {r['bf16_ms'] * 1e3:8.1f} us"
        )
    host = host_overhead_us()
    for what, us in host.items():
        print(f"host {what:<45} {us:7.1f} us/call")
    summary = summarize(rows, quant)
    headlines = {"date": datetime.date.today().isoformat(), **gemm_headlines(rows, name)}
    summary.update(headlines)
    # Only a run over every M writes the headlines: a partial one would null or narrow the figures.
    if not args.quick and not args.m and (models is None or {"Llama-3-8B", "Qwen2.5-7B"} <= set(models)):
        merge_summary(name, headlines)
    result = {
        "device": name,
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "copy_bandwidth_gbs": copy_gbs,
        "summary": summary,
        "gemm": rows,
        "quant": quant,
        "apply_weights": applied,
        "host_us_per_call": host,
    }
    out = args.out or device_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gemm.json").write_text(json.dumps(result, indent=1))
    plot(rows, out / "gemm.png", args.peak_tops, copy_gbs)
    print(f"\n{name}  copy {copy_gbs:.0f} GB/s  torch {torch.__version__}  triton {triton.__version__}")
    for key, value in summary.items():
        print(f"  {key:<45} {value:8.3f}" if isinstance(value, float) else f"  {key:<45} {value}")


if __name__ == "__main__":
    main()
