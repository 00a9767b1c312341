"""Local lm-eval tasks (configs/tasks/*.yaml) as task dicts with their data paths made absolute."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def configs_dir() -> Path:
    """The repository's configs/ (next to the package in a source checkout), else ./configs."""
    return REPO_CONFIGS if REPO_CONFIGS.is_dir() else Path.cwd() / "configs"


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
