"""Decode tiles judged where decode runs them: inside the chained decode, one linear at a time.

A tile that is fastest for a GEMM replayed alone was 4-9% slower inside a decode step on the H200
(results/NVIDIA_H200/decode_tables_chained.log): there each GEMM starts while the quant kernel
before it ends, and its ramp and tail meet the neighbours'. So for each Llama-3-8B linear and
M in {1, 16}, this times the `--top` candidates that are fastest alone inside the chain of
`benchmark_chained_decode` (8 layers x 4 linears, quant + GEMM, one graph), the other linears at
their current tiles, in alternation with the current tile; a candidate replaces it only when the
whole chain is `--min-gain` faster and its result equals the reference bit for bit. Then the new
tiles against the old ones, whole chain, alternated, and the table is written.

    python -m benchmarks.tune_chained_decode [--m 1,16] [--top 6] [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime
import json

import torch
import triton

from benchmarks.benchmark_chained_decode import LINEARS, int8_linear
from benchmarks.benchmark_int8_scaled_mm import int8_problem
from benchmarks.gpu_timing import alternating_graph_times_ms, input_sets
from benchmarks.tune_int8_scaled_mm import candidates, precompile, shippable, time_config
from vllm_int8.ops import scaled_mm_kernel as mm
from vllm_int8.ops.mm_configs import TUNED_DIR, device_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", default="1,16")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--top", type=int, default=6, help="candidates (fastest alone) timed in the chain")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-gain", type=float, default=0.005, help="fraction of the chain a new tile must save")
    parser.add_argument("--workers", type=int, default=12)
    args = parser.parse_args()
    cuda = torch.device("cuda")
    torch.manual_seed(0)
    layers = [[int8_linear(n, k) for n, k in LINEARS.values()] for _ in range(args.layers)]
    shipped_select = mm.select_config
    override: dict[tuple[int, int, int], mm.MMConfig] = {}

    def select(m, n, k, device):
        return override.get((m, n, k)) or shipped_select(m, n, k, device)

    mm.select_config = select  # what the layer's launches ask (quant_mm looks it up per call)
    ms = [int(m) for m in args.m.split(",")]
    precompile({(c, m, k) for m in ms for _, k in LINEARS.values() for c in candidates(m)}, args.workers)
    chosen: dict[tuple[int, int, int], mm.MMConfig] = {}
    for m in ms:
        inputs = {k: torch.randn(m, k, device=cuda, dtype=torch.bfloat16) for _, k in LINEARS.values()}

        def chain(tiles: dict, inputs=inputs):
            saved = dict(override)
            override.update(tiles)
            try:
                for layer in layers:
                    for linear, (_, k) in zip(layer, LINEARS.values()):
                        linear(inputs[k])
            finally:
                override.clear()
                override.update(saved)

        for name, (n, k) in LINEARS.items():
            key = (m, n, k)
            current = mm.fit_block_k(select(m, n, k, cuda), k)
            sets = [int8_problem(m, n, k) for _ in range(input_sets(n * k))]
            alone = {}
            for c in dict.fromkeys(mm.fit_block_k(c, k) for c in [current, *candidates(m)]):
                try:
                    alone[c] = time_config(sets, c)
                except (triton.runtime.errors.OutOfResources, RuntimeError):
                    pass
            del sets
            tried = [current] + [c for c in sorted(alone, key=alone.get) if c != current][: args.top]
            times = alternating_graph_times_ms([[lambda c=c, key=key: chain({key: c})] for c in tried], args.rounds, 40)
            best = min(range(len(tried)), key=times.__getitem__)
            keep = best == 0 or times[best] > times[0] * (1 - args.min_gain) or not shippable(tried[best], n, k)
            if not keep:
                override[key] = chosen[key] = tried[best]
            print(f"M={m:<3} {name:<8} chain {times[0] * 1e3:7.1f} us with the current tile (alone"
                  f" {alone.get(current, float('nan')) * 1e3:5.1f} us), best {times[best] * 1e3:7.1f} us (alone"
                  f" {alone[tried[best]] * 1e3:5.1f} us) {'kept' if keep else 'new'} {tried[best]}",
                  flush=True)  # fmt: skip
    for m in ms:  # the new tiles against the shipped ones, whole chain, alternated
        inputs = {k: torch.randn(m, k, device=cuda, dtype=torch.bfloat16) for _, k in LINEARS.values()}
        new = {key: c for key, c in chosen.items() if key[0] == m}
        if not new:
            continue
        saved = dict(override)

        def run(tiles, inputs=inputs):
            override.clear()
            override.update(tiles)
            for layer in layers:
                for linear, (_, k) in zip(layer, LINEARS.values()):
                    linear(inputs[k])

        old_t, new_t = alternating_graph_times_ms([[lambda: run({})], [lambda new=new: run(new)]], args.rounds + 2, 60)
        override.clear()
        override.update(saved)
        print(f"M={m:<3} whole chain: shipped tiles {old_t * 1e3:7.1f} us, new {new_t * 1e3:7.1f} us"
              f" ({old_t / new_t:.3f}x)", flush=True)  # fmt: skip
    path = TUNED_DIR / f"{device_key(torch.cuda.get_device_name())}.json"
    table = json.loads(path.read_text())
    for (m, n, k), c in chosen.items():
        table["configs"].setdefault(f"{n},{k}", {})[str(m)] = c.to_dict()
    table["date"] = datetime.date.today().isoformat()
    path.write_text(json.dumps(table, indent=1, sort_keys=True))
    print(f"wrote {len(chosen)} decode tiles to {path}")


if __name__ == "__main__":
    main()
