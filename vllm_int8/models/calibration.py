"""Calibration text that ships with the OS or an installed package: no download, no one of ours.

Debian's /usr/share/common-licenses holds the full texts of the common licenses (real English
prose); where it is missing, the license files of installed Python packages stand in. Static
schemes calibrate on licenses that no eval task reads: the local tasks are built from Apache-2.0,
MPL-2.0, GPL-3 and LGPL-2.1 (configs/tasks/README.md), calibration uses the ones below.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch

OS_LICENSES = Path("/usr/share/common-licenses")
# Held out from every eval task: no 12-word run of any task document occurs in them (the GPL, LGPL,
# MPL-1.1 and GFDL texts all share sentences with the eval licenses, so they are not used).
PREFERRED = ("Artistic", "CC0-1.0", "BSD")
EVAL_SOURCES = ("Apache-2.0", "MPL-2.0", "GPL-3", "LGPL-2.1")  # what configs/tasks/data is built from
# Phrases of those texts, so that a package's copy of one is not taken for calibration.
_EVAL_MARKERS = ("Apache License", "Mozilla Public License Version 2.0", "Version 3, 29 June 2007",
                 "Version 2.1, February 1999")  # fmt: skip


def calibration_texts(min_chars: int = 12_000) -> list[tuple[str, str]]:
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


def calibration_batches(tokenizer, batches: int = 8, seq_len: int = 256) -> list[torch.Tensor]:
    """`batches` windows of `seq_len` tokens, [1, seq_len] each, cut from the calibration texts."""
    ids = []
    for _, text in calibration_texts():
        ids.extend(tokenizer(text)["input_ids"])
        if len(ids) >= batches * seq_len:
            break
    windows = [ids[i : i + seq_len] for i in range(0, len(ids) - seq_len + 1, seq_len)][:batches]
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
