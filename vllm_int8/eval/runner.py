"""`vllm-int8 eval`: run a config and its float baseline, print one table of metrics and verdicts."""

from __future__ import annotations

from pathlib import Path

from vllm_int8.eval.harness import check_metrics, launch_lm_eval, load_eval_config, scoped_env
from vllm_int8.eval.tasks import configs_dir

DEFAULT_CONFIG = "models/SmolLM2-135M-W8A8-dynamic-asym.yaml"


def run_one(path: Path, device: str, limit: int | None):
    config = load_eval_config(path)
    with scoped_env(config.get("env_vars")):
        results, lm = launch_lm_eval(config, device=device, limit=limit)
    return config, check_metrics(config, results), getattr(lm, "scheme_name", "?"), getattr(lm, "kernel_name", "?")


def run_eval_command(config: str | None, limit: int | None, device: str) -> int:
    """Returns 0 when every metric of the config passes its tolerance."""
    path = Path(config) if config else configs_dir() / DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no eval config at {path} (run from the repository root or pass a config path)")
    config_data = load_eval_config(path)
    baseline = {}
    if config_data.get("baseline"):
        _, base_checks, _, _ = run_one(path.parent / config_data["baseline"], device, limit)
        baseline = {(c.task, c.metric): c.measured for c in base_checks}
    _, checks, scheme, kernel = run_one(path, device, limit)

    header = (
        f"{'scheme':<13} {'kernel':<30} {'task':<19} {'metric':<22} "
        f"{'value':>9} {'float':>9} {'delta':>8} {'expected':>9} {'rtol':>5}  verdict"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for c in checks:
        base = baseline.get((c.task, c.metric))
        base_text = f"{base:9.4f}" if base is not None else f"{'-':>9}"
        delta = f"{c.measured - base:+8.4f}" if base is not None else f"{'-':>8}"
        print(
            f"{scheme:<13} {kernel:<30} {c.task:<19} {c.metric:<22} {c.measured:9.4f} {base_text} {delta} "
            f"{c.expected:9.4f} {c.rtol:5.2f}  {'PASS' if c.passed else 'FAIL'}"
        )
    return 0 if all(c.passed for c in checks) else 1
