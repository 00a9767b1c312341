"""What a user feels: one decoder layer's linears (quant + GEMM), eager host time, and a whole model.

1. Layer: the four linears of one Llama-3-8B / -70B decoder layer (qkv, o, gate_up, down) through
   `Int8Linear` (dynamic asym, dynamic sym, static asym), against bf16 `F.linear` on the same
   shapes, for M in {1, 16, 64, 256, 1024, 4096}; CUDA-graph replays over weights rotated past L2
   (gpu_timing.py), median.
2. Host: eager wall time per `Int8Linear` call at M=1 on a small layer (the host cost, not the GPU),
   against bf16 `F.linear` in the same run.
3. Model: a Llama-3-8B-shaped `LlamaForCausalLM` with random weights (no download), bf16 against
   every decoder linear on `Int8Linear` (dynamic asym, q/k/v and gate/up fused as the patcher does):
   one decode step (batch 1 and 16, no KV cache) under CUDA graphs and eagerly, and an eager
   prefill of 2048 tokens. With `--bound`, a third model in the same alternation: bf16 with every
   decoder linear free (`FreeLinear`: no GPU work, a cached output), what the rest of the model
   costs; bf16's time over its time bounds what any linear kernel can make of that step.

Merges its figures into benchmarks/results/<device>/summary.json under the device name and writes the full
rows to benchmarks/results/layer_<device>.json.

    python -m benchmarks.benchmark_layer [--skip-model] [--quick] [--model-only] [--bound]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks.gpu_timing import alternating_graph_times_ms, alternating_ms, graph_time_ms, input_sets
from benchmarks.results_summary import device_dir, merge_summary
from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig
from vllm_int8.ops.pdl import pdl_enabled

LAYERS = {  # (N, K) of y = x W^T: qkv, o, gate_up, down
    "Llama-3-8B": {"qkv": (6144, 4096), "o": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)},
    "Llama-3-70B": {"qkv": (10240, 8192), "o": (8192, 8192), "gate_up": (57344, 8192), "down": (8192, 28672)},
}
SCHEMES = {
    "asym": Int8ScaledMMLinearLayerConfig(False, True, False),
    "sym": Int8ScaledMMLinearLayerConfig(False, True, True),
    "static_asym": Int8ScaledMMLinearLayerConfig(True, True, False),
}


def int8_layer(n: int, k: int, config: Int8ScaledMMLinearLayerConfig) -> Int8Linear:
    """A processed Int8Linear with random int8 weights (the values do not change the time)."""
    layer = Int8Linear(k, n, config, device="cuda")
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda"))
        layer.weight_scale.copy_(torch.rand(n, 1, device="cuda") * 1e-3)
        if config.is_static_input_scheme:
            layer.input_scale.fill_(0.02)
            if not config.input_symmetric:
                layer.input_zero_point.fill_(3)
    layer.process_weights_after_loading()
    return layer


def layer_rows(models: list[str], m_values: list[int]) -> list[dict]:
    rows = []
    for model in models:
        for name, (n, k) in LAYERS[model].items():
            weights16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(input_sets(2 * n * k))]
            layers = {s: [int8_layer(n, k, c) for _ in range(input_sets(n * k))] for s, c in SCHEMES.items()}
            for m in m_values:
                x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
                row = {"model": model, "layer": name, "N": n, "K": k, "M": m}
                # Alternated, each after an idle pause (gpu_timing.alternating_ms): clock drift
                # and the power state a bf16 measurement leaves had moved single ratios by 10%.
                variants = [[lambda w=w, x=x: F.linear(x, w) for w in weights16]]
                variants += [[lambda lay=lay, x=x: lay(x) for lay in group] for group in layers.values()]
                times = alternating_graph_times_ms(variants, settle_s=0.05)
                for name_us, ms in zip(["bf16_us"] + [f"{s}_us" for s in layers], times):
                    row[name_us] = 1e3 * ms
                rows.append(row)
                print(
                    f"{model:<12} {name:<8} M={m:<5} bf16 {row['bf16_us']:8.1f} us | asym {row['asym_us']:8.1f} "
                    f"sym {row['sym_us']:8.1f} static {row['static_asym_us']:8.1f} "
                    f"| asym x{row['bf16_us'] / row['asym_us']:.2f}",
                    flush=True,
                )
            del weights16, layers
            torch.cuda.empty_cache()
    return rows


def layer_speedups(rows: list[dict], model: str = "Llama-3-8B") -> dict[str, float]:
    """M -> bf16 time / int8 asym time of one decoder layer's four linears."""
    out = {}
    for m in sorted({r["M"] for r in rows}):
        sub = [r for r in rows if r["model"] == model and r["M"] == m]
        out[str(m)] = sum(r["bf16_us"] for r in sub) / sum(r["asym_us"] for r in sub)
    return out


