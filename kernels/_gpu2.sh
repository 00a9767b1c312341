set -uo pipefail
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=0 PYTHONPATH=$PWD
n=""; python -c "import xdist" 2>/dev/null && n="-n 8"
timeout 100 python -m pytest -q -x $n -p no:cacheprovider tests/ops/test_quant_kernel.py tests/ops/test_quant_mm.py tests/ops/test_bound_mm.py tests/ops/test_scaled_mm_kernel.py tests/linear > $OUT/gpu_tests_ops.log 2>&1; tail -2 $OUT/gpu_tests_ops.log
timeout 180 python kernels/tune_int8_scaled_mm.py --models Llama-3-8B,Llama-3-70B --buckets 1,16 --new-only > $OUT/tune_decode_swap.log 2>&1; tail -3 $OUT/tune_decode_swap.log; cp vllm_int8/ops/tuned/NVIDIA_H100_80GB_HBM3.json $OUT/
timeout 300 python kernels/benchmark_layer.py > $OUT/benchmark_layer.log 2>&1; tail -22 $OUT/benchmark_layer.log; cp kernels/results/summary.json kernels/results/layer_*.json $OUT/
