"""LM-eval accuracy of INT8 W8A8 models on this plugin's kernels (vLLM's harness, our backend).

    pytest -s -v .buildkite/lm-eval-harness/test_lm_eval_correctness.py \\
        --config-list-file=configs/models-small.txt --tp-size=1
"""

from pathlib import Path

import pytest
import yaml

from vllm_int8.eval.harness import (
    build_lm,
    check_baseline_band,
    check_metrics,
    check_model,
    launch_lm_eval,
    rocm_arch_skip_reason,
    scoped_env,
)
from vllm_int8.platform import current_platform


def _check_rocm_gpu_arch_requirement(eval_config: dict) -> None:
    """Skip a config whose `required_gpu_arch` names no arch of this ROCm GPU; ignored off ROCm."""
    reason = rocm_arch_skip_reason(eval_config, current_platform())
    if reason:
        pytest.skip(reason)


def test_lm_eval_correctness_param(config_filename: Path, tp_size: int):
    eval_config = yaml.safe_load(Path(config_filename).read_text())
    _check_rocm_gpu_arch_requirement(eval_config)
    with scoped_env(eval_config.get("env_vars")):
        lm = build_lm(eval_config, tp_size=tp_size)
        # Beyond vLLM: the layers must be on the expected kernel before anything is evaluated.
        problems = check_model(eval_config, lm, current_platform().kind)
        assert not problems, f"{config_filename.name}: {problems}"
        results, lm = launch_lm_eval(eval_config, tp_size=tp_size, lm=lm)
    checks = check_metrics(eval_config, results)
    bands, band_problems = check_baseline_band(config_filename, eval_config, results)
    print(f"\n{config_filename.name}: scheme {getattr(lm, 'scheme_name', '?')} on {getattr(lm, 'kernel_name', '?')}")
    for c in checks:  # every metric first, then the verdict
        print(f"{c.task} | {c.metric}: ground_truth={c.expected:.4f} | measured={c.measured:.4f} | rtol={c.rtol}")
    for b in bands:
        print(f"{b.task} | {b.metric}: float={b.baseline:.4f} | measured={b.measured:.4f} | max_drop={b.max_drop}")
    failed = [f"{c.task} {c.metric}: {c.measured:.4f} vs {c.expected:.4f}" for c in checks if not c.passed]
    assert not failed, f"metrics out of tolerance: {failed}"
    assert not band_problems, f"against the float baseline: {band_problems}"
