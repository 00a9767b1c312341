"""Eval tests need the eval extra (lm-eval, transformers, compressed-tensors); CI installs it."""

import importlib.util

_EVAL_EXTRA = ("lm_eval", "transformers", "compressed_tensors", "yaml")
collect_ignore_glob = [] if all(importlib.util.find_spec(m) for m in _EVAL_EXTRA) else ["test_*.py"]