def eager_us(call, n: int = 200) -> float:
    """Median wall time of one eager call, each synchronized (host-bound where the GPU work is tiny)."""
    for _ in range(10):
        call()
    torch.cuda.synchronize()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def host_rows() -> dict[str, float]:
    """Eager µs per call on a 256x256 layer at M=1: the GPU part is ~3 µs, the rest is host."""
    x = torch.randn(1, 256, device="cuda", dtype=torch.bfloat16)
    w16 = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
    calls = {"bf16 F.linear": lambda: F.linear(x, w16)}
    for scheme, config in SCHEMES.items():
        layer = int8_layer(256, 256, config)
        calls[f"Int8Linear {scheme}"] = lambda layer=layer: layer(x)
    times = alternating_ms([lambda call=call: eager_us(call, n=50) for call in calls.values()], rounds=5)
    return dict(zip(calls, times))


def copy_bandwidth_gbs() -> float:
    """A 1 GiB device-to-device copy: bytes read plus written per second."""
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    return 2 * src.numel() / graph_time_ms([lambda: dst.copy_(src)]) / 1e6


def quant_rows() -> list[dict]:
    """`scaled_int8_quant` (dynamic asym, bf16 in): GB/s against a device copy at large M, µs at small M."""
    from vllm_int8 import ops

    copy_gbs = copy_bandwidth_gbs()
    from vllm_int8.ops.quant_kernel import _launch_shape

    rows = []
    for k in (4096, 14336, 28672):
        for m in (1, 16, 4096, 16384):
            xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(input_sets(3 * m * k))]
            ms = graph_time_ms([lambda x=x: ops.scaled_int8_quant(x, symmetric=False) for x in xs])
            gbs = (3 * m * k + 8 * m) / ms / 1e6
            path = "one pass" if _launch_shape(k, m)[0] else "two passes"
            rows.append({"M": m, "K": k, "path": path, "us": ms * 1e3, "gbs": gbs, "of_copy": gbs / copy_gbs})
            print(f"quant asym M={m:<6} K={k:<6} {path:<10} {ms * 1e3:7.2f} us {gbs:6.0f} GB/s "
                  f"= {gbs / copy_gbs:.0%} of copy")  # fmt: skip
    return rows


def llama_8b_config(layers: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096,
    )  # fmt: skip


