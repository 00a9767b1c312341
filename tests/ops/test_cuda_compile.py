"""Shipped configs compile for sm_90: every H100 decode config in the one-launch (quantizing) mode, every stream-K one.

Compiled on this CPU (Triton ships ptxas), not run: a config that Triton cannot lower (one such,
16x32x32 with 5 stages on several rows, was found on the H100) must fail here, in CI, first.
"""

import os
import subprocess
import sys

SCRIPT = """
import torch
from vllm_int8.ops.mm_configs import heuristic_config, load_tuned
from vllm_int8.rocm_check import _gemm_variant, compile_variant
from vllm_int8.ops.scaled_mm_kernel import A_QUANT_DYNAMIC, A_QUANT_STATIC
configs = {heuristic_config(1, n, k) for n, k in ((4096, 4096), (28672, 4096), (4096, 14336))}
for buckets in load_tuned("NVIDIA H100 80GB HBM3").values():
    configs |= {cfg for m, cfg in buckets.items() if m <= 16}
done = 0
for cfg in sorted(configs, key=str):
    for mode, flavour in ((A_QUANT_DYNAMIC, "asym"), (A_QUANT_STATIC, "static_azp")):
        for k_form in ("even", "masked"):
            compile_variant(_gemm_variant("M<=16", cfg, flavour, mode, k_form, torch.bfloat16, m=1), "sm_90")
            done += 1
print("compiled", done)
"""


def test_shipped_decode_configs_compile_for_sm90_in_one_launch_mode():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {"TRITON_DEFAULT_FP_FUSION": "0"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split("compiled")[-1]) >= 4


STREAM_K_SCRIPT = """
import torch
from vllm_int8.ops.mm_configs import load_tuned
from vllm_int8.ops.tile_config import MMConfig
from vllm_int8.rocm_check import _gemm_variant, compile_variant
from vllm_int8.ops.scaled_mm_kernel import A_INT8
configs = {MMConfig(64, 128, 128, group_m=8, num_warps=4, num_stages=4, stream_k=1)}
for buckets in load_tuned("NVIDIA H200").values():
    configs |= {cfg for cfg in buckets.values() if cfg.stream_k}
done = 0
for cfg in sorted(configs, key=str):
    for k_form in ("even", "masked"):
        kernel = compile_variant(_gemm_variant("M<=16", cfg, "asym", A_INT8, k_form, torch.bfloat16, m=256), "sm_90")
        assert kernel.name == "_stream_k_mm_kernel" and "wgmma" in kernel.asm["ptx"], kernel.name
        done += 1
print("compiled", done)
"""


def test_stream_k_configs_compile_for_sm90_with_wgmma():
    """The representative mid-batch tile and every stream-K config the H200 table ships."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {"TRITON_DEFAULT_FP_FUSION": "0"}
    done = subprocess.run([sys.executable, "-c", STREAM_K_SCRIPT], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split("compiled")[-1]) >= 2
