"""Accuracy checks as vLLM's lm-eval harness does them: one config -> lm-eval -> metrics vs rtol.

A config (YAML) names the model, scheme, tasks with expected metric values, and optionally
`limit`, `num_fewshot`, `batch_size`, `rtol` (default 0.08), `env_vars`, `backend` and
`required_gpu_arch`. A metric passes when `measured >= value * (1 - rtol)`; metrics that are
better when lower (perplexities, marked `higher_is_better: false`) pass when
`measured <= value * (1 + rtol)`, the same tolerance mirrored.

Beyond vLLM's one-sided check, which a model that silently skipped quantization would pass:
- before evaluating, `check_model` asserts `expected_kernel` (a class name, or a mapping from
  platform kind - cpu, cuda, rocm - to one) and `int8_layers` (checkpoint linears on int8 kernels);
- after, `check_baseline_band` compares each metric with the float `baseline` config's recorded
  value: worse by more than `max_drop` (relative; per config, or per metric) fails, and so does
  matching the float model on every metric to six digits (quantization that changed nothing was
  not applied).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from vllm_int8.eval.tasks import local_task

DEFAULT_RTOL = 0.08
DEFAULT_BACKEND = "vllm-int8"  # our HF backend (vllm_int8.eval.lm_eval_model)
VLLM_BACKEND = "vllm"  # a real vLLM engine, our kernels through the plugin (vllm_int8.eval.lm_eval_vllm)


def load_eval_config(path: str | Path) -> dict:
    config = yaml.safe_load(Path(path).read_text())
    for key in ("model_name", "tasks"):
        if key not in config:
            raise ValueError(f"{path}: the config needs '{key}'")
    return config


@contextlib.contextmanager
def scoped_env(env_vars: dict | None) -> Iterator[None]:
    """Set the config's env_vars for the run and restore the previous environment after."""
    env_vars = {k: str(v) for k, v in (env_vars or {}).items()}
    previous = {k: os.environ.get(k) for k in env_vars}
    os.environ.update(env_vars)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_lm(eval_config: dict, tp_size: int = 1, device: str = "auto"):
    """The lm-eval LM object of one config (the model loaded, nothing evaluated yet), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lm_eval.api.registry import get_model

    import vllm_int8.eval.lm_eval_model  # noqa: F401  (registers the vllm-int8 backend)

    backend = eval_config.get("backend", DEFAULT_BACKEND)
    if backend == VLLM_BACKEND:
        return _build_vllm_lm(eval_config, tp_size)
    model_args = {"pretrained": eval_config["model_name"], "batch_size": eval_config.get("batch_size", 1)}
    if backend == DEFAULT_BACKEND:
        model_args.update(scheme=eval_config.get("scheme", "dynamic-asym"), device=device, tp_size=tp_size)
        if "dtype" in eval_config:
            model_args["dtype"] = eval_config["dtype"]
        if "smoothquant" in eval_config:
            model_args["smoothquant"] = eval_config["smoothquant"]
        if "max_model_len" in eval_config:
            model_args["max_length"] = eval_config["max_model_len"]
    return get_model(backend)(**model_args)


def _build_vllm_lm(eval_config: dict, tp_size: int):
    """The `vllm` backend: the config's model as a W8A8 checkpoint (the embedded model's from the
    checkpoint cache, or a checkpoint directory as given) on lm-eval's vLLM model."""
    from vllm_int8.eval.lm_eval_vllm import build_vllm_lm
    from vllm_int8.models.embedded import EMBEDDED_ALIASES, check_model_directory

    name = eval_config["model_name"]
    if name in EMBEDDED_ALIASES:
        from vllm_int8.models.cache import embedded_checkpoint

        scheme = eval_config.get("scheme", "dynamic-asym")
        checkpoint = embedded_checkpoint(scheme, eval_config.get("smoothquant", "default"))
    else:
        check_model_directory(name)
        checkpoint = Path(name)
    return build_vllm_lm(checkpoint, eval_config, tp_size)


def launch_lm_eval(eval_config: dict, tp_size: int = 1, device: str = "auto", limit: int | None = None, lm=None):
    """(lm-eval results dict, the LM object) for one config, fully offline (`lm`: already built)."""
    import lm_eval

    lm = lm if lm is not None else build_lm(eval_config, tp_size, device)
    results = lm_eval.simple_evaluate(
        model=lm,
        tasks=[local_task(task["name"]) for task in eval_config["tasks"]],
        num_fewshot=eval_config.get("num_fewshot", 0),
        limit=limit if limit is not None else eval_config.get("limit"),
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        fewshot_random_seed=0,
    )
    return results, lm