def capture_step(model, ids: torch.Tensor) -> torch.cuda.CUDAGraph:
    """One forward (no KV cache) captured in a CUDA graph, after three warm-up forwards."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad():
        for _ in range(3):
            model(input_ids=ids, use_cache=False)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        model(input_ids=ids, use_cache=False)
    return graph


def graph_step_ms(model, ids: torch.Tensor) -> float:
    """Replay time (median) of one forward captured in a CUDA graph."""
    graph = capture_step(model, ids)
    ms = replay_step_ms(graph)
    del graph
    return ms


def replay_step_ms(graph: torch.cuda.CUDAGraph, rep_ms: int = 200) -> float:
    import triton

    return triton.testing.do_bench(graph.replay, warmup=20, rep=rep_ms, return_mode="median")


def eager_step_ms(model, ids: torch.Tensor, n: int = 10) -> float:
    with torch.no_grad():
        return eager_us(lambda: model(input_ids=ids, use_cache=False), n=n) / 1e3


class FreeLinear(torch.nn.Module):
    """A linear that costs nothing: one cached zero output per input shape (the bound model)."""

    def __init__(self, out_features: int):
        super().__init__()
        self.out_features = out_features
        self._outputs: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._outputs.get(x.shape)
        if out is None:
            out = self._outputs[x.shape] = x.new_zeros(*x.shape[:-1], self.out_features)
        return out


def free_linears(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with every decoder-layer nn.Linear replaced by a FreeLinear (lm_head kept)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}":
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, FreeLinear(module.out_features))
    return model


def model_rows(layers: int, rounds: int = 6, bound: bool = False) -> dict[str, float]:
    """bf16 and int8 (a quantized copy) side by side, every figure measured in alternation.

    An eager step is host-bound, and this VM's host speed drifts: measured one model after the
    other, the same code's eager decode ratio came out anywhere in 0.64-1.40 on different runs.
    """
    import copy

    from transformers import LlamaForCausalLM

    from vllm_int8.models import quantize_in_place

    torch.manual_seed(0)
    with torch.device("cuda"):
        bf16 = LlamaForCausalLM._from_config(llama_8b_config(layers), dtype=torch.bfloat16).eval()
    int8 = copy.deepcopy(bf16)
    quantize_in_place(int8, "dynamic-asym")
    torch.cuda.empty_cache()
    models = {"bf16": bf16, "int8": int8}
    if bound:
        models["free"] = free_linears(copy.deepcopy(bf16))
    inputs = {
        "decode_graph_b1": torch.randint(0, 128256, (1, 1), device="cuda"),
        "decode_graph_b16": torch.randint(0, 128256, (16, 1), device="cuda"),
    }
    result = {}
    for what, ids in inputs.items():
        graphs = {kind: capture_step(model, ids) for kind, model in models.items()}
        times = alternating_ms([lambda g=g: replay_step_ms(g, rep_ms=50) for g in graphs.values()], rounds, 0.1)
        result.update({f"{kind}_{what}_ms": ms for kind, ms in zip(graphs, times)})
        del graphs
    b1 = inputs["decode_graph_b1"]
    prefill = torch.randint(0, 128256, (1, 2048), device="cuda")
    b16 = inputs["decode_graph_b16"]
    eager = (("decode_eager_b1", b1, 4), ("decode_eager_b16", b16, 4), ("prefill_eager_2048", prefill, 2))
    for what, ids, n in eager:
        times = alternating_ms([lambda m=m, i=ids, c=n: eager_step_ms(m, i, n=c) for m in models.values()], rounds, 0.1)
        result.update({f"{kind}_{what}_ms": ms for kind, ms in zip(models, times)})
    for kind in models:
        print({k: round(v, 3) for k, v in result.items() if k.startswith(kind)}, flush=True)
    del models, bf16, int8
    torch.cuda.empty_cache()
    return result


def model_figures(model: dict[str, float]) -> dict[str, float]:
    """The whole model's speedups over bf16, from `model_rows`."""
    steps = {
        "model_decode_speedup": "decode_graph_b1",
        "model_decode_speedup_b16": "decode_graph_b16",
        "model_eager_decode_speedup": "decode_eager_b1",
        "model_eager_decode_speedup_b16": "decode_eager_b16",
        "model_prefill_speedup": "prefill_eager_2048",
    }
    figures = {key: model[f"bf16_{what}_ms"] / model[f"int8_{what}_ms"] for key, what in steps.items()}
    if "free_prefill_eager_2048_ms" in model:  # --bound: the speedup if the linears were free
        figures.update({f"{key}_bound": model[f"bf16_{what}_ms"] / model[f"free_{what}_ms"]
                        for key, what in steps.items()})  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--quick", action="store_true", help="8B shapes only, M in {1, 16, 256, 4096}, 4-layer model")
    parser.add_argument("--model-only", action="store_true", help="only the whole model (3.), merged into the summary")
    parser.add_argument("--bound", action="store_true", help="also the model with free decoder linears (see above)")
    parser.add_argument("--rounds", type=int, default=6, help="alternated rounds of the whole model's figures")
    args = parser.parse_args()
    device = torch.cuda.get_device_name()
    if args.model_only:
        model = model_rows(32, args.rounds, args.bound)
        figures = model_figures(model)
        merge_summary(device, {**figures, "model_date": datetime.date.today().isoformat()})
        for key, value in figures.items():
            print(f"  {key:<32} {value:8.2f}")
        return
    m_values = [1, 16, 256, 4096] if args.quick else [1, 16, 64, 256, 1024, 4096]
    rows = layer_rows(["Llama-3-8B"] if args.quick else list(LAYERS), m_values)
    host = host_rows()
    for what, us in host.items():
        print(f"host {what:<24} {us:7.1f} us/call (eager, synchronized)")
    speedups = layer_speedups(rows)
    figures = {
        "date": datetime.date.today().isoformat(),
        "layer_speedup": speedups,
        "host_us_per_apply": host["Int8Linear asym"],
        "bf16_host_us_per_call": host["bf16 F.linear"],
    }
    quant = quant_rows()
    figures["quant_pct_of_copy_bw"] = 100 * min(q["of_copy"] for q in quant if q["M"] >= 4096)
    figures["quant_us_small_m"] = max(q["us"] for q in quant if q["M"] <= 16)
    slowest = min((r["bf16_us"] / r["asym_us"], r["layer"], r["M"]) for r in rows if r["model"] == "Llama-3-8B")
    figures["layer_slowest_linear_vs_bf16"] = {"speedup": slowest[0], "layer": slowest[1], "M": slowest[2]}
    model = {}
    if not args.skip_model:
        model = model_rows(4 if args.quick else 32, args.rounds, args.bound)
        figures.update(model_figures(model), model_date=figures["date"])
    pdl = pdl_enabled(torch.device("cuda"))
    full = {"device": device, "torch": torch.__version__, "pdl": pdl, "rows": rows, "host_us": host, "quant": quant,
            "model": model, **figures}  # fmt: skip
    (device_dir(device) / "layer.json").write_text(json.dumps(full, indent=1) + "\n")
    if not args.quick:
        merge_summary(device, figures)
    print(f"\n{device}  {figures['date']}  PDL {'on' if pdl else 'off'}")
    for m, s in speedups.items():
        print(f"  Llama-3-8B layer linears, asym vs bf16, M={m:<5} {s:5.2f}x")
    for key, value in figures.items():
        if key.startswith(("model_", "quant_", "bf16_host", "host_")):
            print(f"  {key:<32} {value:8.2f}")


if __name__ == "__main__":
    main()
