"""GPU check: compute-sanitizer's memcheck over every kernel path on ragged shapes finds nothing."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a GPU check: compute-sanitizer runs CUDA kernels")
@pytest.mark.skipif(shutil.which("compute-sanitizer") is None, reason="compute-sanitizer is not on PATH")
def test_memcheck_finds_no_errors():
    cmd = ["compute-sanitizer", "--tool", "memcheck", "--error-exitcode", "3", sys.executable, "-m",
           "tests.gpu.sanitize_target"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "ERROR SUMMARY: 0 errors" in output and "cases checked" in output, output[-2000:]
