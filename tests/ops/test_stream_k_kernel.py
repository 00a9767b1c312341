"""The stream-K GEMM against float64 math and the torch reference: ranges that split tiles between
two or more programs, programs inside one tile, ragged K, every scheme; its counters end zero."""

import dataclasses

import pytest
import torch

from tests.oracle import scaled_mm_float64
from tests.problems import GEMM_SCHEMES, SMALL_TILES, make_problem
from vllm_int8 import ops
from vllm_int8.ops import split_k_workspace
from vllm_int8.ops.mm_configs import MMConfig
from vllm_int8.ops.scaled_mm_kernel import (
    A_QUANT_DYNAMIC,
    launch_config,
    launch_scaled_mm,
    record_launches,
)
from vllm_int8.ops.stream_k_kernel import stream_k_programs

# (M, K, N): 3x3 tiles of 3 K-steps; ragged M/N and a masked K; more iterations than programs.
SHAPES = [(40, 96, 40), (19, 35, 33), (200, 512, 300)]
WIDE = MMConfig(64, 64, 64, group_m=4, num_warps=4, num_stages=3)  # wgmma-sized tiles on the GPU


def sms(device) -> int:
    return torch.cuda.get_device_properties(0).multi_processor_count if device == "cuda" else 4


@pytest.mark.parametrize("per_sm", [1, 2, 7])
@pytest.mark.parametrize("scheme", GEMM_SCHEMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_integer_part_is_exact(shape, scheme, per_sm, device):
    """Unit scales and fp32 output expose the int32 sum itself: it must equal the exact integer."""
    m, k, n = shape
    cfg = dataclasses.replace(SMALL_TILES, stream_k=per_sm)
    a, b, _, _, _, azp_adj, azp = make_problem(scheme, m, k, n, "nk", False, False, torch.float32, device)
    ones = torch.ones(1, device=device)
    with record_launches() as log:
        out = launch_scaled_mm(a, b, ones, ones, torch.float32, None, azp_adj, azp, config=cfg)
    assert log[-1][3].stream_k == per_sm  # the stream-K kernel ran
    exact, _ = scaled_mm_float64(a, b, ones, ones, None, azp_adj, azp)
    assert torch.equal(out.double().cpu(), exact.cpu())


@pytest.mark.parametrize("per_sm", [1, 3])
@pytest.mark.parametrize("scheme", GEMM_SCHEMES)
def test_wide_tiles_split_between_programs_equal_the_reference_bit_for_bit(scheme, per_sm, device):
    """fp32 out, per-channel scales and bias: the torch reference's steps exactly. 15 tiles of 16
    K-steps over 4-240 programs: ranges end inside tiles, so tiles are shared."""
    m, k, n = 192, 1024, 320
    cfg = dataclasses.replace(WIDE, stream_k=per_sm)
    a, b, sa, sb, bias, azp_adj, azp = make_problem(scheme, m, k, n, "kn", True, True, torch.float32, device)
    programs = stream_k_programs(m, n, k, cfg, sms(device))
    assert programs > 1 and (15 * 16 / programs) % 16  # ranges are no whole number of tiles
    out = launch_scaled_mm(a, b, sa, sb, torch.float32, bias, azp_adj, azp, config=cfg)
    cpu = [None if t is None else t.cpu() for t in (a, b, sa, sb, bias, azp_adj, azp)]
    assert torch.equal(out.cpu(), ops.torch_scaled_mm(*cpu[:4], torch.float32, *cpu[4:]))


def test_counters_are_zero_after_every_launch(device):
    cfg = dataclasses.replace(SMALL_TILES, stream_k=2)
    for m in (40, 17, 64):
        a, b, sa, sb, bias, azp_adj, azp = make_problem("asym_token", m, 96, 40, "nk", True, True, torch.bfloat16,
                                                        device)  # fmt: skip
        launch_scaled_mm(a, b, sa, sb, torch.bfloat16, bias, azp_adj, azp, config=cfg)
    assert all(int(c.abs().sum()) == 0 for c in split_k_workspace.all_counters())


def test_grid_never_exceeds_the_iterations():
    cfg = dataclasses.replace(SMALL_TILES, stream_k=2)
    assert stream_k_programs(40, 40, 96, cfg, 132) == 27  # 9 tiles x 3 K-steps
    assert stream_k_programs(2000, 4000, 4096, cfg, 132) == 264


def test_quantizing_launches_drop_stream_k():
    cfg = dataclasses.replace(SMALL_TILES, stream_k=1)
    assert launch_config(cfg, 96).stream_k == 1
    assert launch_config(cfg, 96, A_QUANT_DYNAMIC).stream_k == 0


@pytest.mark.parametrize("other", [{"split_k": 2}, {"swap_ab": 1}, {"tma": 1}])
def test_stream_k_excludes_split_k_swapped_and_tma_tiles(other):
    with pytest.raises(ValueError, match="stream_k excludes"):
        MMConfig(64, 64, 64, stream_k=1, **other)
