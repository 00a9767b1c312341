"""The lm-eval model backend `vllm-int8`: an HF causal LM whose linears run on this plugin's kernels.

    lm_eval --model vllm-int8 --model_args pretrained=embedded,scheme=dynamic-asym ...

`pretrained`: "embedded", a float HF model directory or a W8A8 checkpoint directory; `scheme`:
dynamic-sym, dynamic-asym, static-sym, static-asym, or "float" (the unquantized baseline).
The kernel is the one `choose_scaled_mm_linear_kernel` picks for the platform.
"""

from __future__ import annotations

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from vllm_int8.models.loading import describe_layers, load_model
from vllm_int8.models.smoothquant import parse_alpha


@register_model("vllm-int8")
class VllmInt8LM(HFLM):
    def __init__(
        self,
        pretrained: str = "embedded",
        scheme: str = "dynamic-asym",
        device: str = "auto",
        batch_size: int | str = 1,
        max_length: int | None = 2048,
        tp_size: int = 1,
        dtype: str | None = None,
        smoothquant: float | str | None = "default",
        **kwargs,
    ):
        if int(tp_size) != 1:
            raise ValueError(f"the vllm-int8 backend runs on one device; tp_size={tp_size} was requested")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = getattr(torch, dtype, None) if dtype else None
        if dtype and not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"dtype must name a torch dtype such as float32 or bfloat16, got {dtype!r}")
        model, tokenizer, layers = load_model(
            pretrained, scheme, device, progress=False, dtype=torch_dtype, smoothquant=parse_alpha(smoothquant)
        )
        self.scheme_name, self.kernel_name = describe_layers(layers)
        self.kernel_names = sorted({type(layer.kernel).__name__ for layer in layers.values()}) or ["torch (float)"]
        # Checkpoint linears served by int8 kernels (a fused q/k/v layer serves three).
        self.int8_modules = sum(len(getattr(layer, "shard_names", [name])) for name, layer in layers.items())
        super().__init__(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length, **kwargs)

    # `vllm-int8 eval` sets a PhaseBar here: one tick per sequence scored, whatever lm-eval batches.
    progress = None

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        if self.progress is not None:
            self.progress.expect(len(requests))  # one scored sequence per request
        return super().loglikelihood(requests, disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        if self.progress is not None:  # one scored sequence per max_length window of each text
            lengths = (len(self.tok_encode(request.args[0])) for request in requests)
            self.progress.expect(sum(max(1, -(-n // self.max_length)) for n in lengths))
        return super().loglikelihood_rolling(requests, disable_tqdm)

    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None, labels=None) -> torch.Tensor:
        logits = super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        if self.progress is not None:
            self.progress.tick(int(inps.shape[0]))
        return logits
