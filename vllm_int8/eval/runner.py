"""`vllm-int8 eval`: run a config and its float baseline quietly, then one table of metrics and verdicts.

The checks are the harness's (`vllm_int8.eval.harness`): the expected kernel and int8 layer count
before evaluating, each metric against its recorded value (rtol) and against the float baseline
(max_drop) after. Libraries' progress bars and log lines are hidden unless `verbose`; each phase
(loading, evaluating) gets one bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vllm_int8.errors import UserInputError
from vllm_int8.eval.harness import (
    build_lm,
    check_baseline_band,
    check_metrics,
    check_model,
    launch_lm_eval,
    load_eval_config,
    scoped_env,
)
from vllm_int8.eval.quiet import phase, quiet_libraries
from vllm_int8.eval.tasks import configs_dir, local_task

DEFAULT_CONFIG = "models/SmolLM2-135M-W8A8-dynamic-asym.yaml"


class EvalSetupError(UserInputError):
    """A config, model or task that cannot be run, said in one line."""


def resolve_config(config: str | None) -> Path:
    """A config path, or the name of a shipped one (with or without models/ and .yaml)."""
    if config is None:
        return configs_dir() / DEFAULT_CONFIG
    candidates = [Path(config), configs_dir() / config, configs_dir() / "models" / config]
    candidates += [c.with_name(c.name + ".yaml") for c in candidates[1:]]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in (configs_dir() / "models").glob("*.yaml")))
    raise EvalSetupError(f"no eval config {config!r}: not a file, nor a shipped config ({shipped})")


def check_tasks(path: Path, config: dict) -> None:
    """Every task must be a local one (no dataset hub here) or known to lm-eval."""
    for task in config["tasks"]:
        name = task.get("name") if isinstance(task, dict) else None
        if not name or not isinstance(task.get("metrics"), list):
            raise EvalSetupError(f"{path}: each task needs a 'name' and a list of 'metrics', got {task!r}")
        if isinstance(local_task(name), dict):
            continue
        from lm_eval.tasks import TaskManager

        if name not in TaskManager().all_tasks:
            raise EvalSetupError(f"{path}: unknown task {name!r} (local tasks live in {configs_dir() / 'tasks'})")


def load_checked_config(path: Path) -> dict:
    try:
        config = load_eval_config(path)
    except Exception as error:  # YAML syntax, missing keys: one line naming the file
        raise EvalSetupError(f"{path}: not a valid eval config: {str(error).splitlines()[0]}") from None
    if not isinstance(config.get("tasks"), list) or not config["tasks"]:
        raise EvalSetupError(f"{path}: 'tasks' must be a non-empty list")
    check_tasks(path, config)
    return config


@dataclass
class ConfigRun:
    path: Path
    config: dict
    scheme: str = "?"
    kernel: str = "?"
    problems: list[str] = field(default_factory=list)
    results: dict | None = None


def run_config(path: Path, device: str, limit: int | None, platform_kind: str) -> ConfigRun:
    config = load_checked_config(path)
    run = ConfigRun(path, config)
    with scoped_env(config.get("env_vars")):
        with phase(f"loading {path.stem}", unit="model", total=1) as bar:
            lm = build_lm(config, device=device)
            bar.tick()
        run.scheme, run.kernel = getattr(lm, "scheme_name", "?"), getattr(lm, "kernel_name", "?")
        run.problems = check_model(config, lm, platform_kind)
        if run.problems:
            return run
        with phase(f"evaluating {path.stem}", unit="seq") as bar:
            lm.progress = bar
            run.results, _ = launch_lm_eval(config, device=device, limit=limit, lm=lm)
            lm.progress = None
    return run


def _stderr(results: dict, task: str, metric: str) -> float | None:
    name, _, filt = metric.partition(",")
    value = results["results"][task].get(f"{name}_stderr,{filt}" if filt else f"{name}_stderr")
    return float(value) if isinstance(value, (int, float)) else None


def format_table(run: ConfigRun, baseline: ConfigRun | None) -> tuple[str, bool]:
    """(the table, whether everything passed)."""
    checks = check_metrics(run.config, run.results)
    bands, band_problems = check_baseline_band(run.path, run.config, run.results)
    band_of = {(b.task, b.metric): b for b in bands}
    measured_float = {}
    if baseline is not None and baseline.results is not None:
        measured_float = {(c.task, c.metric): c.measured for c in check_metrics(baseline.config, baseline.results)}
    header = (
        f"{'task':<18} {'metric':<21} {'value':>9} {'stderr':>7} {'float':>9} {'delta':>8} {'expected':>9}  verdict"
    )
    lines = [f"scheme: {run.scheme}  kernel: {run.kernel}", header, "-" * len(header)]
    for c in checks:
        base = measured_float.get((c.task, c.metric))
        err = _stderr(run.results, c.task, c.metric)
        band = band_of.get((c.task, c.metric))
        verdict = "PASS" if c.passed and (band is None or band.within) else "FAIL"
        why = [] if c.passed else [f"outside rtol {c.rtol} of the expected value"]
        why += [] if band is None or band.within else [f"more than max_drop {band.max_drop} below the float model"]
        lines.append(
            f"{c.task:<18} {c.metric:<21} {c.measured:9.4f} "
            + (f"{err:7.4f} " if err is not None else f"{'-':>7} ")
            + (f"{base:9.4f} {c.measured - base:+8.4f} " if base is not None else f"{'-':>9} {'-':>8} ")
            + f"{c.expected:9.4f}  {verdict}"
        )
        lines += [f"  {verdict}: {reason}" for reason in why]  # on lines of their own: the table stays narrow
    lines += [f"FAIL: {problem}" for problem in band_problems if "equals the float" in problem]
    passed = all(c.passed for c in checks) and not band_problems
    return "\n".join(lines), passed


def run_eval_command(config: str | None, limit: int | None, device: str, verbose: bool = False) -> int:
    """0 when the model is on the expected kernel and every metric passes; 1 otherwise."""
    from vllm_int8.platform import current_platform

    path = resolve_config(config)
    config_data = load_checked_config(path)
    kind = "cpu" if device == "cpu" else current_platform().kind
    baseline = None
    with quiet_libraries(verbose):
        if config_data.get("baseline"):
            baseline = run_config(path.parent / config_data["baseline"], device, limit, kind)
        run = run_config(path, device, limit, kind)
    for problem in (baseline.problems if baseline else []) + run.problems:
        print(f"FAIL: {problem}")
    if run.problems or (baseline and baseline.problems):
        return 1
    table, passed = format_table(run, baseline)
    shown_limit = limit or config_data.get("limit")
    print(f"\n{path.name}  model: {config_data['model_name']}  device: {device}  limit: {shown_limit}")
    print(table)
    return 0 if passed else 1
