"""The `glean-hub` command: subcommands, each a thin call into the library.

Errors that glean-hub raises on purpose (`GleanError`) are printed as one line; `--debug` shows
the traceback. Exit codes: 0 ok, 1 some inputs failed, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from .errors import GleanError

EPILOG = """\
GLEAN takes exactly one input size per model (e.g. 16x16 for a 16x model with 256x256 output)
and was trained on one degradation (MATLAB-bicubic downscaling, or a "realworld" mix of blur,
noise and JPEG). Run `glean-hub <command> --help` for each command's rules.
"""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _dtype(name: str | None):
    import torch

    return {None: None, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


# --- convert -----------------------------------------------------------------------------------


def add_convert(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="official GLEAN .pth -> safetensors folder",
        formatter_class=_formatter,
        description=textwrap.dedent(
            """\
            Convert an official GLEAN checkpoint (MMEditing/MMagic .pth: {'meta', 'state_dict'}, network under
            'generator.') into a folder that GLEAN.from_pretrained loads: config.json, model.safetensors, README.md.

            The architecture is read off the tensor shapes; every key and shape is checked, and a mismatch lists
            the missing, unexpected and misshapen tensors by name. The file is read with
            torch.load(weights_only=True): no code in it is run. Discriminator and loss-network tensors are
            dropped (--keep-discriminator writes the discriminator to discriminator.safetensors).

            By default the folder is self-contained (bank embedded). With --bank-out, the frozen StyleGAN2
            bank goes to its own folder, shared by all scales of a category, and is referenced by sha256.

            example:
              glean-hub convert glean_ffhq_16x_20210527-61a3afad.pth out/faces-16x --category faces
            """
        ),
    )
    p.add_argument("checkpoint", help="official .pth file")
    p.add_argument("output_dir", help="folder to write")
    p.add_argument("--category", help="metadata: faces, cats, cars, bedrooms, towers, ...")
    p.add_argument("--degradation", choices=["bicubic", "realworld"], default="bicubic",
                   help="what the model was trained on (default: bicubic; the FFHQ 128->1024 release is realworld)")
    p.add_argument("--bank-out", metavar="DIR", help="write the bank to DIR and reference it instead of embedding it")
    p.add_argument("--keep-discriminator", action="store_true", help="also write discriminator.safetensors")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], help="store weights in this dtype (default: as in the file)")
    p.set_defaults(run=run_convert)


def run_convert(args) -> int:
    from .convert import convert_glean

    report = convert_glean(
        args.checkpoint, args.output_dir, category=args.category, degradation=args.degradation,
        bank_dir=args.bank_out, keep_discriminator=args.keep_discriminator, dtype=_dtype(args.dtype),
    )
    print(report.summary())
    return 0


def add_convert_bank(sub) -> None:
    p = sub.add_parser(
        "convert-bank",
        help="official StyleGAN2 .pth -> latent bank folder",
        formatter_class=_formatter,
        description=textwrap.dedent(
            """\
            Convert an official StyleGAN2 checkpoint (MMGeneration layout: generator_ema.*, generator.*,
            discriminator.*) into a latent-bank folder for training new GLEAN models: config.json,
            model.safetensors (the EMA generator), discriminator.safetensors, README.md.

            example:
              glean-hub convert-bank stylegan2_c2_ffhq_1024.pth banks/faces-1024 --category faces
              glean-hub train --bank banks/faces-1024 --data faces/ --scale 16 --out runs/faces-16x
            """
        ),
    )
    p.add_argument("checkpoint")
    p.add_argument("output_dir")
    p.add_argument("--category")
    p.add_argument("--grayscale", action="store_true", help="metadata: the bank was trained on grayscale images")
    p.add_argument("--source", choices=["generator_ema", "generator"], default="generator_ema",
                   help="which generator to take (default: the EMA weights, as StyleGAN2 samples use)")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"])
    p.set_defaults(run=run_convert_bank)


def run_convert_bank(args) -> int:
    from .convert import convert_bank

    report = convert_bank(args.checkpoint, args.output_dir, category=args.category, grayscale=args.grayscale,
                          source=args.source, dtype=_dtype(args.dtype))
    print(report.summary())
    return 0


# --- models ------------------------------------------------------------------------------------


def add_models(sub) -> None:
    p = sub.add_parser("models", help="list the models of the registry that are installed or on the Hub")
    p.set_defaults(run=run_models)


def run_models(args) -> int:
    from .registry import available

    models = available()
    if not models:
        print("no models installed; load a folder or Hub repo with --model")
    for m in models:
        where = f"bundled ({m.local_dir})" if m.local_dir else "Hub"
        print(f"{m.category:<9} {m.scale:>2}x  {m.in_size:>3} -> {m.out_size:<4} {m.repo_id:<36} {where}  {m.notes}")
    return 0


# --- main --------------------------------------------------------------------------------------

COMMANDS = [add_convert, add_convert_bank, add_models]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glean-hub",
        description="GLEAN large-factor super-resolution (8x-64x): upscale, convert, train, push, benchmark, demo.",
        epilog=EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except GleanError as e:
        if args.debug:
            raise
        print(f"glean-hub {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
