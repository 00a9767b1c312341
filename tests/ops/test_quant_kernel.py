"""scaled_int8_quant: the Triton kernel against the torch reference (bit for bit) and float64 math."""

import math

import pytest
import torch
import triton
import triton.language as tl

from vllm_int8 import ops
from vllm_int8.ops.quant_kernel import (
    RECIPROCAL_MAX_SCALE,
    RECIPROCAL_MIN_SCALE,
    UNCORRECTED_QUOTIENT,
    divide_by_row,
)
from vllm_int8.ops.reference import QUOTIENT_CLAMP

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
# K = 1, ragged, a power of two, rows packed several to a program (with masked rows: 70 rows of 40
# at 102 a program), a long one-pass row (9000), 33000 > the one-pass limit (two-pass, masked tail), and
# long rows in a batch of over 128 (one pass, 16 warps). Small batches of rows of 1024+ elements are
# split over several programs each: (2, 9000) over 16 (masked tail slices), (1, 4096) over 8.
SHAPES = [(1, 1), (3, 7), (5, 64), (2, 300), (2, 9000), (1, 4096), (2, 3, 40), (70, 40), (2, 33000), (130, 9000)]


def random_activations(shape, dtype, device):
    x = torch.randn(shape, device=device) * torch.rand(shape[:-1] + (1,), device=device) * 10
    return x.to(dtype)


def assert_dequant_close(x, q, scale, azp):
    """Values dequantize to within half a step of x (a step is the row's scale); saturated ones
    (q = -128 or 127) within one step, since the zero point itself was rounded."""
    x64 = x.double().reshape(-1, x.shape[-1])
    s64 = scale.double().reshape(-1, 1)
    zp = 0 if azp is None else azp.double().reshape(-1, 1)
    q64 = q.double().reshape(x64.shape)
    deq = s64 * (q64 - zp)
    steps = torch.where((q64 == -128) | (q64 == 127), 1.0, 0.5).double()
    assert ((deq - x64).abs() <= s64 * steps * (1 + 1e-5) + 1e-30).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_dynamic_matches_reference_and_float64(shape, dtype, symmetric, device):
    x = random_activations(shape, dtype, device)
    q, scale, azp = ops.triton_scaled_int8_quant(x, symmetric=symmetric)
    q_ref, scale_ref, azp_ref = ops.torch_scaled_int8_quant(x.cpu(), symmetric=symmetric)
    assert q.shape == x.shape and q.dtype == torch.int8
    rows = x.numel() // x.shape[-1]
    assert scale.shape == (rows, 1) and scale.dtype == torch.float32
    torch.testing.assert_close(q.cpu(), q_ref, rtol=0, atol=0)
    torch.testing.assert_close(scale.cpu(), scale_ref, rtol=0, atol=0)
    x64 = x.double().reshape(rows, -1)
    if symmetric:
        assert azp is None
        expected = x64.abs().amax(-1, keepdim=True) / 127
    else:
        assert azp.shape == (rows, 1) and azp.dtype == torch.int32
        torch.testing.assert_close(azp.cpu(), azp_ref, rtol=0, atol=0)
        assert ((azp >= -128) & (azp <= 127)).all()
        expected = (x64.amax(-1, keepdim=True).clamp(min=0) - x64.amin(-1, keepdim=True).clamp(max=0)) / 255
    torch.testing.assert_close(scale.double(), expected, rtol=2**-22, atol=0)
    assert_dequant_close(x, q, scale, azp)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_static_matches_reference_and_float64(shape, dtype, symmetric, device):
    x = random_activations(shape, dtype, device)
    scale = torch.tensor([0.037], device=device)
    azp = None if symmetric else torch.tensor([-17], dtype=torch.int32, device=device)
    q, scale_out, azp_out = ops.triton_scaled_int8_quant(x, scale, azp, symmetric=symmetric)
    q_ref, _, _ = ops.torch_scaled_int8_quant(x.cpu(), scale.cpu(), None if azp is None else azp.cpu(), symmetric)
    assert scale_out is scale and azp_out is azp
    torch.testing.assert_close(q.cpu(), q_ref, rtol=0, atol=0)
    zp = 0 if azp is None else -17
    expected = torch.clamp(torch.round(x.double() / 0.037) + zp, -128, 127)  # float64 oracle
    # fp32 division may fall on the other side of a .5 tie than float64: off by one at most.
    assert (q.double() - expected).abs().max() <= 1


def test_round_half_to_even(device):
    x = torch.tensor([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 126.5]], device=device)
    q, _, _ = ops.triton_scaled_int8_quant(x, torch.ones(1, device=device))
    assert q.tolist() == [[0, 2, 2, 0, -2, -2, 4, 126]]


