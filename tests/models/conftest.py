"""Model tests need the eval extra (transformers, compressed-tensors); CI installs it."""

import importlib.util

_EVAL_EXTRA = ("transformers", "compressed_tensors", "safetensors")
collect_ignore_glob = [] if all(importlib.util.find_spec(m) for m in _EVAL_EXTRA) else ["test_*.py"]
