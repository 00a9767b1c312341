"""The ROCm compile gate: build every kernel variant a ROCm launch can run, for gfx942 and gfx950, on a CPU.

No AMD GPU is needed: Triton's AMD backend compiles to AMDGCN anywhere. Each variant's arguments
come from the launchers' own builders (`launch_arguments`, `quant_launch_arguments`) called on
meta tensors, then go through Triton's own binder for the HIP backend, so the specialization,
constexprs and options compiled here are the ones a launch on an MI300 would use.

A variant fails on: a compile error; a GEMM without int8 MFMA instructions; any VGPR/SGPR spill
or scratch memory; LDS over the arch's limit; a split-K kernel whose arrival-counter atomic is not
preceded by an `s_barrier` after the partial-tile stores. Compiled is not run: nothing here says
how fast, or even that the code is right on hardware; the CPU tests check the math.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import torch

from vllm_int8.ops.mm_configs import MMConfig
from vllm_int8.ops.rocm_configs import LDS_BYTES, VGPRS_PER_LANE, rocm_configs_to_check

ARCHS = ("gfx942", "gfx950")
_M_FOR_LABEL = {"M<=16": 8, "M<=64": 48, "M<=512": 300, "M>512": 4096}


@dataclasses.dataclass
class Variant:
    kernel: str  # "gemm" or "quant"
    name: str
    build: object  # () -> (jit function, positional args, constexprs and options)


@dataclasses.dataclass
class Result:
    variant: str
    arch: str
    compiled: bool
    mfma: int = 0
    vgprs: int = 0
    agprs: int = 0
    spills: int = 0
    lds: int = 0
    scratch: int = 0
    waves: int = 0
    barrier_before_arrival: bool | None = None
    error: str = ""
    failures: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.compiled and not self.failures


def _meta(*shape, dtype) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype, device="meta")


# K values that reach each main-loop form: BLOCK_K divides K; the launcher halves BLOCK_K until it
# does (fit_block_k); no power-of-two factor >= 32, so the masked loop.
K_FORMS = {"even": 4096, "fitted": 4096 + 64, "masked": 4096 + 40}


def _gemm_variant(
    label: str, cfg: MMConfig, flavour: str, a_mode: int, k_form: str, out_dtype, m: int | None = None
) -> Variant:
    from vllm_int8.ops import scaled_mm_kernel as mm

    m = m or _M_FOR_LABEL[label.split()[0]]
    n, k = 4096, K_FORMS[k_form]
    asym = flavour in ("asym", "static_azp")
    per_row = flavour == "asym"  # per-token scales with per-token azp; per-tensor otherwise

    def build():
        a = _meta(m, k, dtype=torch.int8 if a_mode == mm.A_INT8 else out_dtype)
        w = _meta(n, k, dtype=torch.int8).t()
        out = _meta(m, n, dtype=out_dtype)
        scale_a = _meta(m if per_row else 1, dtype=torch.float32)
        scale_b = _meta(n if per_row else 1, dtype=torch.float32)
        bias = _meta(n, dtype=out_dtype) if flavour != "sym" else None
        azp_adj = _meta(n, dtype=torch.int32) if asym else None
        has_azp = flavour == "asym"
        azp = _meta(m if a_mode == mm.A_INT8 else 1, dtype=torch.int32) if flavour == "static_azp" or has_azp else None
        if a_mode == mm.A_QUANT_DYNAMIC:
            azp = None
        symmetric = not asym
        grid, args, constexprs = mm.launch_arguments(
            a, w, out, scale_a, scale_b, bias, azp_adj, azp, has_azp, a_mode, symmetric, cfg
        )
        return mm._scaled_mm_kernel, args, constexprs

    mode = {0: "int8 A", 1: "static quant in kernel", 2: "dynamic quant in kernel"}[a_mode]
    name = (
        f"gemm {label} {cfg.block_m}x{cfg.block_n}x{cfg.block_k} w{cfg.num_warps} s{cfg.num_stages} | {flavour}"
        f"{' +bias' if flavour != 'sym' else ''} {'per-row/col' if per_row else 'per-tensor'} scales, "
        f"{k_form} K={k}, {mode}{' M=1' if m == 1 else ''}, {str(out_dtype).replace('torch.', '')}"
    )
    return Variant("gemm", name, build)


def _quant_variant(static: bool, symmetric: bool, k: int, dtype) -> Variant:
    from vllm_int8.ops import quant_kernel as qk

    def build():
        rows = _meta(64, k, dtype=dtype)
        q = _meta(64, k, dtype=torch.int8)
        scale = _meta(1 if static else 64, dtype=torch.float32)
        azp = None if symmetric else _meta(1 if static else 64, dtype=torch.int32)
        grid, args, constexprs = qk.quant_launch_arguments(rows, q, scale, azp, static, symmetric)
        return qk._scaled_int8_quant_kernel, args, constexprs

    name = (
        f"quant {'static' if static else 'dynamic'} {'sym' if symmetric else 'asym'} K={k} "
        f"({'one pass' if qk._launch_shape(k, 64)[0] else 'two passes'}) {str(dtype).replace('torch.', '')}"
    )
    return Variant("quant", name, build)


def variants(arch: str, full: bool = False) -> Iterator[Variant]:
    """Every GEMM config the ROCm heuristic can pick x the epilogue/operand variants, and every quant path.

    By default each config is built with every flag on at least once (all on; all off; the static
    zero-point epilogue; the in-kernel quant modes for decode configs); `full` builds the product.
    """
    from vllm_int8.ops.scaled_mm_kernel import A_INT8, A_QUANT_DYNAMIC, A_QUANT_STATIC

    for label, cfg in rocm_configs_to_check(arch):
        decode = cfg.block_m <= 16
        if full:
            for flavour in ("sym", "asym", "static_azp"):
                for k_form in K_FORMS:
                    for out_dtype in (torch.bfloat16, torch.float16, torch.float32):
                        modes = [A_INT8] + ([A_QUANT_DYNAMIC, A_QUANT_STATIC] if decode else [])
                        for a_mode in modes:
                            if a_mode == A_QUANT_DYNAMIC and flavour == "static_azp":
                                continue
                            yield _gemm_variant(label, cfg, flavour, a_mode, k_form, out_dtype)
            continue
        yield _gemm_variant(label, cfg, "asym", A_INT8, "masked", torch.bfloat16)
        yield _gemm_variant(label, cfg, "asym", A_INT8, "fitted", torch.bfloat16)
        yield _gemm_variant(label, cfg, "sym", A_INT8, "even", torch.float32)
        yield _gemm_variant(label, cfg, "static_azp", A_INT8, "even", torch.float16)
        if decode:
            yield _gemm_variant(label, cfg, "asym", A_QUANT_DYNAMIC, "masked", torch.bfloat16)
            yield _gemm_variant(label, cfg, "asym", A_QUANT_DYNAMIC, "even", torch.bfloat16)
            yield _gemm_variant(label, cfg, "asym", A_QUANT_DYNAMIC, "even", torch.bfloat16, m=1)
            yield _gemm_variant(label, cfg, "static_azp", A_QUANT_STATIC, "even", torch.bfloat16)
    for static in (False, True):
        for symmetric in (True, False):
            for k in (576, 4096, 14336, 28672, 40000):  # packed rows, one pass, long one pass, two passes
                yield _quant_variant(static, symmetric, k, torch.bfloat16)


def compile_variant(variant: Variant, arch: str):
    """Compile one variant for `arch` ("gfx942", "gfx950", or "sm_90" for NVIDIA) the way the JIT
    would on that GPU; returns Triton's CompiledKernel."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    try:  # Triton's own binder: the specialization a launch computes from these arguments
        from triton.runtime.jit import create_function_from_signature
    except ImportError as e:  # pragma: no cover - depends on the Triton version
        raise RuntimeError(f"this Triton ({triton.__version__}) lacks the binder the gate reuses") from e

    fn, args, constexprs = variant.build()
    if not isinstance(fn, triton.runtime.jit.JITFunction):
        raise RuntimeError("the kernels were built for TRITON_INTERPRET=1: run the gate in a process without it")
    if arch.startswith("sm_"):
        from triton.backends.nvidia.compiler import CUDABackend

        target = GPUTarget("cuda", int(arch[3:]), 32)
        backend = CUDABackend(target)
        constexprs = {k: v for k, v in constexprs.items() if k not in ("waves_per_eu", "matrix_instr_nonkdim", "kpack")}
    else:
        from triton.backends.amd.compiler import HIPBackend

        target = GPUTarget("hip", arch, 64)
        backend = HIPBackend(target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    # The options JITFunction.run adds itself, where this Triton's HIP backend knows them.
    added = {"debug": False, "instrumentation_mode": "", "fpsan_homomorphic_casts": False}
    fields = getattr(backend.parse_options({}), "__dataclass_fields__", added)
    kwargs = {**{k: v for k, v in added.items() if k in fields}, **constexprs}
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, consts, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    return triton.compile(ASTSource(fn, signature, consts, attrs), target=target, options=options.__dict__)


def _field(asm: str, key: str) -> int:
    found = re.findall(rf"\.{key}:\s+(\d+)", asm)
    return int(found[0]) if found else 0


def barrier_before_arrival(asm: str) -> bool | None:
    """In a split-K kernel: is there an s_barrier between the last store before the arrival
    counter's atomic add and that atomic? None when the kernel has no such atomic."""
    atomic = re.search(r"^\s*(global|buffer|flat)_atomic_add\w*", asm, re.M)
    if atomic is None:
        return None
    before = asm[: atomic.start()]
    last_store = max((m.start() for m in re.finditer(r"^\s*(global|buffer|flat)_store\w*", before, re.M)), default=-1)
    last_barrier = max((m.start() for m in re.finditer(r"^\s*s_barrier\b", before, re.M)), default=-1)
    return last_barrier > last_store >= 0


def check_variant(variant: Variant, arch: str) -> Result:
    try:
        compiled = compile_variant(variant, arch)
    except Exception as e:  # noqa: BLE001 - every compile failure is a gate failure, reported
        message = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return Result(variant.name, arch, False, error=f"{type(e).__name__}: {message}"[:200], failures=["compile"])
    asm = compiled.asm["amdgcn"]
    r = Result(variant.name, arch, True)
    r.mfma = len(re.findall(r"\bv_mfma_i32_\w+", asm))
    r.vgprs, r.agprs = _field(asm, "vgpr_count"), _field(asm, "agpr_count")
    r.spills = _field(asm, "vgpr_spill_count") + _field(asm, "sgpr_spill_count")
    r.scratch = _field(asm, "private_segment_fixed_size")
    r.lds = max(int(getattr(compiled.metadata, "shared", 0) or 0), _field(asm, "group_segment_fixed_size"))
    used = -(-(r.vgprs + r.agprs) // 8) * 8
    r.waves = min(8, VGPRS_PER_LANE // max(used, 1))
    r.barrier_before_arrival = barrier_before_arrival(asm)
    if variant.kernel == "gemm" and r.mfma == 0:
        r.failures.append("no int8 MFMA")
    if r.spills:
        r.failures.append(f"{r.spills} spilled registers")
    if r.scratch:
        r.failures.append(f"{r.scratch} B scratch")
    if r.lds > LDS_BYTES[arch]:
        r.failures.append(f"LDS {r.lds} > {LDS_BYTES[arch]}")
    if "split_k=" in variant.name and r.barrier_before_arrival is not True:
        r.failures.append("no s_barrier before the arrival counter")
    return r


def _check_one(task: tuple[int, str, bool]) -> Result:
    index, arch, full = task
    return check_variant(list(variants(arch, full))[index], arch)


def run_gate(archs=ARCHS, full: bool = False, workers: int = 1) -> list[Result]:
    """Compile every variant for every arch (in `workers` processes); results in a stable order."""
    tasks = [(i, arch, full) for arch in archs for i in range(len(list(variants(arch, full))))]
    if workers <= 1:
        return [_check_one(t) for t in tasks]
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_check_one, tasks)


def format_table(results: list[Result]) -> str:
    head = f"{'arch':<7} {'ok':<4} {'MFMA':>5} {'VGPR':>5} {'AGPR':>5} {'spill':>5} {'LDS B':>7} {'scratch':>7} " \
           f"{'waves':>5} {'bar':>4}  variant"  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in results:
        bar = {None: "-", True: "yes", False: "NO"}[r.barrier_before_arrival]
        lines.append(
            f"{r.arch:<7} {'ok' if r.ok else 'FAIL':<4} {r.mfma:>5} {r.vgprs:>5} {r.agprs:>5} {r.spills:>5} "
            f"{r.lds:>7} {r.scratch:>7} {r.waves:>5} {bar:>4}  {r.variant}"
            + (f"   <- {', '.join(r.failures)} {r.error}" if not r.ok else "")
        )
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results)} variants compiled for {', '.join(sorted({r.arch for r in results}))}: "
                 f"{len(results) - failed} passed, {failed} failed (compiled, not run)")  # fmt: skip
    return "\n".join(lines)