def rocm_arch_skip_reason(eval_config: dict, platform) -> str | None:
    """Why a config whose `required_gpu_arch` names no arch of this ROCm GPU is skipped (None: it
    runs). The field is ignored off ROCm and where it is absent."""
    required = eval_config.get("required_gpu_arch")
    if not required or not platform.is_rocm:
        return None
    arch = platform.arch or ""
    if any(wanted in arch for wanted in required):
        return None
    return f"{eval_config.get('model_name')} requires one of {list(required)}; this GPU's gcnArchName is {arch!r}"


def metric_passes(measured: float, expected: float, rtol: float, higher_is_better: bool = True) -> bool:
    if higher_is_better:
        return measured >= expected * (1 - rtol)
    return measured <= expected * (1 + rtol)


@dataclass
class MetricCheck:
    task: str
    metric: str
    expected: float
    measured: float
    rtol: float
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        return metric_passes(self.measured, self.expected, self.rtol, self.higher_is_better)


def check_metrics(eval_config: dict, results: dict) -> list[MetricCheck]:
    """One MetricCheck per expected metric of the config (a missing metric is a KeyError naming it)."""
    rtol = eval_config.get("rtol", DEFAULT_RTOL)
    checks = []
    for task in eval_config["tasks"]:
        measured_task = results["results"][task["name"]]
        for metric in task["metrics"]:
            if metric["name"] not in measured_task:
                raise KeyError(f"task {task['name']} reported no metric {metric['name']}: has {sorted(measured_task)}")
            checks.append(
                MetricCheck(
                    task["name"],
                    metric["name"],
                    float(metric["value"]),
                    float(measured_task[metric["name"]]),
                    float(metric.get("rtol", rtol)),
                    bool(metric.get("higher_is_better", True)),
                )
            )
    return checks


def expected_kernel(eval_config: dict, platform_kind: str) -> str | None:
    """The kernel class the config expects on this platform kind (None: not stated)."""
    spec = eval_config.get("expected_kernel")
    if spec is None or isinstance(spec, str):
        return spec
    return spec.get(platform_kind, spec.get("default"))


def check_model(eval_config: dict, lm, platform_kind: str) -> list[str]:
    """What is wrong with the loaded model before any evaluation: its kernels and its int8 layers."""
    problems = []
    kernels = set(getattr(lm, "kernel_names", ()))
    wanted = expected_kernel(eval_config, platform_kind)
    if wanted is not None and kernels != {wanted}:
        problems.append(f"expected every int8 layer on {wanted} ({platform_kind}), got {sorted(kernels) or 'none'}")
    if "int8_layers" in eval_config and getattr(lm, "int8_modules", None) != eval_config["int8_layers"]:
        problems.append(
            f"expected {eval_config['int8_layers']} linear layers on int8 kernels, got {getattr(lm, 'int8_modules', 0)}"
        )
    return problems


@dataclass
class BandCheck:
    task: str
    metric: str
    baseline: float
    measured: float
    max_drop: float
    higher_is_better: bool

    @property
    def within(self) -> bool:
        drop = (self.baseline - self.measured) if self.higher_is_better else (self.measured - self.baseline)
        return drop <= self.max_drop * abs(self.baseline)


def check_baseline_band(config_path: Path, eval_config: dict, results: dict) -> tuple[list[BandCheck], list[str]]:
    """(per-metric band checks, problems) against the float baseline config's recorded values."""
    if not eval_config.get("baseline"):
        return [], []
    baseline = load_eval_config(Path(config_path).parent / eval_config["baseline"])
    recorded = {(t["name"], m["name"]): float(m["value"]) for t in baseline["tasks"] for m in t["metrics"]}
    max_drops = {(t["name"], m["name"]): m.get("max_drop") for t in eval_config["tasks"] for m in t["metrics"]}
    default_drop = float(eval_config.get("max_drop", 0.10))
    bands = []
    for check in check_metrics(eval_config, results):
        if (check.task, check.metric) in recorded:
            base = recorded[(check.task, check.metric)]
            drop = max_drops.get((check.task, check.metric))
            drop = default_drop if drop is None else float(drop)
            bands.append(BandCheck(check.task, check.metric, base, check.measured, drop, check.higher_is_better))
    problems = [
        f"{b.task} {b.metric}: {b.measured:.4f} is more than {b.max_drop:.0%} worse than float's {b.baseline:.4f}"
        for b in bands
        if not b.within
    ]
    if bands and all(abs(b.measured - b.baseline) <= 1e-6 * max(abs(b.baseline), 1e-12) for b in bands):
        problems.append("every metric equals the float baseline's: the int8 kernels cannot have run")
    return bands, problems
