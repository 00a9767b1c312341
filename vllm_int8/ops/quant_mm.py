"""`quant_scaled_mm`: a linear layer's whole apply (quantize the activation, then the fused GEMM) as one op.

One custom op instead of two halves the dispatcher crossings of an eager call, and lets the
Triton backend choose per call between two launches (the quant kernel, then the GEMM) and one
(the GEMM quantizing its own rows: `launch_quant_scaled_mm`). The one-launch path re-reads each
activation row in every program, so it is taken only for one-token decode and while those
re-reads stay small next to the weight it streams (`FUSED_REREAD_LIMIT`), and only for eager
calls: it saves a launch's host time, which is what an eager decode step is made of, but its
programs wait for the row statistics before streaming the weight. Under CUDA-graph capture, where
launches cost no host time, two launches are faster on the GPU (H100, 2026-11-26, Llama-3-8B
decode shapes, M=1: the one-launch GEMM streamed 1198-2367 GB/s against 1383-2425 for the GEMM
alone, and the quant kernel takes 2.4-3.7 µs: `d3b4b33:kernels/results/sweep_decode_*.log`).
"""

from __future__ import annotations

import torch

from vllm_int8.ops import reference
from vllm_int8.ops.dispatch import register_op, triton_module, use_triton
from vllm_int8.ops.split_k_workspace import is_capturing
from vllm_int8.ops.validation import check_quant_args, check_weight_args

# One launch while the programs' re-reads of the activation rows (each program reads its rows over
# all of K for their statistics; they come from L2, the weight from DRAM) stay at most this
# fraction of the weight's bytes: M * elem_size * split_k / BLOCK_N <= 1/4.
FUSED_REREAD_LIMIT = 1 / 4


def fused_fits(m: int, elem_size: int, block_n: int, split_k: int) -> bool:
    """One launch for single-token decode only: with one row each tile quantizes it once; several
    rows cost BLOCK_M-wide quantization per tile, and one such variant (16x32x32, 5 stages, ragged
    K) does not compile with Triton 3.6 or 3.9 for sm_90."""
    return m == 1 and m * elem_size * split_k <= block_n * FUSED_REREAD_LIMIT


def one_launch(x: torch.Tensor, cfg) -> bool:
    """Whether the apply of x [M, K] with GEMM tiles `cfg` is one launch (the GEMM quantizing its
    own rows) rather than the quant kernel and then the GEMM: the one place that decides it, for
    the op's body and the layer's plans. Never under CUDA-graph capture (see above)."""
    return fused_fits(x.shape[0], x.element_size(), cfg.block_n, cfg.split_k) and not capturing(x)


def capturing(x: torch.Tensor) -> bool:
    """Whether x's device is recording a CUDA graph now (then launches cost no host time)."""
    return x.is_cuda and is_capturing(x.device)


def _quant_scaled_mm_triton(x, weight, scale_b, out_dtype, bias, azp_adj, input_scale, input_zero_point, symmetric,
                            static_weight):  # fmt: skip
    mm = triton_module("scaled_mm_kernel")
    m, k = x.shape
    cfg = mm.gemm_config(m, weight.shape[1], k, x.device)
    if one_launch(x, cfg):
        args = (x, weight, scale_b, out_dtype, bias, azp_adj, input_scale, input_zero_point, symmetric)
        return mm.launch_quant_scaled_mm(*args, config=cfg, static_weight=static_weight)
    quant = triton_module("quant_kernel")
    x_q, x_s, x_zp = quant.launch_scaled_int8_quant(x, input_scale, input_zero_point, symmetric)
    per_token_azp = x_zp if input_scale is None and not symmetric else None
    return mm.launch_scaled_mm(x_q, weight, x_s, scale_b, out_dtype, bias, azp_adj, per_token_azp, config=cfg,
                               static_weight=static_weight)  # fmt: skip


def _quant_scaled_mm_torch(x, weight, scale_b, out_dtype, bias, azp_adj, input_scale, input_zero_point, symmetric,
                           static_weight=False):  # fmt: skip
    x_q, x_s, x_zp = reference.torch_scaled_int8_quant(x, input_scale, input_zero_point, symmetric)
    per_token_azp = x_zp if input_scale is None and not symmetric else None
    return reference.torch_scaled_mm(x_q, weight, x_s, scale_b, out_dtype, bias, azp_adj, per_token_azp)


def quant_scaled_mm_impl(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None,
    azp_adj: torch.Tensor | None,
    input_scale: torch.Tensor | None,
    input_zero_point: torch.Tensor | None,
    symmetric: bool,
    backend: str,
    static_weight: bool = False,
) -> torch.Tensor:
    """The op's body, callable directly by an eager caller that validated its arguments.
    `static_weight`: no kernel writes `weight` (a layer's), so the GEMM may read it early (pdl.py)."""
    args = (x, weight, scale_b, out_dtype, bias, azp_adj, input_scale, input_zero_point, symmetric, static_weight)
    return _quant_scaled_mm_triton(*args) if use_triton(x.device, backend) else _quant_scaled_mm_torch(*args)


def _fake(x, weight, scale_b, out_dtype, bias, azp_adj, input_scale, input_zero_point, symmetric, backend,
          static_weight=False):  # fmt: skip
    return x.new_empty((x.shape[0], weight.shape[1]), dtype=out_dtype)


register_op(
    "quant_scaled_mm(Tensor x, Tensor weight, Tensor scale_b, ScalarType out_dtype, Tensor? bias, Tensor? azp_adj, "
    "Tensor? input_scale, Tensor? input_zero_point, bool symmetric, str backend, bool static_weight=False) -> Tensor",
    quant_scaled_mm_impl,
    _fake,
)


def quant_scaled_mm(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype | None = None,
    bias: torch.Tensor | None = None,
    azp_adj: torch.Tensor | None = None,
    input_scale: torch.Tensor | None = None,
    input_zero_point: torch.Tensor | None = None,
    symmetric: bool = True,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """`scaled_mm(scaled_int8_quant(x))` for float x [M, K]: y [M, N] in `out_dtype` (default x.dtype).

    Dynamic per-token quantization when `input_scale` is None (asymmetric: `azp_adj` holds the
    weight's column sums), static per-tensor otherwise (asymmetric: `input_zero_point`, and
    `azp_adj` already multiplied by it, as the linear layer stores it). Bit for bit the result of
    the two ops in sequence.
    """
    check_quant_args(x, input_scale, input_zero_point, symmetric)
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D [M, K], got shape {tuple(x.shape)}")
    out_dtype = x.dtype if out_dtype is None else out_dtype
    check_weight_args(x.shape[0], x.shape[1], x.device, weight, scale_b, out_dtype, bias, azp_adj, not symmetric)
    return torch.ops.vllm_int8.quant_scaled_mm(
        x, weight, scale_b, out_dtype, bias, azp_adj, input_scale, input_zero_point, symmetric, backend
    )
