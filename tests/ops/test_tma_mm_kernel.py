"""The Hopper TMA prefill kernel, forced: every epilogue path against the references, and its fallbacks.

On CPU the kernel runs in Triton's interpreter (host TensorDescriptors are interpreted too); on a
GPU of compute capability >= 9 it runs natively and `launch_scaled_mm` must really take it (the
launch log says so). Elsewhere a TMA config falls back to the pointer kernel, same answer.
"""

import dataclasses

import pytest
import torch

from tests.oracle import assert_within_rounding, scaled_mm_float64
from tests.problems import GEMM_SCHEMES as SCHEMES
from tests.problems import make_problem
from vllm_int8.ops.mm_configs import MMConfig
from vllm_int8.ops.reference import torch_scaled_mm
from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm, record_launches
from vllm_int8.ops.tma_mm_kernel import (
    TensorDescriptor,
    launch_tma_scaled_mm,
    tma_available,
    tma_launch_arguments,
    tma_layout_problem,
)
from vllm_int8.ops.validation import MAX_K_ASYMMETRIC

pytestmark = pytest.mark.skipif(TensorDescriptor is None, reason="this Triton has no host TensorDescriptor")

ON_GPU = torch.cuda.is_available()
HOPPER = ON_GPU and tma_available(torch.device("cuda"))
# Small tiles in the interpreter (speed); Hopper's wgmma wants BLOCK_M >= 64.
TILES = MMConfig(64, 64, 64, 2, 4, 3, tma=1) if ON_GPU else MMConfig(16, 32, 32, 2, 4, 2, tma=1)
SHAPES = [(5, 48, 96), (70, 160, 80), (130, 64, 200)]  # (M, K, N): ragged M and N, K a multiple of 16


def _run_tma(a, b, sa, sb, bias, azp_adj, azp, out_dtype, cfg):
    out = torch.empty(a.shape[0], b.shape[1], dtype=out_dtype, device=a.device)
    flat = [None if t is None else t.reshape(-1).contiguous() for t in (sa, sb, bias, azp_adj, azp)]
    return launch_tma_scaled_mm(a, b, out, *flat, cfg, num_sms=None if a.is_cuda else 3)


@pytest.mark.skipif(ON_GPU and not HOPPER, reason="TMA needs compute capability >= 9.0")
@pytest.mark.parametrize("subtile", [0, 1])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fp32_output_equals_the_torch_reference_bit_for_bit(shape, scheme, with_bias, subtile, device):
    m, k, n = shape
    a, b, sa, sb, bias, azp_adj, azp = make_problem(scheme, m, k, n, "nk", True, with_bias, torch.float32, device)
    out = _run_tma(a, b, sa, sb, bias, azp_adj, azp, torch.float32, dataclasses.replace(TILES, subtile=subtile))
    assert torch.equal(out, torch_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp))


@pytest.mark.skipif(ON_GPU and not HOPPER, reason="TMA needs compute capability >= 9.0")
@pytest.mark.parametrize("out_dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("scheme", ["sym_tensor", "asym_token", "asym_static"])
def test_half_outputs_within_one_rounding(scheme, out_dtype, device):
    m, k, n = 70, 160, 80
    a, b, sa, sb, bias, azp_adj, azp = make_problem(scheme, m, k, n, "nk", True, True, out_dtype, device)
    out = _run_tma(a, b, sa, sb, bias, azp_adj, azp, out_dtype, dataclasses.replace(TILES, subtile=1))
    ref, magnitude = scaled_mm_float64(a, b, sa, sb, bias, azp_adj, azp)
    assert_within_rounding(out, ref, magnitude)
    if ON_GPU:  # natively the cast rounds to nearest even, like torch: bit for bit
        assert torch.equal(out, torch_scaled_mm(a, b, sa, sb, out_dtype, bias, azp_adj, azp))


@pytest.mark.skipif(ON_GPU and not HOPPER, reason="TMA needs compute capability >= 9.0")
@pytest.mark.parametrize("programs_per_sm", [2, 3, 64])
def test_several_programs_per_sm_cover_every_tile_once(programs_per_sm, device):
    """Co-resident persistent programs (a stride of 2 x 2 or 3 x 2 programs over 12+ tiles, or one
    program per tile) write every output tile exactly once: bit for bit the reference."""
    m, k, n = 130, 96, 200
    a, b, sa, sb, bias, azp_adj, azp = make_problem("asym_token", m, k, n, "nk", True, True, torch.float32, device)
    cfg = dataclasses.replace(TILES, programs_per_sm=programs_per_sm)
    out = torch.full((m, n), float("nan"), device=device)
    flat = [t.reshape(-1).contiguous() for t in (sa, sb, bias, azp_adj, azp)]
    launch_tma_scaled_mm(a, b, out, *flat, cfg, num_sms=2)
    assert torch.equal(out, torch_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp))


