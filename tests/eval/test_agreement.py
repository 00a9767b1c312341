"""Top-1 agreement and KL against the float model: exact on identical models, lower on a perturbed one."""

import copy

import torch

from tests.models.tiny import tiny_llama, token_batches
from vllm_int8.eval.agreement import compare_models, heldout_batches, heldout_text
from vllm_int8.models.calibration import calibration_texts


def test_a_model_agrees_with_itself():
    model = tiny_llama()
    result = compare_models(model, model, token_batches())
    assert result.top1 == 1.0 and abs(result.kl) < 1e-6 and result.tokens == 3 * 24


def test_a_perturbed_model_agrees_less():
    model = tiny_llama()
    noisy = copy.deepcopy(model)
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    result = compare_models(model, noisy, token_batches())
    assert result.top1 < 1.0 and result.kl > 1e-3


def test_heldout_text_is_neither_calibration_nor_task_text():
    import json
    from pathlib import Path

    from tests.models.test_quantizer import word_runs

    heldout = heldout_text()
    assert len(heldout) > 100_000
    data = Path(__file__).resolve().parents[2] / "vllm_int8" / "configs" / "tasks" / "data"
    task_docs = [json.loads(line)["text"] for f in data.glob("*.jsonl") for line in f.read_text().splitlines() if line]
    heldout_runs = word_runs(heldout)
    for doc in task_docs + [text for _, text in calibration_texts()]:  # calibration: prose and code
        assert not word_runs(doc) & heldout_runs, doc[:80]


class _Words:
    """A stand-in tokenizer: one id per character, enough to cut windows."""

    def __call__(self, text):
        return {"input_ids": [ord(c) % 128 for c in text]}


def test_heldout_windows_are_spread_and_full_length():
    batches = heldout_batches(_Words(), batches=5, seq_len=64)
    assert len(batches) == 5 and all(b.shape == (1, 64) for b in batches)
    assert len({tuple(b[0, :8].tolist()) for b in batches}) == 5
