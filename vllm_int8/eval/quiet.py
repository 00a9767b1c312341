"""Keep `vllm-int8 eval` readable: libraries' bars and chatter off, one bar of our own per phase."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator

from tqdm.auto import tqdm

# Loggers of the libraries an eval drives; their INFO and WARNING lines are hidden unless --verbose.
CHATTY_LOGGERS = ("lm_eval", "lm-eval", "transformers", "datasets", "evaluate", "accelerate", "huggingface_hub")
# For libraries imported later (tqdm and datasets read these at import time).
QUIET_ENV = {"TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def _silent_tqdm(*args, **kwargs):
    kwargs["disable"] = True
    return tqdm(*args, **kwargs)


# Modules that call `tqdm(...)` by name, whatever the libraries' own switches say.
BAR_MODULES = ("lm_eval", "transformers.modeling_gguf_pytorch_utils")


def _silence_bars() -> list[tuple[object, object]]:
    """Point those modules' `tqdm` at a disabled bar; returns what to undo."""
    import importlib

    for name in ("lm_eval.evaluator", "lm_eval.models.huggingface", *BAR_MODULES[1:]):
        try:
            importlib.import_module(name)  # import now, so that their bars can be silenced
        except ImportError:
            pass
    replaced = []
    # lm-eval's bootstrap imports `tqdm` from the package at call time: silence it there too.
    package = sys.modules.get("tqdm")
    if package is not None:
        replaced.append((package, package.tqdm))
        package.tqdm = _silent_tqdm
    for name, module in list(sys.modules.items()):
        if not name.startswith(BAR_MODULES):
            continue
        # The module's own attribute only: a lazy module's __getattr__ (transformers) would import
        # whatever the name resolves to, image processors needing torchvision among them.
        bar = getattr(module, "__dict__", {}).get("tqdm")
        if bar is not None and not inspect.ismodule(bar):
            replaced.append((module, module.tqdm))
            module.tqdm = _silent_tqdm
    return replaced


def _disable_library_bars() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


@contextlib.contextmanager
def quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """Within the block: library loggers at ERROR, their warnings and progress bars off (unless verbose).

    transformers' and datasets' own progress-bar switches stay off after it: the eval command ends there.
    """
    if verbose:
        yield
        return
    previous_env = {k: os.environ.get(k) for k in QUIET_ENV}
    previous_levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    os.environ.update(QUIET_ENV)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    _disable_library_bars()
    replaced = _silence_bars()
    try:
        # The libraries' own prints (lm-eval's "bootstrapping for stddev: ...") go to stdout; our
        # phase bars and one-line messages go to stderr, the table is printed after the block.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for module, original in replaced:
            module.tqdm = original
        for key, value in previous_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, level in previous_levels.items():
            logging.getLogger(name).setLevel(level)


class PhaseBar:
    """One bar per phase ("loading", "evaluating"), shown even while library bars are disabled;
    with a total (and so a percentage and an ETA) once the work is known (`expect`)."""

    def __init__(self, description: str, unit: str = "batch", total: int | None = None):
        self.bar = tqdm(desc=description, unit=unit, total=total, disable=False, leave=True, dynamic_ncols=True,
                        file=sys.stderr)  # fmt: skip
        self.start = time.perf_counter()

    def expect(self, n: int) -> None:
        """n more units of work are coming."""
        self.bar.total = (self.bar.total or 0) + n
        self.bar.refresh()

    def tick(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> float:
        """Ends the phase; returns its seconds."""
        self.bar.close()
        return time.perf_counter() - self.start


@contextlib.contextmanager
def phase(description: str, unit: str = "batch", total: int | None = None) -> Iterator[PhaseBar]:
    bar = PhaseBar(description, unit, total)
    try:
        yield bar
    finally:
        bar.close()
