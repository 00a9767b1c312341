"""Run real vLLM engines (CPU build, in this process, eager) on W8A8 checkpoints; print one JSON line.

    python engine_probe.py PROMPTS_JSON MAX_TOKENS CHECKPOINT [CHECKPOINT ...]

For each checkpoint: which kernel class vLLM built for each quantized linear module (counted, with
the checkpoint linears those modules hold), and the greedy tokens of each prompt; the model's dtype
is `ENGINE_PROBE_DTYPE` (default float32). A separate process, because vLLM's plugins load once per
process: the tests run it with and without our plugin.
"""

from __future__ import annotations

import gc
import json
import os
import sys


def probe(checkpoint: str, prompts: list[str], max_tokens: int) -> dict:
    from vllm import LLM, SamplingParams
    from vllm.distributed import cleanup_dist_env_and_memory

    from vllm_int8.eval.lm_eval_vllm import kernel_report  # what the harness checks, counted the same way

    dtype = os.environ.get("ENGINE_PROBE_DTYPE", "float32")
    llm = LLM(model=checkpoint, enforce_eager=True, dtype=dtype, max_model_len=256, max_num_seqs=len(prompts),
              seed=0, kv_cache_memory_bytes=128 << 20)  # fmt: skip
    try:
        counts = llm.apply_model(kernel_report)[0]
        linears = counts.pop("_checkpoint_linears")
        outputs = llm.generate(prompts, SamplingParams(max_tokens=max_tokens, temperature=0.0), use_tqdm=False)
        tokens = [list(o.outputs[0].token_ids) for o in outputs]
        prompt_tokens = [list(o.prompt_token_ids) for o in outputs]
    finally:
        del llm
        gc.collect()
        cleanup_dist_env_and_memory()
    return {"kernels": counts, "linears": linears, "tokens": tokens, "prompt_tokens": prompt_tokens}


def main(argv: list[str]) -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process: no spawn
    prompts, max_tokens = json.loads(argv[0]), int(argv[1])
    results = {path: probe(path, prompts, max_tokens) for path in argv[2:]}
    from vllm_int8.vllm_plugin import registered

    print("ENGINE_PROBE " + json.dumps({"registered": registered(), "results": results}))


if __name__ == "__main__":
    main(sys.argv[1:])
