"""The compute-sanitizer target of `test_sanitizer.py`: every kernel path on ragged shapes, checked.

compute-sanitizer --tool memcheck python -m tests.gpu.sanitize_target
"""

from __future__ import annotations

import itertools

import torch

from tests.problems import azp_terms
from vllm_int8 import ops

SHAPES = [(1, 1, 1), (1, 33, 17), (17, 100, 35), (70, 257, 130), (129, 576, 960), (5, 9000, 3)]


def report_quant_mismatch(x, scale, azp, symmetric, q, x_s) -> None:
    """Compare with the reference on CPU and on the GPU; print the first differing values."""
    cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
    for where, args in (("cpu", (x.cpu(), cpu(scale), cpu(azp))), ("gpu", (x, scale, azp))):
        q_ref, s_ref, _ = ops.torch_scaled_int8_quant(*args, symmetric)
        bad = (q.cpu() != q_ref.cpu()).nonzero()
        if len(bad) or not torch.equal(x_s.cpu(), s_ref.cpu()):
            r, c = bad[0].tolist() if len(bad) else (0, 0)
            s_row = x_s.reshape(-1)[r if x_s.numel() > 1 else 0]
            print(
                f"MISMATCH vs {where} reference: shape {tuple(x.shape)} sym={symmetric} static={scale is not None} "
                f"{len(bad)} values; x={x[r, c].item()!r} scale={s_row.item()!r} q={q[r, c].item()} "
                f"ref={q_ref[r, c].item()} scales equal={torch.equal(x_s.cpu(), s_ref.cpu())}"
            )


def main() -> None:
    torch.manual_seed(0)
    checked = 0
    for (m, k, n), symmetric, static, kn_layout in itertools.product(
        SHAPES, (True, False), (True, False), (True, False)
    ):
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        scale = torch.tensor([0.02], device="cuda") if static else None
        azp = torch.tensor([3], device="cuda", dtype=torch.int32) if static and not symmetric else None
        q, x_s, x_zp = ops.triton_scaled_int8_quant(x, scale, azp, symmetric)
        report_quant_mismatch(x, scale, azp, symmetric, q, x_s)
        w = torch.randint(-128, 128, (k, n) if kn_layout else (n, k), device="cuda", dtype=torch.int8)
        w = w if kn_layout else w.t()
        w_s = torch.rand(n, device="cuda") * 0.01
        bias = torch.randn(n, device="cuda", dtype=torch.float16)
        adj, per_token = azp_terms(w, x_zp, symmetric, static)
        out = ops.triton_scaled_mm(q, w, x_s, w_s, torch.float16, bias, adj, per_token)
        ref = ops.torch_scaled_mm(q, w, x_s, w_s, torch.float32, bias, adj, per_token)
        torch.testing.assert_close(out.float(), ref, rtol=2e-3, atol=2e-3)
        checked += 1
    torch.cuda.synchronize()
    print(f"sanitize_target: {checked} cases checked")


if __name__ == "__main__":
    main()
