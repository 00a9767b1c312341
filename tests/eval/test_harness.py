"""The accuracy harness's logic: arch gate (stand-in platforms), tolerances, env scoping, pipelines."""

import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from vllm_int8.eval.harness import (
    DEFAULT_BACKEND,
    DEFAULT_RTOL,
    VLLM_BACKEND,
    check_metrics,
    load_eval_config,
    metric_passes,
    rocm_arch_skip_reason,
    scoped_env,
)
from vllm_int8.eval.tasks import local_task
from vllm_int8.platform import CPU, CUDA, ROCM, Platform, use_platform

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / ".buildkite" / "lm-eval-harness" / "test_lm_eval_correctness.py"


GATED = {"model_name": "embedded", "required_gpu_arch": ["gfx942", "gfx950"]}
MI325 = Platform(ROCM, "gfx942:sramecc+:xnack-", "AMD Instinct MI325X", 94)


def test_rocm_gfx942_runs_a_gfx942_config():
    assert rocm_arch_skip_reason(GATED, MI325) is None


def test_rocm_gfx90a_skips_with_both_archs_named():
    reason = rocm_arch_skip_reason(GATED, Platform(ROCM, "gfx90a:sramecc+:xnack-", "AMD Instinct MI250X", 90))
    assert reason and "gfx942" in reason and "gfx950" in reason and "gfx90a" in reason


@pytest.mark.parametrize("platform", [Platform(CUDA, "sm_90", "H100", 90), Platform(CPU)], ids=["cuda", "cpu"])
def test_other_platforms_ignore_the_field(platform):
    assert rocm_arch_skip_reason(GATED, platform) is None


def test_no_field_runs_on_any_rocm_gpu():
    assert rocm_arch_skip_reason({"model_name": "embedded"}, Platform(ROCM, "gfx1100", "Radeon", 110)) is None


def test_the_harness_skips_through_the_package_gate(monkeypatch):
    """The .buildkite harness calls the package's gate with this process's platform."""
    spec = importlib.util.spec_from_file_location("lm_eval_harness_under_test", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with use_platform(Platform(ROCM, "gfx90a", "AMD Instinct MI250X", 90)):
        with pytest.raises(pytest.skip.Exception, match="gfx90a"):
            module._check_rocm_gpu_arch_requirement(GATED)
    with use_platform(MI325):
        try:
            module._check_rocm_gpu_arch_requirement(GATED)
        except pytest.skip.Exception as skipped:
            pytest.fail(f"a gfx942 config was skipped on a gfx942 GPU: {skipped}")


def test_tolerance_semantics():
    assert DEFAULT_RTOL == 0.08
    assert metric_passes(0.921, 1.0, 0.08) and not metric_passes(0.919, 1.0, 0.08)
    assert metric_passes(107.9, 100.0, 0.08, higher_is_better=False)
    assert not metric_passes(108.1, 100.0, 0.08, higher_is_better=False)


def test_check_metrics_uses_per_config_and_per_metric_rtol():
    config = {
        "rtol": 0.5,
        "tasks": [
            {"name": "t", "metrics": [{"name": "acc,none", "value": 1.0}, {"name": "b", "value": 1.0, "rtol": 0.0}]}
        ],
    }
    checks = check_metrics(config, {"results": {"t": {"acc,none": 0.6, "b": 0.99}}})
    assert [c.passed for c in checks] == [True, False]
    with pytest.raises(KeyError, match="reported no metric b"):
        check_metrics(config, {"results": {"t": {"acc,none": 0.6}}})


def test_env_vars_are_set_for_the_run_and_restored(monkeypatch):
    monkeypatch.setenv("VLLM_INT8_TEST_KEEP", "before")
    monkeypatch.delenv("VLLM_INT8_TEST_NEW", raising=False)
    with scoped_env({"VLLM_INT8_TEST_KEEP": "during", "VLLM_INT8_TEST_NEW": 1}):
        assert os.environ["VLLM_INT8_TEST_KEEP"] == "during" and os.environ["VLLM_INT8_TEST_NEW"] == "1"
    assert os.environ["VLLM_INT8_TEST_KEEP"] == "before" and "VLLM_INT8_TEST_NEW" not in os.environ


@pytest.mark.parametrize("list_file", sorted((REPO / "configs").glob("models-*.txt")), ids=lambda p: p.name)
def test_every_listed_config_exists_and_is_complete(list_file):
    names = [n.strip() for n in list_file.read_text().splitlines() if n.strip() and not n.startswith("#")]
    assert names
    for name in names:
        config = load_eval_config(list_file.parent / name)
        assert config["backend"] in (DEFAULT_BACKEND, VLLM_BACKEND) and config["limit"] > 0
        for task in config["tasks"]:
            assert isinstance(local_task(task["name"]), dict), f"{task['name']} has no local task YAML"
            assert all(m["value"] > 0 for m in task["metrics"]), f"{name}: expected values must be measured"
        if config.get("baseline"):
            assert (list_file.parent / "models" / config["baseline"]).is_file()


def test_local_tasks_point_at_existing_data():
    for path in (REPO / "configs" / "tasks").glob("*.yaml"):
        task = local_task(path.stem)
        for file in task["dataset_kwargs"]["data_files"].values():
            assert Path(file).is_file() and Path(file).stat().st_size > 10_000


@pytest.mark.parametrize("pipeline", ["test-amd.yaml", "test-cuda.yaml"])
def test_pipelines_parse_and_name_existing_paths(pipeline):
    steps = yaml.safe_load((REPO / ".buildkite" / pipeline).read_text())["steps"]
    assert steps
    for step in steps:
        for command in step["commands"]:
            for token in command.replace("=", " ").split():
                if token.startswith((".buildkite/", "configs/", "tests")):
                    assert (REPO / token).exists(), f"{pipeline}: {token} does not exist"


def test_the_mi325_step_runs_the_triton_fallback():
    steps = yaml.safe_load((REPO / ".buildkite" / "test-amd.yaml").read_text())["steps"]
    step = next(s for s in steps if s["label"] == "LM Eval Small Models (MI325)")
    assert step["env"]["VLLM_ROCM_USE_AITER"] == "0"
    assert any("--config-list-file=configs/models-mi3xx.txt --tp-size=1" in c for c in step["commands"])
