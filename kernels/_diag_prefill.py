import sys
import warnings

import torch

sys.path.insert(0, "kernels")
from benchmark_layer import eager_us, graph_step_ms, llama_8b_config  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

from vllm_int8.models import quantize_in_place  # noqa: E402

torch.manual_seed(0)
with torch.device("cuda"):
    model = LlamaForCausalLM._from_config(llama_8b_config(8), dtype=torch.bfloat16).eval()
prefill = torch.randint(0, 128256, (1, 2048), device="cuda")
b1 = torch.randint(0, 128256, (1, 1), device="cuda")


def run(tag):
    with torch.no_grad():
        p = eager_us(lambda: model(input_ids=prefill, use_cache=False), n=5) / 1e3
        d = eager_us(lambda: model(input_ids=b1, use_cache=False), n=20) / 1e3
    g = graph_step_ms(model, prefill)
    print(f"{tag:<28} prefill eager {p:7.2f} ms  graph {g:7.2f} ms | decode eager {d:6.2f} ms", flush=True)


run("bf16 (8 layers)")
quantize_in_place(model, "dynamic-asym")
run("int8")
torch.cuda.set_sync_debug_mode("warn")
with warnings.catch_warnings(record=True) as caught, torch.no_grad():
    warnings.simplefilter("always")
    model(input_ids=prefill, use_cache=False)
    model(input_ids=b1, use_cache=False)
torch.cuda.set_sync_debug_mode(0)
print("sync warnings:", len(caught), [str(w.message)[:100] for w in caught[:3]])
import vllm_int8.ops.bound_mm as bm  # noqa: E402
import vllm_int8.ops.quant_mm as qm  # noqa: E402

bm.capturing = qm.capturing = lambda x: False
run("int8, no capture check")
from torch.profiler import ProfilerActivity, profile  # noqa: E402

with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof, torch.no_grad():
    model(input_ids=prefill, use_cache=False)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))
