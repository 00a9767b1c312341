"""kernels/results/summary.json: headline figures keyed by device name, merged by every benchmark."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def merge_summary(device: str, figures: dict, path: Path = RESULTS / "summary.json") -> None:
    """Update this device's figures, keeping the keys other benchmarks wrote."""
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.setdefault(device, {}).update(figures)
    path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
