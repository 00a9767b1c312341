"""Shared fixtures: run the Triton kernels natively on a GPU, else through the Triton interpreter.

TRITON_INTERPRET must be set before any @triton.jit function is created, so it is set here,
before the test modules import vllm_int8.
"""

import os
import zlib

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def device() -> str:
    return DEVICE


@pytest.fixture(autouse=True)
def _seed(request) -> None:
    """Random data that differs per test and is reproducible (seeded from the test id)."""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))
