"""vllm-int8: INT8 W8A8 linear kernels (Triton + torch) in vLLM's plugin shape."""

__version__ = "0.3.8"
