"""triton_scaled_mm against float64 math: every scale/azp/bias/dtype/layout path, ragged shapes."""

import dataclasses

import pytest
import torch

from tests.oracle import assert_within_rounding, scaled_mm_float64
from tests.problems import GEMM_SCHEMES, SMALL_TILES, SWAPPED_TILES, int8, make_problem
from vllm_int8 import ops

SHAPES = [(1, 33, 17), (19, 64, 48), (40, 100, 35)]  # (M, K, N): M = 1, ragged everything, even K
SCHEMES = GEMM_SCHEMES


@pytest.mark.parametrize("out_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("layout", ["kn", "nk"])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_float64(shape, scheme, layout, per_channel, with_bias, out_dtype, device):
    m, k, n = shape
    a, b, sa, sb, bias, azp_adj, azp = make_problem(scheme, m, k, n, layout, per_channel, with_bias, out_dtype, device)
    out = ops.triton_scaled_mm(a, b, sa, sb, out_dtype, bias, azp_adj, azp)
    assert out.dtype == out_dtype and out.shape == (m, n)
    ref, magnitude = scaled_mm_float64(a, b, sa, sb, bias, azp_adj, azp)
    assert_within_rounding(out, ref, magnitude)


@pytest.mark.parametrize("config", [None, SMALL_TILES, SWAPPED_TILES], ids=["heuristic", "small_tiles", "swap_ab"])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", SHAPES + [(70, 256, 40)])
def test_integer_part_is_exact(shape, scheme, config, device):
    """Unit scales and fp32 output expose the int32 result itself: it must equal the exact integer."""
    from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm

    m, k, n = shape
    a, b, _, _, _, azp_adj, azp = make_problem(scheme, m, k, n, "nk", False, False, torch.float32, device)
    ones = torch.ones(1, device=device)
    out = launch_scaled_mm(a, b, ones, ones, torch.float32, None, azp_adj, azp, config=config)
    exact, _ = scaled_mm_float64(a, b, ones, ones, None, azp_adj, azp)
    assert exact.abs().max() < 2**24  # so float32 holds the integers exactly
    assert torch.equal(out.double().cpu(), exact.cpu())


@pytest.mark.parametrize("swap_ab", [0, 1])
@pytest.mark.parametrize("split_k", [1, 4])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_fp32_output_equals_the_torch_reference_bit_for_bit(scheme, split_k, swap_ab, device):
    """Same fp32 steps in the same order, no FMA contraction: the Triton epilogue is the reference's."""
    from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm

    m, k, n = 9, 80, 24
    a, b, sa, sb, bias, azp_adj, azp = make_problem(scheme, m, k, n, "nk", True, True, torch.float32, device)
    config = dataclasses.replace(SMALL_TILES, split_k=split_k, swap_ab=swap_ab)
    out = launch_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp, config=config)
    cpu = [None if t is None else t.cpu() for t in (a, b, sa, sb, bias, azp_adj, azp)]
    ref = ops.torch_scaled_mm(*cpu[:4], torch.float32, *cpu[4:])
    assert torch.equal(out.cpu(), ref)


def _hopper_mid_batch_tiles() -> list:
    """Every tile the Hopper rule picks between 17 and 512 rows on the shapes it was fitted to."""
    from vllm_int8.ops.hopper_configs import hopper_config

    weights = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (37888, 3584), (3584, 18944),
               (1280, 8192), (2560, 8192), (8192, 1024)]  # fmt: skip
    return sorted({hopper_config(m, n, k) for m in (32, 64, 128, 256, 512) for n, k in weights}, key=str)


def _tile_id(cfg) -> str:
    tma = f"-tma{cfg.programs_per_sm}" if cfg.tma else ""
    return f"{cfg.block_m}x{cfg.block_n}x{cfg.block_k}-s{cfg.num_stages}-split{cfg.split_k}-swap{cfg.swap_ab}{tma}"


@pytest.mark.parametrize("config", _hopper_mid_batch_tiles(), ids=_tile_id)
def test_every_hopper_mid_batch_tile_equals_the_reference_bit_for_bit(config, device):
    """The rule's mid-batch tiles (split K, swapped, the persistent TMA kernel on a GPU that has it)
    over ragged M and N: fp32 output bit for bit the torch reference's."""
    from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm

    m, k, n = 100, 1024, 136
    a, b, sa, sb, bias, azp_adj, azp = make_problem("asym_token", m, k, n, "nk", True, True, torch.float32, device)
    out = launch_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp, config=config)
    cpu = [None if t is None else t.cpu() for t in (a, b, sa, sb, bias, azp_adj, azp)]
    assert torch.equal(out.cpu(), ops.torch_scaled_mm(*cpu[:4], torch.float32, *cpu[4:]))


