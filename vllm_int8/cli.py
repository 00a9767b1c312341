"""The `vllm-int8` command: info, quantize, agreement, generate, eval, rocm-check (default model: embedded SmolLM2)."""

from __future__ import annotations

import argparse
import sys

# The four activation schemes (vllm_int8.linear.schemes), named here so that parsing a command
# line, `--help` included, imports neither torch nor Triton.
SCHEME_NAMES = ("dynamic-sym", "dynamic-asym", "static-sym", "static-asym")
DEFAULT_MODEL = "embedded"
DEFAULT_SCHEME = "dynamic-asym"


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def cmd_info(args: argparse.Namespace) -> int:
    """Print the platform, its arch, AITER's state and which kernel each scheme gets, and why."""
    from vllm_int8.linear import describe_selection
    from vllm_int8.vllm_plugin.report import describe_vllm

    print(describe_selection())
    print()
    print(describe_vllm())
    return 0


def _alpha(text: str) -> float | str | None:
    """--smoothquant: an alpha in [0, 1], 'off', or 'default' (the scheme's default)."""
    from vllm_int8.models.smoothquant import parse_alpha

    try:
        return parse_alpha(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_quantize(args: argparse.Namespace) -> int:
    """Quantize a float model (default: the embedded SmolLM2) into a W8A8 compressed-tensors checkpoint."""
    from vllm_int8.models import load_float_model, quantize_model, save_checkpoint
    from vllm_int8.models.calibration import calibration_batches
    from vllm_int8.models.embedded import EMBEDDED_ALIASES
    from vllm_int8.models.smoothquant import resolve_alpha

    alpha = resolve_alpha(args.scheme, args.smoothquant)
    smoothing = f", SmoothQuant alpha {alpha}" if alpha is not None else ""
    if args.model in EMBEDDED_ALIASES:  # built once per scheme and setting, then copied from the cache
        import shutil

        from vllm_int8.models.cache import embedded_checkpoint

        cached = embedded_checkpoint(args.scheme, alpha, args.calibration_batches, progress=True)
        shutil.copytree(cached, args.output, dirs_exist_ok=True)
        print(f"wrote {args.scheme} W8A8 checkpoint{smoothing} to {args.output}")
        return 0
    model, tokenizer = load_float_model(args.model)
    calibrate = args.scheme.startswith("static") or alpha is not None
    batches = calibration_batches(tokenizer, args.calibration_batches) if calibrate else ()
    config, tensors = quantize_model(model, args.scheme, batches, progress=True, smoothquant=alpha)
    path = save_checkpoint(args.output, model.config, config, tensors, tokenizer, model.generation_config)
    print(f"wrote {args.scheme} W8A8 checkpoint{smoothing} to {path}")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    """Top-1 agreement and KL of a W8A8 scheme with the float model on held-out text (not calibration, not tasks)."""
    from vllm_int8.eval.agreement import HELDOUT_SOURCE, measure_agreement

    result = measure_agreement(args.model, args.scheme, args.smoothquant, args.batches, _device(args.device))
    print(f"model: {args.model}  scheme: {args.scheme}  smoothquant: {result.alpha}  text: {HELDOUT_SOURCE}")
    print(result.agreement)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate text greedily from a prompt with the int8 kernels; prints which kernel ran."""
    import torch

    from vllm_int8.models.loading import describe_layers, load_model

    device = _device(args.device)
    model, tokenizer, layers = load_model(args.model, args.scheme, device)
    ids = tokenizer(args.prompt, return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=args.max_new_tokens, do_sample=False)
    scheme, kernel = describe_layers(layers)
    print(f"model: {args.model}  scheme: {scheme}  device: {device}  kernel: {kernel}")
    print(tokenizer.decode(out[0], skip_special_tokens=True))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Run an lm-eval config (default: embedded SmolLM2 W8A8 dynamic-asym vs its float baseline)."""
    from vllm_int8.eval.runner import run_eval_command

    return run_eval_command(args.config, args.limit, _device(args.device), verbose=args.verbose)


def cmd_rocm_check(args: argparse.Namespace) -> int:
    """Compile every kernel variant a ROCm launch can run for AMD targets, on this machine (no GPU needed)."""
    import os
    import subprocess

    if os.environ.get("TRITON_INTERPRET") == "1":  # interpreted kernels cannot be compiled: run without it
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        return subprocess.run([sys.executable, "-m", "vllm_int8.cli", *sys_argv_of(args)], env=env).returncode
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "0")  # our launches set it explicitly; silence the knob
    from vllm_int8.rocm_check import format_table, run_gate

    results = run_gate(tuple(args.arch or ("gfx942", "gfx950")), full=args.full, workers=args.workers)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1