@pytest.mark.parametrize("symmetric", [True, False])
def test_degenerate_rows_dequantize_to_their_values(symmetric, device):
    """Constant rows, an all-zero row, a row with one nonzero: no division by zero, exact values back."""
    x = torch.tensor(
        [[2.5] * 6, [-3.0] * 6, [0.0] * 6, [0.0, 0.0, 7.0, 0.0, 0.0, 0.0]], device=device, dtype=torch.float32
    )
    q, scale, azp = ops.triton_scaled_int8_quant(x, symmetric=symmetric)
    q_ref, scale_ref, azp_ref = ops.torch_scaled_int8_quant(x.cpu(), symmetric=symmetric)
    assert torch.equal(q.cpu(), q_ref) and torch.equal(scale.cpu(), scale_ref)
    assert torch.isfinite(scale).all()
    zp = 0 if azp is None else azp.double()
    deq = scale.double() * (q.double() - zp)
    torch.testing.assert_close(deq, x.double(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("symmetric", [True, False])
def test_zero_static_scale_quantizes_to_the_zero_point(symmetric, device):
    x = torch.randn(4, 33, device=device)
    azp = None if symmetric else torch.tensor([5], dtype=torch.int32, device=device)
    q, _, _ = ops.triton_scaled_int8_quant(x, torch.zeros(1, device=device), azp, symmetric)
    assert (q == (0 if symmetric else 5)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_extreme_magnitudes(dtype, symmetric, device):
    big = torch.finfo(dtype).max / 2
    tiny = torch.finfo(dtype).tiny
    x = torch.tensor([[big, -big, 1.0, 0.0], [tiny, -tiny, tiny * 3, 0.0], [big, big, big, big]], dtype=dtype)
    x = x.to(device)
    q, scale, azp = ops.triton_scaled_int8_quant(x, symmetric=symmetric)
    q_ref, scale_ref, azp_ref = ops.torch_scaled_int8_quant(x.cpu(), symmetric=symmetric)
    assert torch.equal(q.cpu(), q_ref) and torch.equal(scale.cpu(), scale_ref)
    assert torch.isfinite(scale).all() and (scale > 0).all()
    assert_dequant_close(x, q, scale, azp)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("symmetric", [True, False])
def test_non_finite_row_is_isolated(bad, symmetric, device):
    """A row with NaN/inf gets scale NaN, q 0, azp 0; every other row is untouched."""
    x = torch.randn(3, 50, device=device)
    clean_q, clean_scale, _ = ops.triton_scaled_int8_quant(x, symmetric=symmetric)
    x[1, 17] = bad
    q, scale, azp = ops.triton_scaled_int8_quant(x, symmetric=symmetric)
    assert torch.isnan(scale[1]).all() and (q[1] == 0).all()
    if azp is not None:
        assert azp[1].item() == 0
    for row in (0, 2):
        assert torch.equal(q[row], clean_q[row]) and torch.equal(scale[row], clean_scale[row])


def test_non_contiguous_input_is_accepted(device):
    x = torch.randn(40, 6, device=device).t()  # [6, 40] with stride (1, 6)
    q, scale, _ = ops.triton_scaled_int8_quant(x)
    q_ref, scale_ref, _ = ops.torch_scaled_int8_quant(x.contiguous().cpu())
    assert torch.equal(q.cpu(), q_ref) and torch.equal(scale.cpu(), scale_ref)


def test_empty_batch(device):
    x = torch.randn(0, 16, device=device)
    q, scale, azp = ops.triton_scaled_int8_quant(x, symmetric=False)
    assert q.shape == (0, 16) and scale.shape == (0, 1) and azp.shape == (0, 1)


@pytest.mark.parametrize(("k", "m", "split"), [(9000, 2, 16), (4096, 1, 8), (28672, 16, 8), (4096, 16, 8),
                                                (4096, 17, 8), (14336, 64, 2), (4096, 65, 1), (1024, 1, 2),
                                                (511, 1, 1), (33000, 1, 1)])  # fmt: skip
def test_small_batches_of_long_rows_are_split_over_programs(k, m, split):
    """The split path is what SHAPES' small batches of long rows exercise (not a dead branch)."""
    from vllm_int8.ops.quant_kernel import _launch_shape

    one_pass, rows, block, _, programs_per_row = _launch_shape(k, m)
    assert programs_per_row == split
    if split > 1:
        assert one_pass and block // split >= 512


ONE_OR_TWO_PASSES = [(9000, 130, True), (14336, 4096, True), (16384, 129, True), (16500, 128, True),
                     (16500, 129, False), (28672, 4096, False), (33000, 1, False)]  # fmt: skip


@pytest.mark.parametrize(("k", "m", "one_pass"), ONE_OR_TWO_PASSES)
def test_one_or_two_passes(k, m, one_pass):
    """The launch rule's choice (SHAPES run both paths: (2, 33000) two-pass, (130, 9000) one pass)."""
    from vllm_int8.ops.quant_kernel import _launch_shape

    assert _launch_shape(k, m)[0] is one_pass


@triton.jit
def _divide_kernel(x_ptr, d_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=1.0)
    divisor = tl.load(d_ptr + offs, mask=offs < n, other=1.0)
    tl.store(out_ptr + offs, divide_by_row(x, divisor, tl.math.div_rn(1.0, divisor), True), mask=offs < n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reciprocal_quotient_is_the_ieee_quotient(dtype, device):
    """divide_by_row's reciprocal path against IEEE fp32 division (torch on the CPU), on random
    significands of x (of every magnitude `dtype` holds) and of divisors over the whole
    [RECIPROCAL_MIN_SCALE, RECIPROCAL_MAX_SCALE] range: equal bit for bit for |x| >= 2**-100 and
    quotients below UNCORRECTED_QUOTIENT; beyond it (the uncorrected product) past the clamp;
    for tinier x (the residual is subnormal, so inexact) quotients below 2**-30 that round to 0."""
    n = 1 << 16
    info = torch.finfo(dtype)
    exponents = torch.randint(math.ceil(math.log2(info.tiny)), math.floor(math.log2(info.max)), (n,))
    x = ((torch.rand(n) + 1) * 2.0 ** exponents.double() * torch.sign(torch.randn(n))).to(dtype).float()
    low, high = math.log2(RECIPROCAL_MIN_SCALE), math.log2(RECIPROCAL_MAX_SCALE)
    divisor = ((torch.rand(n) + 1) * 2.0 ** torch.randint(int(low), int(high), (n,)).double()).float()
    divisor = torch.where(torch.rand(n) < 0.5, -divisor, divisor)
    x[: n // 4] = (divisor[: n // 4] * (torch.rand(n // 4) * 300 - 150)).to(dtype).float()  # quotients in int8 range
    out = torch.empty(n, device=device)
    _divide_kernel[(triton.cdiv(n, 1024),)](x.to(device), divisor.to(device), out, n, BLOCK=1024)
    out, expected = out.cpu(), x / divisor
    exact = (x.abs() >= 2.0**-100) & (expected.abs() < UNCORRECTED_QUOTIENT)
    assert exact.float().mean() > 0.5
    assert torch.equal(out[exact], expected[exact])
    big = expected.abs() >= UNCORRECTED_QUOTIENT
    assert (out[big].abs() >= QUOTIENT_CLAMP).all() and torch.equal(out[big].sign(), expected[big].sign())
    tiny = x.abs() < 2.0**-100
    assert (out[tiny].abs() < 2.0**-30).all()


@triton.jit
def _count_quotient_mismatches(x_ptr, nx, count_ptr, BLOCK: tl.constexpr):
    significand = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    divisor = (significand | 0x3F800000).to(tl.float32, bitcast=True)  # every fp32 in [1, 2)
    recip = tl.math.div_rn(1.0, divisor)
    wrong = tl.zeros((BLOCK,), tl.int32)
    for i in range(nx):
        x = tl.load(x_ptr + i)
        wrong += (divide_by_row(x, divisor, recip, True) != tl.math.div_rn(x, divisor)).to(tl.int32)
    tl.atomic_add(count_ptr, tl.sum(wrong))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="2**33 divisions: the interpreter checks random pairs above")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reciprocal_quotient_for_every_significand_pair(dtype, device):
    """Every significand (and sign) of a 16-bit x with every fp32 significand of the divisor, on
    the GPU against its own div_rn. Scaling x or the divisor by a power of two scales every step
    of both exactly (no under- or overflow in the checked range), so this covers all of it."""
    bits = 7 if dtype == torch.bfloat16 else 10
    significands = torch.arange(1 << bits, dtype=torch.float64) / (1 << bits) + 1
    x = torch.cat([significands, -significands]) * 64
    assert torch.equal(x.to(dtype).double(), x)  # exactly representable
    count = torch.zeros(1, dtype=torch.int32, device=device)
    _count_quotient_mismatches[((1 << 23) // 1024,)](x.float().to(device), x.numel(), count, BLOCK=1024)
    assert count.item() == 0


@pytest.mark.parametrize("scale", [1e-30, 2.0**-60, 2.0**-61, 2.0**60, 2.0**61, 1e30, 1e-40, float("inf"),
                                   float("nan"), -0.037, 3.3e-5])  # fmt: skip
@pytest.mark.parametrize("azp", [None, 0, 1000, -1000, 639, 640, -640, -641, 2**31 - 1, -(2**31)])
def test_static_scales_and_zero_points_at_the_edges(scale, azp, device):
    """Scales outside the reciprocal's range take the IEEE division; zero points far outside int8
    saturate like the reference's two clamps. Inputs of every magnitude, and non-finite ones."""
    x = torch.randn(3, 257) * 2.0 ** torch.randint(-40, 40, (3, 257)).float()
    x[0, :40] = scale * (torch.rand(40) * 400 - 200)  # quotients across the int8 range
    x[1, :4] = torch.tensor([float("inf"), float("-inf"), float("nan"), 0.0])
    symmetric = azp is None
    s = torch.tensor([scale], dtype=torch.float32)
    zp = None if symmetric else torch.tensor([azp], dtype=torch.int32)
    q, _, _ = ops.triton_scaled_int8_quant(x.to(device), s.to(device), None if symmetric else zp.to(device), symmetric)
    q_ref, _, _ = ops.torch_scaled_int8_quant(x, s, zp, symmetric)
    assert torch.equal(q.cpu(), q_ref)
