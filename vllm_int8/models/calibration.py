"""Calibration text that ships with the OS or an installed package: no download, no one of ours.

Debian's /usr/share/common-licenses holds the full texts of the common licenses (real English
prose); where it is missing, the license files of installed Python packages stand in.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch

OS_LICENSES = Path("/usr/share/common-licenses")
PREFERRED = ("Apache-2.0", "MPL-2.0", "GPL-3", "LGPL-2.1", "GFDL-1.3")


def calibration_texts(min_chars: int = 20_000) -> list[tuple[str, str]]:
    """[(source, text), ...] of real English documents found on this machine."""
    texts = [(str(OS_LICENSES / n), (OS_LICENSES / n).read_text()) for n in PREFERRED if (OS_LICENSES / n).is_file()]
    if sum(len(t) for _, t in texts) >= min_chars:
        return texts
    for dist in importlib.metadata.distributions():
        for file in dist.files or []:
            if file.name.upper().startswith(("LICENSE", "COPYING")) and len(texts) < 20:
                path = Path(file.locate())
                if path.is_file() and path.stat().st_size > 2000:
                    texts.append((f"{dist.metadata['Name']}:{file}", path.read_text(errors="ignore")))
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
