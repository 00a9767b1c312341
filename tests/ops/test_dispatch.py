"""Backend choice: Triton on GPU tensors, the torch reference on CPU, overridable by environment."""

import pytest
import torch

from vllm_int8.ops import dispatch


def test_auto_picks_triton_on_gpu_and_torch_on_cpu(monkeypatch):
    monkeypatch.delenv(dispatch.BACKEND_ENV, raising=False)
    assert dispatch.use_triton(torch.device("cuda"))
    assert not dispatch.use_triton(torch.device("cpu"))


@pytest.mark.parametrize("value, expected", [("triton", True), ("TORCH", False)])
def test_environment_forces_a_backend(monkeypatch, value, expected):
    monkeypatch.setenv(dispatch.BACKEND_ENV, value)
    assert dispatch.use_triton(torch.device("cpu")) is expected
    assert dispatch.use_triton(torch.device("cuda")) is expected


def test_unknown_backend_is_an_error(monkeypatch):
    monkeypatch.setenv(dispatch.BACKEND_ENV, "cutlass")
    with pytest.raises(ValueError, match="VLLM_INT8_OPS_BACKEND"):
        dispatch.use_triton(torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="Triton on CPU tensors needs the interpreter (CPU runs)")
def test_forced_triton_on_cpu_runs_the_kernel(monkeypatch):
    """With the interpreter on, forcing Triton on CPU tensors gives the reference's int8 values."""
    monkeypatch.setenv(dispatch.BACKEND_ENV, "triton")
    x = torch.randn(3, 40)
    q, scale, azp = dispatch.scaled_int8_quant(x, symmetric=False)
    q_ref, scale_ref, azp_ref = dispatch.torch_scaled_int8_quant(x, symmetric=False)
    assert torch.equal(q, q_ref) and torch.equal(scale, scale_ref) and torch.equal(azp, azp_ref)
