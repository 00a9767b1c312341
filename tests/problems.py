"""Problem builders the tests share: random int8 GEMM operands in every scheme and layout, a
linear layer's stored weight side, the tile configs small enough for the interpreter, and a
CUDA-graph capture."""

import dataclasses

import torch

from vllm_int8.ops import MMConfig

# Small tiles so a small problem still has several tiles, a K loop and masked edges in every direction.
SMALL_TILES = MMConfig(block_m=16, block_n=16, block_k=32, group_m=2, num_warps=4, num_stages=2)
# The same tiles computing C^T = B^T A^T (the decode configs' swap_ab), with and without split-K.
SWAPPED_TILES = dataclasses.replace(SMALL_TILES, block_n=32, swap_ab=1)

GEMM_SCHEMES = ["sym_tensor", "sym_token", "asym_token", "asym_static"]


def int8(*shape, device):
    return torch.randint(-128, 128, shape, dtype=torch.int8, device=device)


def weight_in_layout(k, n, layout, device):
    """[K, N] int8: 'kn' row-major, or 'nk' the transposed [N, K] checkpoint tensor (stride(0) == 1)."""
    return int8(k, n, device=device) if layout == "kn" else int8(n, k, device=device).t()


def make_problem(scheme, m, k, n, layout, per_channel, with_bias, out_dtype, device):
    a = int8(m, k, device=device)
    b = weight_in_layout(k, n, layout, device)
    per_token = scheme != "sym_tensor" and scheme != "asym_static"
    scale_a = torch.rand(m if per_token else 1, 1, device=device) * 0.02 + 1e-3
    scale_b = torch.rand(n if per_channel else 1, 1, device=device) * 0.02 + 1e-3
    bias = torch.randn(n, device=device).to(out_dtype) if with_bias else None
    azp_adj = azp = None
    if scheme.startswith("asym"):
        col_sums = b.sum(0, dtype=torch.int32)
        if scheme == "asym_token":
            azp_adj, azp = col_sums, torch.randint(-128, 128, (m,), dtype=torch.int32, device=device)
        else:
            azp_adj = col_sums * torch.randint(-128, 128, (1,), dtype=torch.int32, device=device)
    return a, b, scale_a, scale_b, bias, azp_adj, azp


LAYER_SCHEMES = ["dynamic_sym", "dynamic_asym", "static_sym", "static_asym"]


def layer_problem(scheme, m, k, n, dtype, with_bias, per_channel, device):
    """Float activations and a weight stored as the linear layer stores it ([K, N] view, azp_adj folded)."""
    x = (torch.randn(m, k, device=device) * torch.rand(m, 1, device=device) * 4 + 0.3).to(dtype)
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8, device=device).t()
    scale_b = torch.rand(n if per_channel else 1, 1, device=device) * 0.02 + 1e-3
    bias = torch.randn(n, device=device).to(dtype) if with_bias else None
    static, symmetric = scheme.startswith("static"), scheme.endswith("_sym")
    input_scale = torch.tensor([0.021], device=device) if static else None
    input_zp = torch.tensor([-7], dtype=torch.int32, device=device) if static and not symmetric else None
    azp_adj = None
    if not symmetric:
        azp_adj = w.sum(0, dtype=torch.int32)
        if static:
            azp_adj = azp_adj * input_zp
    return dict(x=x, weight=w, scale_b=scale_b, bias=bias, azp_adj=azp_adj, input_scale=input_scale,
                input_zero_point=input_zp, symmetric=symmetric)  # fmt: skip


def azp_terms(w, x_zp, symmetric: bool, static: bool):
    """(azp_adj, per-token azp) for the GEMM after a quant: static folds azp into the column sums."""
    if symmetric:
        return None, None
    if static:
        return w.sum(0, dtype=torch.int32) * x_zp, None
    return w.sum(0, dtype=torch.int32), x_zp.reshape(-1)


def captured(fn, *args):
    """(graph, output) of `fn(*args)` captured in a CUDA graph, after one warm-up call on a side
    stream (kernels compiled and the caching allocator settled outside the capture)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn(*args)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*args)
    return graph, out
