"""How much of the float model a quantized one keeps: next-token top-1 agreement and KL on held-out text.

lm-eval metrics on a 135M model move by whole examples; comparing the two models' next-token
distributions token by token is a finer instrument. The text is held out from both calibration
(license texts, `vllm_int8.models.calibration`) and the eval tasks (other license texts): the
Python reference manual's topic pages that ship with every CPython (`pydoc_data.topics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

HELDOUT_SOURCE = "pydoc_data.topics (the Python reference manual's topics, CPython stdlib)"


def heldout_text() -> str:
    """The held-out prose, in a fixed order (topics sorted by name)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def heldout_batches(tokenizer, batches: int = 16, seq_len: int = 256) -> list[torch.Tensor]:
    """`batches` windows of `seq_len` tokens, [1, seq_len] each, spread evenly over the held-out text."""
    ids = tokenizer(heldout_text())["input_ids"]
    starts = torch.linspace(0, len(ids) - seq_len, batches).long().tolist()
    return [torch.tensor([ids[s : s + seq_len]]) for s in starts]


@dataclass(frozen=True)
class Agreement:
    top1: float  # fraction of positions where both models' greedy next token is the same
    kl: float  # mean KL(float || quantized) per position, nats
    tokens: int

    def __str__(self) -> str:
        return f"top-1 agreement {self.top1:.4f}, KL {self.kl:.4f} nats/token over {self.tokens} tokens"


@torch.no_grad()
def compare_models(reference: torch.nn.Module, candidate: torch.nn.Module, batches: list[torch.Tensor]) -> Agreement:
    """Agreement of `candidate` with `reference` over the positions of `batches` (input ids)."""
    same, kl, tokens = 0, 0.0, 0
    device = next(reference.parameters()).device
    for input_ids in batches:
        ids = input_ids.to(device)
        ref = reference(input_ids=ids).logits.float().log_softmax(-1)
        out = candidate(input_ids=ids).logits.float().log_softmax(-1)
        same += int((ref.argmax(-1) == out.argmax(-1)).sum())
        kl += float((ref.exp() * (ref - out)).sum(-1).sum())
        tokens += ids.numel()
    return Agreement(same / tokens, kl / tokens, tokens)


@dataclass(frozen=True)
class AgreementRun:
    alpha: float | None  # the SmoothQuant alpha used (None: no smoothing)
    agreement: Agreement


def measure_agreement(
    model: str = "embedded",
    scheme: str = "dynamic-asym",
    smoothquant: float | str | None = "default",
    batches: int = 16,
    device: str = "cpu",
) -> AgreementRun:
    """Quantize a float model with `scheme` (float32 activations) and compare it with itself unquantized."""
    import copy

    from vllm_int8.models import load_float_model, quantize_in_place
    from vllm_int8.models.calibration import calibration_batches
    from vllm_int8.models.smoothquant import resolve_alpha

    reference, tokenizer = load_float_model(model, device=device)
    quantized = copy.deepcopy(reference)
    alpha = resolve_alpha(scheme, smoothquant)
    calibrate = scheme.startswith("static") or alpha is not None
    quantize_in_place(quantized, scheme, calibration_batches(tokenizer) if calibrate else (), smoothquant=alpha)
    return AgreementRun(alpha, compare_models(reference, quantized, heldout_batches(tokenizer, batches)))
