"""Shared fixtures of the plugin-layer tests."""

import pytest

from vllm_int8.linear import aiter_kernel


@pytest.fixture
def aiter_env(monkeypatch):
    """AITER switched on and importable (a stand-in: no AMD GPU here) unless a test says otherwise."""
    monkeypatch.setenv("VLLM_ROCM_USE_AITER", "1")
    monkeypatch.delenv("VLLM_ROCM_USE_AITER_LINEAR", raising=False)
    monkeypatch.delenv("VLLM_DISABLED_KERNELS", raising=False)
    monkeypatch.setattr(aiter_kernel, "aiter_importable", lambda: True)
    return monkeypatch
