"""Every tensor argument of the public ops may be a strided view: the answer must not change."""

import pytest
import torch

from tests.oracle import assert_within_rounding, scaled_mm_float64
from tests.problems import make_problem
from vllm_int8 import ops

M, K, N = 4, 32, 8
STRIDED_ARGS = ["scale_a", "scale_b", "bias", "azp_adj", "azp", "input", "weight"]


def strided_copy(t: torch.Tensor, name: str) -> torch.Tensor:
    """The same values as `t`, held in a view that is not dense (every other element of a wider tensor)."""
    if name == "input":  # rows of a wider matrix, and columns two apart
        wide = torch.zeros(t.shape[0], 2 * t.shape[1], dtype=t.dtype, device=t.device)
        wide[:, ::2] = t
        view = wide[:, ::2]
    elif name == "weight":  # [K, N] row-major inside padded rows
        wide = torch.zeros(t.shape[0], t.shape[1] + 5, dtype=t.dtype, device=t.device)
        wide[:, : t.shape[1]] = t
        view = wide[:, : t.shape[1]]
    else:  # a column of a [n, 2] tensor, or every other element of a 1-D one
        wide = torch.full((t.numel(), 2), 7, dtype=t.dtype, device=t.device)
        wide[:, 0] = t.reshape(-1)
        view = wide[:, :1].reshape(t.shape) if t.dim() == 2 else wide.reshape(-1)[::2]
    assert torch.equal(view, t) and not view.is_contiguous() or t.numel() == 1
    return view


@pytest.mark.parametrize("which", STRIDED_ARGS + ["all"])
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_scaled_mm_with_strided_views(which, backend, device):
    a, b, sa, sb, bias, azp_adj, azp = make_problem("asym_token", M, K, N, "kn", True, True, torch.float32, device)
    args = dict(input=a, weight=b, scale_a=sa, scale_b=sb, bias=bias, azp_adj=azp_adj, azp=azp)
    ref, magnitude = scaled_mm_float64(a, b, sa, sb, bias, azp_adj, azp)
    for name in STRIDED_ARGS if which == "all" else [which]:
        args[name] = strided_copy(args[name], name)
    out = ops.scaled_mm(**args, out_dtype=torch.float32, backend=backend)
    assert_within_rounding(out, ref, magnitude)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_scaled_mm_with_the_issue_example(backend, device):
    """The reported case: scale_b a [N, 1] column of a wider tensor, bias every other element."""
    a = torch.randint(-128, 128, (M, K), dtype=torch.int8, device=device)
    w = torch.randint(-128, 128, (K, N), dtype=torch.int8, device=device)
    sa = torch.rand(1, device=device)
    sb = torch.rand(N, 2, device=device)[:, :1]
    bias = torch.randn(2 * N, device=device)[::2]
    out = ops.scaled_mm(a, w, sa, sb, torch.float32, bias, backend=backend)
    assert_within_rounding(out, *scaled_mm_float64(a, w, sa, sb, bias))


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("layout", ["transposed", "sliced_rows", "3d_permuted"])
def test_quant_with_strided_input(layout, static, symmetric, device):
    base = torch.randn(24, 40, device=device) * 3
    if layout == "transposed":
        x = base.t()  # [40, 24], stride (1, 40)
    elif layout == "sliced_rows":
        x = base[:, 8:32]  # rows 40 apart, 24 long
    else:
        x = base.reshape(4, 6, 40).permute(1, 0, 2)  # [6, 4, 40]
    assert not x.is_contiguous()
    scale = torch.tensor([0.02], device=device) if static else None
    azp = torch.tensor([5], dtype=torch.int32, device=device) if static and not symmetric else None
    q, s, z = ops.triton_scaled_int8_quant(x, scale, azp, symmetric)
    q_dense, s_dense, z_dense = ops.triton_scaled_int8_quant(x.contiguous(), scale, azp, symmetric)
    q_ref, s_ref, _ = ops.torch_scaled_int8_quant(x.cpu(), None if scale is None else scale.cpu(),
                                                  None if azp is None else azp.cpu(), symmetric)  # fmt: skip
    assert q.is_contiguous() and q.shape == x.shape
    assert torch.equal(q, q_dense) and torch.equal(q.cpu(), q_ref)
    assert torch.equal(s, s_dense) and torch.equal(s.cpu(), s_ref)
    if z is not None:
        assert torch.equal(z, z_dense)


def test_strided_static_scale_and_azp(device):
    x = torch.randn(5, 16, device=device)
    scale = torch.tensor([0.05, 9.0], device=device)[:1]
    azp = torch.tensor([[-3, 99]], dtype=torch.int32, device=device)[:, :1]
    q, _, _ = ops.triton_scaled_int8_quant(x, scale, azp, symmetric=False)
    expected = torch.clamp(torch.round(x.double().cpu() / 0.05) - 3, -128, 127)
    assert (q.double().cpu() - expected).abs().max() <= 1
