"""The untuned rule against the tuned table: how close a shape with no table entry gets.

For every shape of `SHAPES` with a tuned entry at an M bucket, the entry and the Hopper or generic
rule (`untuned_config`, what an untuned shape of that size runs) are timed in alternation (asym
epilogue, bf16 out, CUDA-graph replays over rotated inputs) on the same operands. A rule within a
few percent of the table everywhere means a model the table does not list (another size, another
tensor-parallel degree) is not left slow. Writes `rule_vs_tuned.json` and summary keys.

    python -m benchmarks.benchmark_untuned_rule [--m 32,64,128,256,512] [--models Llama-3-70B-TP2,...]
"""

from __future__ import annotations

import argparse
import datetime
import json

import torch

from benchmarks.benchmark_int8_scaled_mm import SHAPES, geomean, int8_problem
from benchmarks.gpu_timing import graph_time_ms, input_sets, paired_graph_times_ms
from benchmarks.results_summary import device_dir, merge_summary
from vllm_int8.ops.mm_configs import load_tuned, pick_bucket, untuned_config
from vllm_int8.ops.scaled_mm_kernel import fit_block_k, launch_scaled_mm


def calls(sets: list[dict], config) -> list:
    def call(p):
        args = (p["a"], p["w"], p["scale_a"], p["scale_b"], torch.bfloat16, p["bias"], p["azp_adj"], p["azp"])
        return launch_scaled_mm(*args, config=config)

    return [lambda p=p: call(p) for p in sets]


def spread(ratios: list[float]) -> str:
    """One line per group: how many points, the worst, the geomean, how many below 0.95."""
    low = sum(r < 0.95 for r in ratios)
    worst, mean = min(ratios), geomean(ratios)
    return f"rule vs tuned over {len(ratios)} points: min {worst:.3f}, geomean {mean:.3f}, {low} below 0.95"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", default="32,64,128,256,512")
    parser.add_argument("--models", default=None, help="comma-separated; default: every model of SHAPES")
    args = parser.parse_args()
    device, name = torch.device("cuda"), torch.cuda.get_device_name()
    table = load_tuned(name)
    models = args.models.split(",") if args.models else None
    rows = []
    for (model, layer), (n, k) in SHAPES.items():
        if models and model not in models or (n, k) not in table:
            continue
        for m in (int(v) for v in args.m.split(",")):
            tuned = pick_bucket(table[(n, k)], m)
            if tuned is None:
                continue
            tuned, rule = fit_block_k(tuned, k), fit_block_k(untuned_config(m, n, k, device), k)
            sets = [int8_problem(m, n, k) for _ in range(input_sets(n * k + m * k))]
            if rule == tuned:  # one config: timed once
                t_rule = t_tuned = graph_time_ms(calls(sets, tuned), rep_ms=20)
            else:
                t_rule, t_tuned = paired_graph_times_ms(calls(sets, rule), calls(sets, tuned))
            del sets
            row = {"model": model, "layer": layer, "M": m, "N": n, "K": k, "rule_us": t_rule * 1e3,
                   "tuned_us": t_tuned * 1e3, "rule_vs_tuned": t_tuned / t_rule,
                   "same_config": rule == tuned}  # fmt: skip
            rows.append(row)
            print(f"{model:<16}{layer:<8}M={m:<5} N={n:<6} K={k:<6} rule {row['rule_us']:7.1f} us  tuned "
                  f"{row['tuned_us']:7.1f} us  rule/tuned speed {row['rule_vs_tuned']:.3f}"
                  f"{'  (same config)' if rule == tuned else ''}", flush=True)  # fmt: skip
    for model in dict.fromkeys(r["model"] for r in rows):
        print(f"{model:<16}" + spread([r["rule_vs_tuned"] for r in rows if r["model"] == model]))
    ratios = [r["rule_vs_tuned"] for r in rows]
    print("all             " + spread(ratios))
    out = device_dir(name)
    (out / "rule_vs_tuned.json").write_text(json.dumps({"device": name, "rows": rows}, indent=1) + "\n")
    if args.m == parser.get_default("m") and models is None:
        shards = [r["rule_vs_tuned"] for r in rows if "-TP" in r["model"]]
        merge_summary(name, {"untuned_vs_tuned_mid_min": round(min(ratios), 3),
                             "untuned_vs_tuned_mid_geomean": round(geomean(ratios), 3),
                             "untuned_vs_tuned_mid_shards_min": round(min(shards), 3) if shards else None,
                             "untuned_vs_tuned_mid_shards_geomean": round(geomean(shards), 3) if shards else None,
                             "untuned_mid_date": datetime.date.today().isoformat()})  # fmt: skip


if __name__ == "__main__":
    main()
