set -uo pipefail
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=0
python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD:/tmp/site
timeout 170 python kernels/_diag_prefill.py 2>&1 | grep -v Warning | tail -40
timeout 380 python kernels/benchmark_int8_scaled_mm.py --m 1,16,256,1024,4096,8192 > $OUT/bench.log 2>&1; tail -5 $OUT/bench.log; cp kernels/results/summary.json kernels/results/NVIDIA_H100_80GB_HBM3.json kernels/results/NVIDIA_H100_80GB_HBM3.png $OUT/ 2>/dev/null
