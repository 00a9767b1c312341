"""torch.library.opcheck on every custom op: schema, fake (meta) = real layouts, AOT dispatch."""

import pytest
import torch

from tests.problems import make_problem
from vllm_int8 import ops  # noqa: F401 - registers the ops

# test_aot_dispatch_dynamic compiles; the interpreter makes that slow, so it runs on GPUs only.
CHECKS = ("test_schema", "test_faketensor") + (("test_aot_dispatch_dynamic",) if torch.cuda.is_available() else ())


def layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """x itself, its transpose's transpose (dense, other strides) and a sliced, non-dense view."""
    wide = torch.cat([x, x], dim=-1)
    return {
        "contiguous": x,
        "transposed": x.t().contiguous().t(),
        "sliced": wide[..., : x.shape[-1]],
    }


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_quant_dynamic(symmetric, layout, backend, device):
    x = layouts(torch.randn(6, 20, device=device))[layout]
    torch.library.opcheck(torch.ops.vllm_int8.quant_dynamic.default, (x, symmetric, backend), test_utils=CHECKS)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_quant_static(symmetric, layout, backend, device):
    x = layouts(torch.randn(6, 20, device=device))[layout]
    scale = torch.tensor([0.03], device=device)
    azp = None if symmetric else torch.tensor([4], dtype=torch.int32, device=device)
    args = (x, scale, azp, symmetric, backend)
    torch.library.opcheck(torch.ops.vllm_int8.quant_static.default, args, test_utils=CHECKS)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
@pytest.mark.parametrize("scheme", ["sym_tensor", "asym_token", "asym_static"])
def test_scaled_mm(scheme, layout, backend, device):
    a, b, sa, sb, bias, azp_adj, azp = make_problem(scheme, 5, 24, 12, "nk", True, True, torch.bfloat16, device)
    a = layouts(a)[layout]
    args = (a, b, sa, sb, torch.bfloat16, bias, azp_adj, azp, backend)
    torch.library.opcheck(torch.ops.vllm_int8.scaled_mm.default, args, test_utils=CHECKS)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
@pytest.mark.parametrize("m", [1, 6])  # one launch and two launches on GPUs
@pytest.mark.parametrize("scheme", ["dynamic_asym", "static_sym"])
def test_quant_scaled_mm(scheme, m, layout, backend, device):
    from tests.ops.test_quant_mm import layer_problem

    p = layer_problem(scheme, m, 20, 12, torch.bfloat16, True, True, device)
    x = layouts(p["x"])[layout]
    args = (x, p["weight"], p["scale_b"], torch.bfloat16, p["bias"], p["azp_adj"], p["input_scale"],
            p["input_zero_point"], p["symmetric"], backend)  # fmt: skip
    torch.library.opcheck(torch.ops.vllm_int8.quant_scaled_mm.default, args, test_utils=CHECKS)
