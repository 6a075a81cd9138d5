"""`glean-hub invert` and `glean-hub eval`: GAN inversion as a command, and the comparison of methods.

Registered by cli.py; each is a thin call into invert.py / compare.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ConfigError, GleanError, ModelNotFoundError

INVERT_DESCRIPTION = """\
Super-resolution by GAN inversion (PULSE-style) on a latent bank: the W+ codes of the frozen StyleGAN2
(and with --noise its noise maps) are optimised so that the MATLAB-bicubic downscale of the generated image
matches the input's LR, with the codes kept near the mapping network's distribution. The baseline GLEAN's
paper compares against: slower by orders of magnitude (one optimisation per image). The same input rules as
`glean-hub upscale` (crop/pad/resize, MATLAB-bicubic LR, --align-faces paste-back); PNGs named
<stem>_invert<scale>x.png. Deterministic for a --seed.

The bank: --category/--scale or --model (the bank of that GLEAN model, the one GLEAN itself uses), or
--bank NAME_OR_DIR (any latent bank the package loads: bundled, trained, converted, released) with --scale.

examples:
  glean-hub invert face.png -o out --category faces --scale 16 --steps 300 --noise
  glean-hub invert 'shots/*.png' -o out --bank openmmlab/stylegan2-cat-256 --scale 8 --generator-steps 50
"""

EVAL_DESCRIPTION = """\
Compare super-resolution methods on your ground-truth images: each image is used as it is when it is the
model's output size S x S, otherwise cut square (--crop, default the centred square) and MATLAB-bicubic
resized to S x S; its MATLAB-bicubic LR goes to every method.

methods (--methods, comma-separated; default bicubic,glean,invert plus no-bank when --no-bank-model is given):
  bicubic   MATLAB-bicubic upscaling of the LR
  glean     the model(s) (--model may be repeated: glean:<name> each; --category/--scale: the registry model)
  no-bank   the bank-less baseline model given with --no-bank-model (same encoder-decoder, zeros for the bank)
  invert    GAN inversion on the first model's bank (or --bank), --invert-steps steps per image

Writes OUT/metrics.json ({"methods": {m: {psnr, ssim, lr_psnr, grid, seconds_per_image[, lpips]}},
"images": [per image]}), OUT/metrics.md (the table) and OUT/grid.png (LR | methods | ground truth, the first
--grid-rows images). PSNR/SSIM on RGB uint8 against the ground truth; LR-PSNR: the output's MATLAB-bicubic
downscale against the LR; grid: periodic-artefact measure in dB (0: no more than the ground truth); LPIPS
only when the lpips package and its AlexNet weights are installed (nothing is downloaded).

examples:
  glean-hub eval ../data/faces/val --category faces --scale 16 --crop face --limit 32 --out eval-faces16
  glean-hub eval imgs/ --model runs/a/model --model runs/b/model --methods bicubic,glean --out cmp
