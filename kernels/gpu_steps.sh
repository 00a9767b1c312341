#!/usr/bin/env bash
# One device call: environment, the GPU test suite, the GPU checks (tests/gpu), the host profile.
# Usage (on the GPU machine, repo root): bash kernels/gpu_steps.sh [tests|stress|host|layer|tune|all]...
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=0
export PYTHONPATH=$PWD
if ls .whl/*.whl >/dev/null 2>&1; then  # wheels carried for what the image lacks (compressed-tensors)
  python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PWD:/tmp/site
fi
for step in "${@:-all}"; do
  case $step in
    env)
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
      python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
      for m in xdist lm_eval compressed_tensors gguf transformers; do
        python -c "import $m" 2>/dev/null && echo "have $m" || echo "no $m"; done ;;
    tests)
      n=""; python -c "import xdist" 2>/dev/null && n="-n 12"
      python -m pytest -q -x $n -p no:cacheprovider tests 2>&1 | tee "$OUT/gpu_tests.log" | tail -25 ;;
    quick-tests) python -m pytest -q -p no:cacheprovider -n 4 tests/ops/test_bound_mm.py tests/ops/test_rocm_check.py \
                   tests/linear tests/models 2>&1 | tee "$OUT/gpu_quick_tests.log" | tail -8 ;;
    stress) python -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tee "$OUT/gpu_checks.log" | tail -10 ;;
    quant) python kernels/sweep_quant.py --m 1,16,32,64,256,4096,16384 --k 4096,14336,18944,28672 2>&1 \
             | grep -v Warning | tee "$OUT/sweep_quant.log" | grep shipped ;;
    gemm) python kernels/benchmark_int8_scaled_mm.py --m 1,16,256,1024,4096,8192 2>&1 | tee "$OUT/bench.log" | tail -30
          stem=$(python -c "import torch; from vllm_int8.ops.mm_configs import device_key as k; print(k(torch.cuda.get_device_name()))")
          cp "kernels/results/$stem.json" "kernels/results/$stem.png" kernels/results/summary.json "$OUT/" ;;
    pdl) python kernels/sweep_pdl.py 2>&1 | grep -v Warning | tee "$OUT/sweep_pdl.log" ;;
    hostbench) python kernels/benchmark_host.py --json "$OUT/host.json" 2>&1 | tee "$OUT/benchmark_host.log" ;;
    chained) python kernels/benchmark_chained_decode.py 2>&1 | grep -v Warning | tee "$OUT/benchmark_chained_decode.log"
             cp kernels/results/summary.json "$OUT/" ;;
    host) python kernels/profile_host.py --calls 2000 2>&1 | tee "$OUT/host_profile.log" | head -60 ;;
    layer) python kernels/benchmark_layer.py 2>&1 | tee "$OUT/benchmark_layer.log" | tail -40
           cp kernels/results/summary.json kernels/results/layer_*.json "$OUT/" ;;
    sol) python kernels/speed_of_light.py --shapes 8B,qwen 2>&1 | tee "$OUT/speed_of_light.log" ;;
    tune-small) mkdir -p "$OUT/tuned" && cp vllm_int8/ops/tuned/*.json "$OUT/tuned/"
                python kernels/tune_int8_scaled_mm.py --models SmolLM2-135M --small-tiles --workers 14 \
                  --buckets 256,512,1024,2048,4096,8192 --out "$OUT/tuned" 2>&1 | tee "$OUT/tune_small.log" | tail -30 ;;
    tune) python kernels/tune_int8_scaled_mm.py --models "${TUNE_MODELS:-Llama-3-8B,Llama-3-70B}" --buckets "${TUNE_BUCKETS:-1,16,32,64}" 2>&1 \
            | tee "$OUT/tune_decode.log" | tail -40
          mkdir -p "$OUT/tuned" && cp vllm_int8/ops/tuned/*.json "$OUT/tuned/" ;;
  esac
done
