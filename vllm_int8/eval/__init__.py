"""lm-eval glue: our model backend (`vllm-int8`), local tasks, and the accuracy-check logic."""
