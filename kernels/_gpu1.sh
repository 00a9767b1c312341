set -uo pipefail
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=0 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
n=""; python -c "import xdist" 2>/dev/null && n="-n 8"
timeout 200 python -m pytest -q -x $n -p no:cacheprovider tests/ops/test_quant_kernel.py tests/ops/test_scaled_mm_kernel.py tests/ops/test_quant_mm.py > $OUT/gpu_tests_ops.log 2>&1; tail -3 $OUT/gpu_tests_ops.log
timeout 120 python kernels/sweep_quant.py > $OUT/sweep_quant.log 2>&1; grep -E "shipped" $OUT/sweep_quant.log | head -20
timeout 260 python kernels/sweep_gemm_v2.py --prefill-m "" --decode-m 1,16 --out $OUT > $OUT/sweep_decode.log 2>&1; tail -2 $OUT/sweep_decode.log
