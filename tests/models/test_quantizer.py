"""RTN weight quantization against float64 math."""

import torch

from vllm_int8.models import quantize_weight


def test_per_channel_weights_round_to_the_nearest_step():
    w = torch.randn(48, 80) * torch.rand(48, 1)
    w[3] = 0.0  # an all-zero channel stays exactly zero
    q, scale = quantize_weight(w)
    assert q.dtype == torch.int8 and scale.shape == (48, 1) and scale.dtype == torch.float32
    expected_scale = w.double().abs().amax(1, keepdim=True) / 127
    nonzero = expected_scale.squeeze(1) > 0
    torch.testing.assert_close(scale.double()[nonzero], expected_scale[nonzero], rtol=2**-23, atol=0)
    assert q.abs().max() <= 127 and (q[3] == 0).all()
    err = (q.double() * scale.double() - w.double()).abs()
    assert (err <= scale.double() / 2 * (1 + 1e-6)).all()


def word_runs(text: str, n: int = 12) -> set[str]:
    words = text.split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_calibration_text_is_held_out_from_the_eval_tasks():
    """No 12-word run of an eval document occurs in the calibration texts (prose and code)."""
    import json
    from pathlib import Path

    from vllm_int8.models.calibration import calibration_texts, code_texts

    data = Path(__file__).resolve().parents[2] / "configs" / "tasks" / "data"
    docs = [json.loads(line)["text"] for f in data.glob("*.jsonl") for line in f.read_text().splitlines() if line]
    assert docs and code_texts()
    task_runs = set().union(*(word_runs(doc) for doc in docs))
    for source, text in calibration_texts():
        assert not word_runs(text) & task_runs, source
