"""Where an eager Int8Linear call spends host time: each layer of the call timed alone, then cProfile.

The layer is tiny (256 x 256, M=1), so the GPU work (~3 µs) hides under the host cost. Each line
times `n` calls without synchronizing in between (launches are asynchronous), then synchronizes.

    python -m benchmarks.profile_host [--calls 2000]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats

import torch
import torch.nn.functional as F

from benchmarks.gpu_timing import host_us_per_call
from vllm_int8 import ops
from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig
from vllm_int8.ops import scaled_mm_kernel as mm
from vllm_int8.ops.quant_mm import quant_scaled_mm_impl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    n = args.calls
    layer = Int8Linear(256, 256, Int8ScaledMMLinearLayerConfig(False, True, False), device="cuda")
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-128, 128, (256, 256), dtype=torch.int8))
        layer.weight_scale.fill_(1e-3)
    layer.process_weights_after_loading()
    x = torch.randn(1, 256, device="cuda", dtype=torch.bfloat16)
    w16 = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
    w, ws, adj = layer.weight, layer.weight_scale, layer.azp_adj
    cfg = mm.select_config(1, 256, 256, x.device)
    out = torch.empty(1, 256, device="cuda", dtype=torch.bfloat16)
    grid, launch_args, constexprs = mm.launch_arguments(
        x, w, out, w, ws, None, adj, None, True, mm.A_QUANT_DYNAMIC, False, mm.fit_block_k(cfg, 256)
    )
    rows = {
        "F.linear bf16": lambda: F.linear(x, w16),
        "torch.empty (one output)": lambda: torch.empty(1, 256, device="cuda", dtype=torch.bfloat16),
        "Triton launch alone (kernel[grid](...))": lambda: mm._scaled_mm_kernel[grid](*launch_args, **constexprs),
        "launch_quant_scaled_mm": lambda: mm.launch_quant_scaled_mm(x, w, ws, x.dtype, None, adj, None, None, False),
        "quant_scaled_mm_impl": lambda: quant_scaled_mm_impl(x, w, ws, x.dtype, None, adj, None, None, False, "auto"),
        "torch.ops.vllm_int8.quant_scaled_mm": lambda: torch.ops.vllm_int8.quant_scaled_mm(
            x, w, ws, x.dtype, None, adj, None, None, False, "auto"
        ),
        "ops.quant_scaled_mm (validated)": lambda: ops.quant_scaled_mm(x, w, ws, None, None, adj, symmetric=False),
        "Int8Linear(x) (the layer)": lambda: layer(x),
    }
    for name, call in rows.items():
        print(f"{name:<44} {host_us_per_call(call, n):7.1f} us/call")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(n):
        layer(x)
    torch.cuda.synchronize()
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(25)
    print(text.getvalue())


if __name__ == "__main__":
    main()