"""


def _positive_int(text: str) -> int:
    from .cli import _positive_int as parse

    return parse(text)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _add_inversion_flags(p, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}steps", type=_positive_int, default=200, metavar="N", help="Adam steps per image (default 200)")
    p.add_argument(f"--{prefix}noise", action="store_true", help="also optimise the noise maps (default: the bank's stored noise)")
    p.add_argument(f"--{prefix}generator-steps", type=_non_negative_int, default=0, metavar="N",
                   help="DGP-style: N more steps that also fine-tune a copy of the bank, progressively (default 0)")
    p.add_argument(f"--{prefix}init", choices=["mean", "random"], default="mean", help="start at the mean w or a seeded random w (default mean)")
    p.add_argument(f"--{prefix}lr", type=float, default=0.1, metavar="LR", help="Adam learning rate of the normalised codes (default 0.1)")
    p.add_argument(f"--{prefix}latent-weight", type=float, default=1e-3, metavar="W",
                   help="penalty on the squared distance to the mean w, in units of its std (default 1e-3)")


def _settings(args, prefix: str = ""):
    from .invert import InversionSettings

    get = lambda name: getattr(args, (prefix + name).replace("-", "_"))
    return InversionSettings(steps=get("steps"), lr=get("lr"), seed=args.seed, init=get("init"),
                             latent_weight=get("latent-weight"), optimize_noise=get("noise"),
                             generator_steps=get("generator-steps"))


# --- invert ------------------------------------------------------------------------------------


def add_invert(sub) -> None:
    from .cli import _formatter

    p = sub.add_parser("invert", help="super-resolve by GAN inversion on a latent bank (the PULSE-style baseline)",
                       formatter_class=_formatter, description=INVERT_DESCRIPTION)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUTDIR", help="folder for the PNGs (created if needed)")
    p.add_argument("--category", help="use the bank of the registry model of this category (with --scale)")
    p.add_argument("--scale", type=_positive_int, help="upscaling factor: input side = bank output side / scale")
    p.add_argument("--model", metavar="REPO_OR_DIR", help="use the bank of this GLEAN model")
    p.add_argument("--bank", metavar="REPO_OR_DIR", help="a latent bank by name or folder (needs --scale)")
    _add_inversion_flags(p)
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the w statistics and random init (default 0)")
    p.add_argument("--mode", choices=["crop", "pad", "resize"], default="crop", help="how non-square inputs are made square")
    p.add_argument("--align-faces", action="store_true", help="detect, align and paste back the largest face")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="images optimised together (default 8)")
    p.add_argument("--save-lr", action="store_true", help="also write <stem>_lr.png, the exact LR the inversion matched")
    p.add_argument("--output-size", type=_positive_int, metavar="N", help="resample the result to longer side N")
    p.add_argument("--max-pixels", type=_positive_int, metavar="N", help="refuse larger images (default 8192*8192)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(run=run_invert)


def plan_invert_outputs(files, out_dir: Path, scale: int, output_size, save_lr: bool, overwrite: bool):
    """Jobs with <stem>_invert<scale>x[_resizedN].png; clashes and existing files (without --overwrite) are problems."""
    from .batch import Job, lr_name

    jobs, problems, claimed = [], [], {}
    for f in files:
        out = out_dir / (f"{f.stem}_invert{scale}x" + (f"_resized{output_size}" if output_size else "") + ".png")
        lr = out_dir / lr_name(f) if save_lr else None
        targets = [t for t in (out, lr) if t is not None]
        clash = next((claimed[t] for t in targets if t in claimed), None)
        if clash is not None:
            problems.append((str(f), f"its output {out.name} would overwrite the one of {clash} (same file stem)"))
        elif any(t.is_dir() for t in targets):
            problems.append((str(f), f"{out} is a folder; move it away"))
        elif any(t.exists() for t in targets) and not overwrite:
            problems.append((str(f), f"{next(t for t in targets if t.exists())} already exists; pass --overwrite to replace it"))
        else:
            claimed.update({t: f for t in targets})
            jobs.append(Job(f, out, lr))
    return jobs, problems


def _inversion_pipeline(args, settings, device):
    from .invert import InversionPipeline
    from .registry import categories

    if args.bank and args.model:
        raise ConfigError("give either --bank or --model (whose bank is used), not both")
    if args.bank:
        return InversionPipeline.from_pretrained(args.bank, bank=True, scale=args.scale, settings=settings, device=device)
    if args.model is None and args.category is None:
        raise ModelNotFoundError(f"say which bank: --category ({', '.join(categories()) or 'none installed'}) with --scale, "
                                 "--model REPO_OR_DIR, or --bank REPO_OR_DIR with --scale")
    return InversionPipeline.from_pretrained(args.model or args.category, scale=args.scale, category=args.category,
                                             settings=settings, device=device)


def run_invert(args) -> int:
    from .batch import BatchReport, ensure_output_dir, expand_inputs, upscale_files
    from .pipeline import check_output_size

    settings = _settings(args)  # bad values: one line before any work
    files, problems = expand_inputs(args.inputs)
    for where, message in problems:
        print(f"{where}: error: {message}", file=sys.stderr)
    if not files:
        raise GleanError("no images found in " + ", ".join(args.inputs))
    check_output_size(args.output_size, args.max_pixels)
    pipe = _inversion_pipeline(args, settings, args.device)
    out_dir = ensure_output_dir(args.output_dir)
    jobs, clashes = plan_invert_outputs(files, out_dir, pipe.config.scale, args.output_size, args.save_lr, args.overwrite)
    for where, message in clashes:
        print(f"{where}: error: {message}", file=sys.stderr)
    print(repr(pipe), file=sys.stderr)
    report = BatchReport(failed=problems + clashes)
    upscale_files(pipe, jobs, mode=args.mode, align_faces=args.align_faces, output_size=args.output_size,
                  batch_size=args.batch_size, max_pixels=args.max_pixels, debug=args.debug, report=report)
    print(report.summary(out_dir).replace("upscaled", "inverted", 1))
    return 1 if report.failed else 0


# --- eval --------------------------------------------------------------------------------------


def add_eval(sub) -> None:
    from .cli import _formatter

    p = sub.add_parser("eval", help="compare bicubic, GLEAN, the bank-less baseline and GAN inversion on your images",
                       formatter_class=_formatter, description=EVAL_DESCRIPTION)
    p.add_argument("inputs", nargs="+", metavar="IMAGES", help="ground-truth image files, folders or globs")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for metrics.json, metrics.md and grid.png")
    p.add_argument("--category", help="registry model category (with --scale)")
    p.add_argument("--scale", type=_positive_int, help="upscaling factor of the registry model")
    p.add_argument("--model", action="append", metavar="NAME_OR_DIR", help="a GLEAN model (repeat to compare several)")
    p.add_argument("--no-bank-model", metavar="NAME_OR_DIR", help="the bank-less baseline (method no-bank)")
    p.add_argument("--bank", metavar="NAME_OR_DIR", help="invert this bank instead of the first model's")
    p.add_argument("--methods", help="comma-separated: bicubic,glean,no-bank,invert (default: all that are given)")
    _add_inversion_flags(p, prefix="invert-")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--crop", choices=["center", "face", "pad"], default="center",
                   help="how ground truths that are not S x S are made square (default center; face: the faces models' training crop)")
    p.add_argument("--limit", type=_positive_int, metavar="N", help="only the first N images (sorted by name)")
    p.add_argument("--grid-rows", type=_positive_int, default=6, metavar="N", help="images in grid.png (default 6)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--batch-size", type=_positive_int, default=16, help="images per forward / inversion batch (default 16)")
    p.add_argument("--max-pixels", type=_positive_int, metavar="N", help="refuse larger images (default 8192*8192)")
    p.set_defaults(run=run_eval)


def run_eval(args) -> int:
    from .batch import ensure_output_dir, expand_inputs
    from .compare import (
        METHODS,
        bicubic_method,
        compare,
        glean_method,
        load_ground_truth,
        load_lpips,
        parse_methods,
        settings_record,
        write_report,
    )
    from .glean import GLEAN
    from .invert import InversionPipeline
    from .pipeline import GLEANPipeline, resolve_device
    from .registry import categories

    # 1. arguments, before loading anything
    settings = _settings(args, prefix="invert_")
    if args.methods is None:
        methods = [m for m in METHODS if m != "no-bank" or args.no_bank_model]
    else:
        methods = parse_methods(args.methods)
    if "no-bank" in methods and not args.no_bank_model:
        raise ConfigError("method no-bank needs the bank-less baseline model: --no-bank-model NAME_OR_DIR")
    if args.no_bank_model and "no-bank" not in methods:
        raise ConfigError(f"--no-bank-model was given but --methods {args.methods} does not name no-bank")
    if not args.model and args.category is None:
        raise ModelNotFoundError(f"say which model: --category ({', '.join(categories()) or 'none installed'}) with --scale, "
                                 "or --model NAME_OR_DIR")
    if args.model and args.category is not None and len(args.model) > 1:
        raise ConfigError("--category with several --model: give the models only")
    files, problems = expand_inputs(args.inputs)
    for where, message in problems:
        print(f"{where}: error: {message}", file=sys.stderr)
    if not files:
        raise GleanError("no images found in " + ", ".join(args.inputs))
    files = files[: args.limit] if args.limit else files
    device = resolve_device(args.device)
    out_dir = ensure_output_dir(args.out, flag="--out")

    # 2. models (all the same in -> out sizes)
    names = args.model or [args.category]
    models = {n: GLEAN.from_pretrained(n, scale=args.scale, category=args.category, device=device) for n in names}
    first = next(iter(models.values())).config
    no_bank = GLEAN.from_pretrained(args.no_bank_model, device=device) if args.no_bank_model else None
    for name, m in list(models.items()) + ([(args.no_bank_model, no_bank)] if no_bank is not None else []):
        if (m.config.in_size, m.config.out_size) != (first.in_size, first.out_size):
            raise ConfigError(f"{name} is {m.config.in_size} -> {m.config.out_size} but {names[0]} is "
                              f"{first.in_size} -> {first.out_size}: compared models must share their sizes")

    # 3. ground truth, LR, methods
    hr, image_names, bad = load_ground_truth(files, first.out_size, args.crop, args.max_pixels)
    for where, message in bad:
        print(f"{where}: error: {message}", file=sys.stderr)
    runs = {}
    for method in methods:
        if method == "bicubic":
            runs["bicubic"] = bicubic_method(first.out_size)
        elif method == "glean":
            for n, m in models.items():
                runs["glean" if len(models) == 1 else f"glean:{n}"] = glean_method(GLEANPipeline(m, device=device, dtype="fp32"), args.batch_size)
        elif method == "no-bank":
            runs["no-bank"] = glean_method(GLEANPipeline(no_bank, device=device, dtype="fp32"), args.batch_size)
        else:
            if args.bank:
                pipe = InversionPipeline.from_pretrained(args.bank, bank=True, scale=first.scale, settings=settings, device=device)
                if pipe.config.out_size != first.out_size:
                    raise ConfigError(f"--bank {args.bank} makes {pipe.config.out_size} px images, the models {first.out_size} px")
            else:
                pipe = InversionPipeline(next(iter(models.values())).generator, first.scale, settings, device)
            runs["invert"] = glean_method(pipe, args.batch_size)
    lpips, note = load_lpips(device)
    if note:
        print(note, file=sys.stderr)
    log = lambda line: print(line, file=sys.stderr, flush=True)
    metrics, outputs, lr = compare(hr, first.in_size, runs, image_names, lpips=lpips, seed=args.seed, log=log)
    metrics["settings"] = settings_record(
        models=names, no_bank_model=args.no_bank_model, bank=args.bank, scale=first.scale, in_size=first.in_size,
        out_size=first.out_size, crop=args.crop, seed=args.seed, images=len(hr), device=str(device),
        invert=settings if "invert" in methods else None, lpips=note or "LPIPS (AlexNet, lpips package)")
    paths = write_report(out_dir, metrics, lr, outputs, hr, args.grid_rows)
    print(paths["table"].read_text(), end="")
    print(f"wrote {paths['json']}, {paths['table']}, {paths['grid']} ({len(hr)} images)")
    return 1 if problems or bad else 0