def test_programs_per_sm_sets_the_grid_and_the_stride():
    a, b, sa, sb, bias, azp_adj, azp = make_problem("sym_tensor", 130, 96, 200, "nk", True, False, torch.float32, "cpu")
    out = torch.empty(130, 200)
    tiles = -(-130 // TILES.block_m) * -(-200 // TILES.block_n)
    for per_sm, programs in ((0, 3), (1, 3), (2, 6), (1000, 3000)):
        cfg = dataclasses.replace(TILES, programs_per_sm=per_sm)
        grid, _, constexprs = tma_launch_arguments(a, b, out, sa.reshape(-1), sb.reshape(-1), None, None, None, cfg, 3)
        assert constexprs["NUM_PROGRAMS"] == programs and grid == (min(programs, tiles),)
    assert "programs_per_sm" not in TILES.to_dict()
    assert MMConfig(**dataclasses.replace(TILES, programs_per_sm=2).to_dict()).programs_per_sm == 2


@pytest.mark.skipif(ON_GPU and not HOPPER, reason="TMA needs compute capability >= 9.0")
def test_zero_point_term_at_the_int32_limit_is_exact(device):
    """At the largest asymmetric K, with the worst magnitudes, the TMA kernel's int32 accumulator and
    zero-point term still give the exact `(A - azp).B`."""
    k = MAX_K_ASYMMETRIC - MAX_K_ASYMMETRIC % 16  # TMA rows: K a multiple of 16
    a = torch.full((1, k), -128, dtype=torch.int8, device=device)
    w_nk = torch.full((32, k), -128, dtype=torch.int8, device=device)
    w_nk[1::2] = 64
    azp = torch.full((1,), 127, dtype=torch.int32, device=device)  # a - azp = -255 everywhere
    azp_adj = w_nk.to(torch.int64).sum(1).to(torch.int32)
    one = torch.ones(1, device=device)
    cfg = dataclasses.replace(TILES, block_k=256)
    out = _run_tma(a, w_nk.t(), one, one, None, azp_adj, azp, torch.float32, cfg)
    expected = torch.tensor([-255 * -128 * k, -255 * 64 * k] * 16, dtype=torch.float64)[None]
    assert expected.abs().max() < 2**31
    assert torch.equal(out.double().cpu(), expected)


def test_layout_problems_are_named():
    a = torch.zeros(8, 64, dtype=torch.int8)
    w = torch.zeros(32, 64, dtype=torch.int8).t()
    out = torch.empty(8, 32, dtype=torch.bfloat16)
    assert tma_layout_problem(a, w, out) is None
    assert "activation" in tma_layout_problem(torch.zeros(64, 8, dtype=torch.int8).t(), w, out)
    assert "activation" in tma_layout_problem(torch.zeros(8, 72, dtype=torch.int8)[:, :60], w[:60], out)
    assert "weight" in tma_layout_problem(a, torch.zeros(64, 32, dtype=torch.int8), out)
    odd_row_out = torch.empty(8, 36, dtype=torch.bfloat16)  # 72-byte rows
    assert "output" in tma_layout_problem(a, torch.zeros(36, 64, dtype=torch.int8).t(), odd_row_out)
    assert "int8" in tma_layout_problem(a.float(), w, out)


@pytest.mark.parametrize("case", ["ok", "odd_k", "kn_weight", "odd_n"])
def test_launcher_takes_tma_only_where_it_can(case, device):
    """TMA configs run TMA on Hopper when the layout allows; anywhere else the pointer kernel, same answer."""
    m, k, n = 70, {"odd_k": 88 + 4}.get(case, 96), {"odd_n": 81}.get(case, 80)
    layout = "kn" if case == "kn_weight" else "nk"
    a, b, sa, sb, bias, azp_adj, azp = make_problem("asym_token", m, k, n, layout, True, True, torch.float32, device)
    with record_launches() as log:
        out = launch_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp, config=TILES)
    assert torch.equal(out, torch_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp))
    took_tma = bool(log[-1][3].tma)
    assert took_tma == (HOPPER and case == "ok"), (case, log[-1][3])
