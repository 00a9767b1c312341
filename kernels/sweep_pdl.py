"""PDL on the decode path: off, wait-only, the launchers' rule, and every kernel triggering early.

One Llama-3-8B layer's four linears (dynamic asym `Int8Linear`), per linear and chained back to
back, CUDA-graph-timed over rotated weights (gpu_timing.py), at decode and M=256, against bf16
`F.linear` in the same run; then a 4-layer Llama-3-8B-shaped model's decode step (batch 1 and 16)
under CUDA graphs. `launch_overlap.py` holds the rule this chose.

    python kernels/sweep_pdl.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from benchmark_layer import LAYERS, SCHEMES, graph_step_ms, int8_layer, llama_8b_config
from gpu_timing import graph_time_ms, input_sets

from vllm_int8.ops import launch_overlap

# label -> (PDL on, GEMM early up to this M, quant early up to this fraction of the SMs)
VARIANTS = {
    "off": (False, 0, 0.0),
    "wait only": (True, 0, 0.0),
    "rule": (True, launch_overlap.GEMM_EARLY_MAX_M, launch_overlap.QUANT_EARLY_MAX_SM_FRACTION),
    "all early": (True, 1 << 30, 1e9),
}


def timed(fn, variant: str):
    on, gemm_max_m, quant_fraction = VARIANTS[variant]
    saved = launch_overlap.GEMM_EARLY_MAX_M, launch_overlap.QUANT_EARLY_MAX_SM_FRACTION
    launch_overlap.GEMM_EARLY_MAX_M, launch_overlap.QUANT_EARLY_MAX_SM_FRACTION = gemm_max_m, quant_fraction
    try:
        with launch_overlap.pdl_forced(on):
            return fn()
    finally:
        launch_overlap.GEMM_EARLY_MAX_M, launch_overlap.QUANT_EARLY_MAX_SM_FRACTION = saved


def linear_us(group: list, x: torch.Tensor, variant: str) -> float:
    """One linear's graph-timed µs, rotating over the layer copies in `group`."""
    return timed(lambda: 1e3 * graph_time_ms([lambda layer=layer: layer(x) for layer in group]), variant)


def chained_us(groups: dict[str, list], xs: dict[str, torch.Tensor], variant: str) -> float:
    """The four linears back to back (each call: qkv, o, gate_up, down), graph-timed."""
    sets = max(3, min(len(group) for group in groups.values()))

    def layer_call(i: int):
        return [group[i % len(group)](xs[name]) for name, group in groups.items()]

    return timed(lambda: 1e3 * graph_time_ms([lambda i=i: layer_call(i) for i in range(sets)]), variant)


def layer_sweep(m_values=(1, 16, 64, 256)) -> None:
    shapes = LAYERS["Llama-3-8B"]
    groups = {
        name: [int8_layer(n, k, SCHEMES["asym"]) for _ in range(input_sets(n * k))] for name, (n, k) in shapes.items()
    }
    for m in m_values:
        xs = {name: torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for name, (n, k) in shapes.items()}
        bf = {}
        for name, (n, k) in shapes.items():
            weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(input_sets(2 * n * k))]
            bf[name] = 1e3 * graph_time_ms([lambda w=w, x=xs[name]: F.linear(x, w) for w in weights])
            del weights
        total_bf = sum(bf.values())
        print(f"M={m:<4} bf16      sum {total_bf:6.1f} us | " + " ".join(f"{nm} {us:5.1f}" for nm, us in bf.items()))
        for label in VARIANTS:
            per = {name: linear_us(group, xs[name], label) for name, group in groups.items()}
            chain, total = chained_us(groups, xs, label), sum(per.values())
            line = f"       {label:<9} sum {total:6.1f} us {total_bf / total:.2f}x | chained {chain:6.1f} us "
            print(
                line + f"{total_bf / chain:.2f}x | " + " ".join(f"{nm} {us:5.1f}" for nm, us in per.items()), flush=True
            )
    del groups
    torch.cuda.empty_cache()


def model_sweep(layers: int = 4) -> None:
    from transformers import LlamaForCausalLM

    from vllm_int8.models import quantize_in_place

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM._from_config(llama_8b_config(layers), dtype=torch.bfloat16).eval()
    ids = {f"b{b}": torch.randint(0, 128256, (b, 1), device="cuda") for b in (1, 16)}
    bf = {b: graph_step_ms(model, x) for b, x in ids.items()}
    quantize_in_place(model, "dynamic-asym")
    for label in VARIANTS:
        got = {b: timed(lambda x=x: graph_step_ms(model, x), label) for b, x in ids.items()}
        figures = " ".join(f"{b}: bf16 {bf[b]:.3f} ms int8 {got[b]:.3f} ms {bf[b] / got[b]:.3f}x" for b in ids)
        print(f"{layers}-layer model decode, graph, {label:<9} {figures}", flush=True)


if __name__ == "__main__":
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    layer_sweep()
    model_sweep()
