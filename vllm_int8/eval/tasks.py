"""Local lm-eval tasks (vllm_int8/configs/tasks/*.yaml) as task dicts with their data paths made absolute.

The configs ship inside the package (package data; `configs/` at the repository root links to
them), so `vllm-int8 eval` finds them from any directory, installed or in a checkout.
"""

from __future__ import annotations

from pathlib import Path

import yaml

PACKAGE_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def configs_dir() -> Path:
    """The eval configs shipped with the package."""
    return PACKAGE_CONFIGS


def local_task(name: str, task_dir: Path | None = None) -> dict | str:
    """The task dict of configs/tasks/<name>.yaml; names without a local file pass through to lm-eval."""
    path = (task_dir or configs_dir() / "tasks") / f"{name}.yaml"
    if not path.is_file():
        return name
    config = yaml.safe_load(path.read_text())
    files = config.get("dataset_kwargs", {}).get("data_files", {})
    for split, file in files.items():
        files[split] = str((path.parent / file).resolve())
    return config