def sys_argv_of(args: argparse.Namespace) -> list[str]:
    """The rocm-check command line that gives `args` (to re-run it in a child process)."""
    argv = ["rocm-check", "--workers", str(args.workers)] + (["--full"] if args.full else [])
    for arch in args.arch or ():
        argv += ["--arch", arch]
    return argv


def build_parser() -> argparse.ArgumentParser:
    from vllm_int8 import __version__

    parser = argparse.ArgumentParser(prog="vllm-int8", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vllm-int8 {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help=cmd_info.__doc__).set_defaults(func=cmd_info)

    schemes = list(SCHEME_NAMES)
    quantize = sub.add_parser("quantize", help=cmd_quantize.__doc__)
    quantize.add_argument("--model", default=DEFAULT_MODEL, help="'embedded' or a local HF model directory")
    quantize.add_argument("--scheme", default=DEFAULT_SCHEME, choices=schemes)
    calibration_help = "256-token calibration windows (a third prose, two thirds code)"
    quantize.add_argument("--calibration-batches", type=int, default=24, help=calibration_help)
    quantize.add_argument("--output", required=True, help="checkpoint directory to write")
    smooth_help = ("SmoothQuant alpha in [0, 1] or 'off' (default: 0.8 for static schemes, 0.65 for dynamic ones, "
                   "measured on the embedded model)")  # fmt: skip
    quantize.add_argument("--smoothquant", type=_alpha, default="default", metavar="ALPHA", help=smooth_help)
    quantize.set_defaults(func=cmd_quantize)

    agreement = sub.add_parser("agreement", help=cmd_agreement.__doc__)
    agreement.add_argument("--model", default=DEFAULT_MODEL, help="'embedded' or a local float HF model directory")
    agreement.add_argument("--scheme", default=DEFAULT_SCHEME, choices=schemes)
    agreement.add_argument("--smoothquant", type=_alpha, default="default", metavar="ALPHA", help=smooth_help)
    agreement.add_argument("--batches", type=int, default=16, help="256-token windows of held-out text")
    agreement.add_argument("--device", default="auto", help="auto, cpu or cuda")
    agreement.set_defaults(func=cmd_agreement)

    generate = sub.add_parser("generate", help=cmd_generate.__doc__)
    generate.add_argument("prompt")
    generate.add_argument(
        "--model", default=DEFAULT_MODEL, help="'embedded', a float HF model dir or a W8A8 checkpoint"
    )
    generate.add_argument("--scheme", default=DEFAULT_SCHEME, choices=[*schemes, "float"], help="for float models")
    generate.add_argument("--max-new-tokens", type=int, default=16)
    generate.add_argument("--device", default="auto", help="auto, cpu or cuda")
    generate.set_defaults(func=cmd_generate)

    evaluate = sub.add_parser("eval", help=cmd_eval.__doc__)
    evaluate.add_argument("config", nargs="?", default=None, help="an lm-eval model config YAML (configs/)")
    evaluate.add_argument("--limit", type=int, default=None, help="override the config's limit")
    evaluate.add_argument("--device", default="auto", help="auto, cpu or cuda")
    evaluate.add_argument("--verbose", action="store_true", help="show the libraries' progress bars and log lines")
    evaluate.set_defaults(func=cmd_eval)

    rocm = sub.add_parser("rocm-check", help=cmd_rocm_check.__doc__)
    rocm.add_argument("--arch", action="append", choices=["gfx942", "gfx950"], help="repeatable; default both")
    rocm.add_argument("--full", action="store_true", help="every flag combination, not one of each")
    rocm.add_argument("--workers", type=int, default=2, help="parallel compile processes")
    rocm.set_defaults(func=cmd_rocm_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs a command; a bad model path, config or task ends in one line on stderr and exit code 2."""
    from vllm_int8.errors import UserInputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserInputError as error:
        print(f"vllm-int8 {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
