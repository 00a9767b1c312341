"""Every decode config the H100 table ships compiles for sm_90 in the one-launch (quantizing) mode.

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
