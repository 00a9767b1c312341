"""W8A8 checkpoints of the embedded model, built once per scheme and cached on disk.

vLLM serves checkpoint directories, and quantizing the embedded model (SmoothQuant and static
ranges are calibrated) costs far more than loading a checkpoint. The cache lives under
`$XDG_CACHE_HOME/vllm-int8` (default `~/.cache/vllm-int8`; `VLLM_INT8_CACHE` overrides it), one
directory per key: the scheme, the SmoothQuant alpha, the calibration size, the package version
and the source of the code that makes the tensors, so any change there builds a new one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CACHE_ENV = "VLLM_INT8_CACHE"
CALIBRATION_BATCHES = 24  # the CLI's default: the shipped accuracy figures were measured with it
_SOURCES = ("quantizer.py", "smoothquant.py", "calibration.py", "scheme.py", "checkpoint.py")


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vllm-int8"


def checkpoint_key(scheme: str, alpha: float | None, batches: int) -> str:
    """A directory name that changes whenever the checkpoint it names would."""
    from vllm_int8 import __version__

    digest = hashlib.sha256(f"{scheme}|{alpha}|{batches}|{__version__}".encode())
    here = Path(__file__).parent
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return f"SmolLM2-135M-Instruct-W8A8-{scheme}-sq{alpha if alpha is not None else 'off'}-{digest.hexdigest()[:12]}"


def embedded_checkpoint(scheme: str, smoothquant: float | str | None = "default",
                        batches: int = CALIBRATION_BATCHES, progress: bool = False) -> Path:  # fmt: skip
    """The cached checkpoint directory of the embedded model in `scheme`, built if missing."""
    from vllm_int8.models.smoothquant import resolve_alpha

    alpha = resolve_alpha(scheme, smoothquant)
    target = cache_root() / "checkpoints" / checkpoint_key(scheme, alpha, batches)
    if (target / "config.json").is_file():
        return target
    from vllm_int8.models import load_float_model, quantize_model, save_checkpoint
    from vllm_int8.models.calibration import calibration_batches

    model, tokenizer = load_float_model("embedded")
    calibrate = scheme.startswith("static") or alpha is not None
    windows = calibration_batches(tokenizer, batches) if calibrate else ()
    config, tensors = quantize_model(model, scheme, windows, progress=progress, smoothquant=alpha)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:  # written aside, then renamed: a killed build leaves no half checkpoint under the key
        save_checkpoint(staging, model.config, config, tensors, tokenizer, model.generation_config)
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