def test_empty_m_gives_empty_output(device):
    a = int8(0, 32, device=device)
    b = int8(32, 8, device=device)
    one = torch.ones(1, device=device)
    out = ops.triton_scaled_mm(a, b, one, one, torch.bfloat16)
    assert out.shape == (0, 8) and out.dtype == torch.bfloat16


@pytest.mark.parametrize("shape", [(3, 1, 5), (4, 17, 1), (1, 1, 1)])
def test_degenerate_dimensions(shape, device):
    m, k, n = shape
    a, b, sa, sb, bias, azp_adj, azp = make_problem("asym_token", m, k, n, "nk", True, True, torch.float32, device)
    out = ops.triton_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp)
    ref, magnitude = scaled_mm_float64(a, b, sa, sb, bias, azp_adj, azp)
    assert_within_rounding(out, ref, magnitude)


@pytest.mark.parametrize("split_k", [2, 3, 7])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_split_k_is_exact_and_leaves_a_clean_workspace(scheme, split_k, device):
    """K-slices (some empty: 7 slices of 4 K-steps) reduce exactly; repeated calls stay exact."""
    from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm
    from vllm_int8.ops.split_k_workspace import all_counters

    config = dataclasses.replace(SMALL_TILES, split_k=split_k)
    ones = torch.ones(1, device=device)
    for m, k, n in [(3, 100, 35), (19, 64, 48), (1, 33, 17)]:
        a, b, _, _, _, azp_adj, azp = make_problem(scheme, m, k, n, "nk", False, False, torch.float32, device)
        exact, _ = scaled_mm_float64(a, b, ones, ones, None, azp_adj, azp)
        for _ in range(2):
            out = launch_scaled_mm(a, b, ones, ones, torch.float32, None, azp_adj, azp, config=config)
            assert torch.equal(out.double().cpu(), exact.cpu())
    assert all_counters() and not any(counters.any() for counters in all_counters())


def test_split_k_with_scales_and_bias_matches_float64(device):
    from vllm_int8.ops.scaled_mm_kernel import launch_scaled_mm

    m, k, n = 5, 130, 40
    a, b, sa, sb, bias, azp_adj, azp = make_problem("asym_token", m, k, n, "nk", True, True, torch.bfloat16, device)
    config = dataclasses.replace(SMALL_TILES, split_k=4)
    out = launch_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, azp_adj, azp, config=config)
    assert_within_rounding(out, *scaled_mm_float64(a, b, sa, sb, bias, azp_adj, azp))


@pytest.mark.parametrize("m", [1, 5, 16, 17])
def test_rows_past_m_are_masked_only_in_a_single_short_tile_row(m):
    """M < BLOCK_M (decode) loads only the real rows (copies of them would all hit the same L2
    lines); one-row quantizing launches load their row once anyway; everything else re-reads."""
    from vllm_int8.ops.scaled_mm_kernel import A_INT8, A_QUANT_DYNAMIC, kernel_constexprs

    def masked(a_mode):
        _, constexprs = kernel_constexprs(m, 64, 64, SMALL_TILES, m, 64, False, True, True, a_mode, False)
        return constexprs["MASK_A_ROWS"]

    assert masked(A_INT8) == (m < SMALL_TILES.block_m)
    assert masked(A_QUANT_DYNAMIC) == (1 < m < SMALL_TILES.block_m)


def test_runs_tma_needs_a_tma_config_a_tma_gpu_and_tma_layouts(monkeypatch):
    """The one decision between the TMA and the pointer kernel (ordinary launches and both plans)."""
    from vllm_int8.ops import scaled_mm_kernel as mm

    a, w = torch.zeros(64, 128, dtype=torch.int8), torch.zeros(96, 128, dtype=torch.int8).t()
    out = torch.zeros(64, 96, dtype=torch.bfloat16)
    tma_cfg = dataclasses.replace(SMALL_TILES, tma=1)
    assert not mm.runs_tma(tma_cfg, a, w, out)  # no TMA on this device
    monkeypatch.setattr(mm, "tma_available", lambda device: True)
    assert mm.runs_tma(tma_cfg, a, w, out)
    assert not mm.runs_tma(dataclasses.replace(tma_cfg, tma=0), a, w, out)
    assert not mm.runs_tma(tma_cfg, a, torch.zeros(128, 96, dtype=torch.int8), out)  # a [K, N] row-major weight
