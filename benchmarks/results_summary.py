"""Where results go: `benchmarks/results/<device>/`, one folder per device, holding its
`summary.json` (headline figures, merged by every benchmark), the benchmarks' JSON and plot, and
their logs."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def device_dir(device: str) -> Path:
    """This device's results folder (created): "NVIDIA H200" -> results/NVIDIA_H200."""
    from vllm_int8.ops.mm_configs import device_key

    path = RESULTS / device_key(device)
    path.mkdir(parents=True, exist_ok=True)
    return path


def merge_summary(device: str, figures: dict) -> None:
    """Update this device's headline figures, keeping the keys other benchmarks wrote."""
    path = device_dir(device) / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {"device": device}
    summary.update(figures)
    path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
