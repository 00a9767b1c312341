"""Calibration text that ships with the OS or with Python: no download, no one of ours.

Two kinds, because a model's activations depend on what it reads. Prose: Debian's
/usr/share/common-licenses holds the full texts of the common licenses; where it is missing, the
license files of installed Python packages stand in. Code: the source of a few standard-library
modules (code, comments, docstrings). Calibrated on prose alone, static ranges were 2-5x too
narrow for code-like text (SmolLM2-135M down_proj inputs on the held-out Python manual, CPU,
2026-11-26), and clipping there cost more agreement than coarser steps elsewhere. Neither kind is
read by an eval task (built from Apache-2.0, MPL-2.0, GPL-3 and LGPL-2.1: configs/tasks/README.md)
or by the agreement text (`pydoc_data.topics`); tests check that no 12-word run is shared.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import torch

OS_LICENSES = Path("/usr/share/common-licenses")
# Held out from every eval task: no 12-word run of any task document occurs in them (the GPL, LGPL,
# MPL-1.1 and GFDL texts share sentences with the eval licenses, and BSD shares the warranty
# disclaimer, so they are not used).
PREFERRED = ("Artistic", "CC0-1.0")
EVAL_SOURCES = ("Apache-2.0", "MPL-2.0", "GPL-3", "LGPL-2.1")  # what configs/tasks/data is built from
# Phrases of those texts, so that a package's copy of one is not taken for calibration.
_EVAL_MARKERS = ("Apache License", "Mozilla Public License Version 2.0", "Version 3, 29 June 2007",
                 "Version 2.1, February 1999")  # fmt: skip


# Standard-library modules whose source is calibration code (held out: see the module docstring).
CODE_MODULES = ("textwrap", "difflib", "argparse", "statistics", "fractions", "csv", "calendar", "shutil")
PROSE_SHARE = 1 / 3  # of the calibration windows; the rest are code


def calibration_texts() -> list[tuple[str, str]]:
    """[(source, text), ...]: every calibration document, prose then code."""
    return prose_texts() + code_texts()


def code_texts() -> list[tuple[str, str]]:
    """[(path, source), ...] of CODE_MODULES found as .py files (empty where only bytecode ships)."""
    texts = []
    for name in CODE_MODULES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is not None and origin.suffix == ".py" and origin.is_file():
            texts.append((str(origin), origin.read_text(encoding="utf-8")))
    return texts


def prose_texts(min_chars: int = 12_000) -> list[tuple[str, str]]:
    """[(source, text), ...] of real English documents found on this machine."""
    texts = [(str(OS_LICENSES / n), (OS_LICENSES / n).read_text()) for n in PREFERRED if (OS_LICENSES / n).is_file()]
    if sum(len(t) for _, t in texts) >= min_chars:
        return texts
    for dist in importlib.metadata.distributions():
        for file in dist.files or []:
            if file.name.upper().startswith(("LICENSE", "COPYING")) and len(texts) < 20:
                path = Path(file.locate())
                if path.is_file() and path.stat().st_size > 2000:
                    text = path.read_text(errors="ignore")
                    if not any(marker in text for marker in _EVAL_MARKERS):  # keep eval text out
                        texts.append((f"{dist.metadata['Name']}:{file}", text))
    if not texts:
        raise FileNotFoundError("no license texts found for calibration (/usr/share/common-licenses or packages)")
    return texts


def calibration_batches(tokenizer, batches: int = 24, seq_len: int = 256) -> list[torch.Tensor]:
    """Up to `batches` windows of `seq_len` tokens, [1, seq_len] each: a third cut from the prose,
    the rest from the code (prose fills in where no code is found)."""
    code = code_texts()
    prose_count = batches if not code else round(batches * PROSE_SHARE)
    prose = _windows(tokenizer, prose_texts(), prose_count, seq_len)
    return prose + _windows(tokenizer, code, batches - len(prose), seq_len)


def _windows(tokenizer, texts: list[tuple[str, str]], count: int, seq_len: int) -> list[torch.Tensor]:
    """`count` consecutive windows of `seq_len` tokens from the texts in order (fewer if they run out)."""
    ids: list[int] = []
    for _, text in texts:
        if len(ids) >= count * seq_len:
            break
        ids.extend(tokenizer(text)["input_ids"])
    windows = [ids[i : i + seq_len] for i in range(0, len(ids) - seq_len + 1, seq_len)][:count]
    return [torch.tensor([w]) for w in windows]


@torch.no_grad()
def run_with_pre_hooks(model: torch.nn.Module, hooks: dict, batches: list, desc: str, progress: bool) -> None:
    """Run the calibration batches through `model` with forward pre-hooks {module: hook} attached."""
    from tqdm.auto import tqdm

    if not batches:
        raise ValueError("static schemes and SmoothQuant need calibration data: pass at least one batch of input ids")
    handles = [module.register_forward_pre_hook(hook) for module, hook in hooks.items()]
    try:
        device = next(model.parameters()).device
        for input_ids in tqdm(batches, desc=desc, disable=not progress):
            model(input_ids=input_ids.to(device))
    finally:
        for handle in handles:
            handle.remove()
