set -uo pipefail
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=0
python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD:/tmp/site
n=""; python -c "import xdist" 2>/dev/null && n="-n 12"
timeout 200 python -m pytest -q $n -p no:cacheprovider tests > $OUT/gpu_tests.log 2>&1; tail -4 $OUT/gpu_tests.log
timeout 340 python kernels/benchmark_layer.py > $OUT/benchmark_layer.log 2>&1; tail -14 $OUT/benchmark_layer.log; cp kernels/results/summary.json kernels/results/layer_*.json $OUT/
