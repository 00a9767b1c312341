#!/usr/bin/env bash
# One device call: the GPU test suite (stress checks included) and the benchmarks, results into
# benchmarks/results/<device>/, copied to $OUT.
# Usage (on the GPU machine, repo root): bash benchmarks/gpu_steps.sh [env|tests|unit|stress|gemm|layer|model|host|chained|sol|profile|tune]...
# Knobs: TESTS (unit), PROFILE_POINTS (profile), GEMM_M / GEMM_MODELS (gemm), CHAINED_ARGS (chained), MODEL_ARGS (model), TUNE_MODELS / TUNE_BUCKETS / TUNE_ARGS (tune).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=0
export PYTHONPATH=$PWD
if ls .whl/*.whl >/dev/null 2>&1; then  # wheels carried for what the image lacks (compressed-tensors)
  python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PWD:/tmp/site
fi
DIR=benchmarks/results/$(python -c "import torch; from vllm_int8.ops.mm_configs import device_key as k; print(k(torch.cuda.get_device_name()))")
mkdir -p "$DIR"
touch /tmp/gpu_steps.stamp
for step in "${@:-env tests}"; do
  case $step in
    env)
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
      python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" ;;
    tests)  # the whole suite, the GPU stress checks (tests/gpu) included
      n=""; python -c "import xdist" 2>/dev/null && n="-n 12"
      python -m pytest -q $n -p no:cacheprovider tests 2>&1 | grep -v "Warning\|warnings.warn" | tee "$DIR/gpu_tests.log" | tail -25 ;;
    stress) python -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tee "$DIR/gpu_checks.log" | tail -10 ;;
    unit)  # only the test files named in $TESTS
      python -m pytest -q -p no:cacheprovider $TESTS 2>&1 | grep -v "Warning\|warnings.warn" | tail -15 ;;
    gemm) python -m benchmarks.benchmark_int8_scaled_mm --m "${GEMM_M:-1,16,64,256,512,1024,4096,8192}" \
            ${GEMM_MODELS:+--models "$GEMM_MODELS"} 2>&1 | tee "$DIR/benchmark_gemm.log" | tail -30 ;;
    layer) python -m benchmarks.benchmark_layer 2>&1 | tee "$DIR/benchmark_layer.log" | tail -40 ;;
    model) python -m benchmarks.benchmark_layer --model-only ${MODEL_ARGS:-} 2>&1 | tee "$DIR/benchmark_model.log" | tail -20 ;;
    host) python -m benchmarks.benchmark_host --json "$DIR/host.json" 2>&1 | tee "$DIR/benchmark_host.log" ;;
    chained) python -m benchmarks.benchmark_chained_decode ${CHAINED_ARGS:-} 2>&1 | grep -v Warning | tee "$DIR/benchmark_chained_decode.log" ;;
    sol) python -m benchmarks.speed_of_light --shapes 8B,qwen 2>&1 | tee "$DIR/benchmark_speed_of_light.log" ;;
    profile)  # Nsight Compute, one launch per kernel of each point (benchmarks/profile_kernels.py)
      for point in ${PROFILE_POINTS:-prefill mid_qkv mid_o decode}; do
        ncu --clock-control none --profile-from-start off --section SpeedOfLight --section ComputeWorkloadAnalysis \
          --section MemoryWorkloadAnalysis --section SchedulerStats --section WarpStateStats --section Occupancy \
          --section LaunchStats --metrics sm__pipe_tensor_op_imma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_bytes.sum,dram__bytes_read.sum \
          python -m benchmarks.profile_kernels "$point" 2>&1 | grep -v "^==PROF==" > "$DIR/ncu_$point.txt"
        grep -E "^  [A-Za-z_].*\(|Duration|DRAM Throughput|L2 Cache Throughput|imma|lts__t_bytes" "$DIR/ncu_$point.txt"
      done ;;
    tune) python -m benchmarks.tune_int8_scaled_mm --models "${TUNE_MODELS:-Llama-3-8B,Llama-3-70B}" \
            --buckets "${TUNE_BUCKETS:-1,16,32,64}" ${TUNE_ARGS:-} 2>&1 | tee "$DIR/tune.log" | tail -40
          mkdir -p "$OUT/tuned" && cp vllm_int8/ops/tuned/*.json "$OUT/tuned/" ;;
  esac
done
mkdir -p "$OUT/$(basename "$DIR")"  # what this call wrote
find "$DIR" -type f -newer /tmp/gpu_steps.stamp -exec cp {} "$OUT/$(basename "$DIR")/" \;
