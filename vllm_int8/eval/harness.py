"""Accuracy checks as vLLM's lm-eval harness does them: one config -> lm-eval -> metrics vs rtol.

A config (YAML) names the model, scheme, tasks with expected metric values, and optionally
`limit`, `num_fewshot`, `batch_size`, `rtol` (default 0.08), `env_vars`, `backend` and
`required_gpu_arch`. A metric passes when `measured >= value * (1 - rtol)`; metrics that are
better when lower (perplexities, marked `higher_is_better: false`) pass when
`measured <= value * (1 + rtol)`, the same tolerance mirrored.
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
DEFAULT_BACKEND = "vllm-int8"


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


def launch_lm_eval(eval_config: dict, tp_size: int = 1, device: str = "auto", limit: int | None = None):
    """(lm-eval results dict, the LM object) for one config, fully offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.api.registry import get_model

    import vllm_int8.eval.lm_eval_model  # noqa: F401  (registers the vllm-int8 backend)

    backend = eval_config.get("backend", DEFAULT_BACKEND)
    model_args = {"pretrained": eval_config["model_name"], "batch_size": eval_config.get("batch_size", 1)}
    if backend == DEFAULT_BACKEND:
        model_args.update(scheme=eval_config.get("scheme", "dynamic-asym"), device=device, tp_size=tp_size)
        if "dtype" in eval_config:
            model_args["dtype"] = eval_config["dtype"]
        if "max_model_len" in eval_config:
            model_args["max_length"] = eval_config["max_model_len"]
    lm = get_model(backend)(**model_args)
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
