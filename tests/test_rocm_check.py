"""The ROCm compile gate: every variant a ROCm launch can run compiles cleanly for gfx942 and gfx950.

Compiled on this CPU through Triton's AMD backend, not run: nothing here claims an AMD GPU run.
"""

import importlib.util
import os
import subprocess
import sys

import pytest
import torch
import triton

from vllm_int8.ops.rocm_configs import rocm_heuristic_config
from vllm_int8.rocm_check import barrier_before_arrival, check_variant

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("triton.backends.amd") is None, reason="this Triton has no AMD backend"
)


def gate(*argv: str) -> subprocess.CompletedProcess:
    """The CLI in a child process without TRITON_INTERPRET (interpreted kernels cannot be compiled)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-m", "vllm_int8.cli", *argv], env=env, capture_output=True, text=True)


def test_the_gate_passes_for_both_archs():
    done = gate("rocm-check", "--arch", "gfx942", "--arch", "gfx950")
    out = done.stdout
    print(out)  # the table, in the CI log
    assert done.returncode == 0, out + done.stderr
    assert "FAIL" not in out and "0 failed" in out
    assert "v_mfma" not in out  # the table counts MFMAs, it does not dump assembly
    for needle in ("split_k=", "dynamic quant in kernel", "masked K", "quant dynamic asym K=14336"):
        assert needle in out


@pytest.mark.skipif(
    tuple(int(v) for v in triton.__version__.split(".")[:2]) < (3, 9), reason="the spill was seen with Triton 3.9"
)
def test_the_gate_catches_a_spilling_config():
    """256x256x64 spills on gfx950 with Triton 3.9 (why its heuristic takes 256x128x128): the gate must say so."""
    script = (
        "import torch; from vllm_int8.ops.mm_configs import MMConfig; "
        "from vllm_int8.rocm_check import _gemm_variant, check_variant; "
        "bad = MMConfig(256, 256, 64, 4, 8, 2, waves_per_eu=2, matrix_instr_nonkdim=16); "
        "r = check_variant(_gemm_variant('M>512', bad, 'sym', 0, 'even', torch.float32), 'gfx950'); "
        "print(r.ok, r.failures)"
    )
    done = gate_python(script)
    assert done.stdout.startswith("False") and "spilled" in done.stdout, done.stdout + done.stderr


def test_the_gate_refuses_interpreted_kernels():
    from vllm_int8.rocm_check import _quant_variant

    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("kernels are compiled here, not interpreted")
    assert not check_variant(_quant_variant(False, True, 64, torch.float32), "gfx942").ok


def gate_python(script: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)


def test_the_gate_reads_the_barrier_order():
    stores_then_barrier = "global_store_dwordx4 v[0:3]\n s_barrier\n global_atomic_add_u32 v1, v2\n"
    barrier_then_stores = " s_barrier\n global_store_dword v0\n global_atomic_add v1, v2\n"
    assert barrier_before_arrival(stores_then_barrier) is True
    assert barrier_before_arrival(barrier_then_stores) is False
    assert barrier_before_arrival("v_add_u32 v0, v1\n") is None


@pytest.mark.parametrize("arch, cus", [("gfx942", 304), ("gfx950", 256)])
def test_rocm_heuristic_uses_amd_pipelining_and_the_cu_count(arch, cus):
    for m in (1, 48, 300, 4096):
        cfg = rocm_heuristic_config(m, 4096, 14336, arch, cus)
        assert cfg.num_stages == 2 and cfg.matrix_instr_nonkdim == 16 and cfg.waves_per_eu == 2
    assert rocm_heuristic_config(1, 4096, 14336, arch, cus).split_k > 1  # decode splits K over the CUs
