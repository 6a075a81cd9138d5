"""The `glean-hub` command: subcommands, each a thin call into the library.

Errors that glean-hub raises on purpose (`GleanError`) are printed as one line; `--debug` shows
the traceback. Exit codes: 0 ok, 1 some inputs failed, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from .errors import GleanError, os_error_message, write_line

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
    p.add_argument("checkpoint", help="official .pth file, or its URL (downloaded; a -xxxxxxxx.pth sha256 suffix is checked)")
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
    from .released import local_checkpoint

    with local_checkpoint(args.checkpoint) as checkpoint:  # a URL is downloaded (sha256 prefix checked) first
        report = convert_glean(
            checkpoint, args.output_dir, category=args.category, degradation=args.degradation,
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
    from .released import local_checkpoint

    with local_checkpoint(args.checkpoint) as checkpoint:  # a URL is downloaded (sha256 prefix checked) first
        report = convert_bank(checkpoint, args.output_dir, category=args.category, grayscale=args.grayscale,
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
    from .released import released_lines

    print("\nreleased by OpenMMLab (downloaded, checked and converted on first use; GLEAN.from_pretrained(NAME)):")
    for line in released_lines():
        print(line)
    return 0


# --- demo --------------------------------------------------------------------------------------


def add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="start the Gradio demo (local address printed)",
        formatter_class=_formatter,
        description=textwrap.dedent(
            """\
            Start the interactive demo (glean_hub/demo.py) on the installed models, or on the folders and Hub
            repos given with --model. It serves on 127.0.0.1 only, prints the address, and opens no public link
            unless --share is given. Runs on the GPU when PyTorch sees one, else on the CPU.
            Needs the demo extra: pip install "glean-hub[demo]" (from a source checkout: pip install -e ".[demo]").

            examples:
              glean-hub demo
              glean-hub demo --model out/faces-16x --port 8080
            """
        ),
    )
    p.add_argument("--host", default=None, help="address to serve on (default: 127.0.0.1; 0.0.0.0 for the network)")
    p.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free one)")
    p.add_argument("--share", action="store_true", help="also open a public *.gradio.live link (off by default)")
    p.add_argument("--model", action="append", metavar="DIR_OR_REPO",
                   help="serve this model folder or Hub repo instead of the installed models; repeat for several")
    p.set_defaults(run=run_demo)


def load_demo_app():
    """The demo app module (glean_hub/demo.py; it ships in the wheel); a missing Gradio is one line."""
    try:
        from . import demo
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("gradio", "gradio_client"):
            raise GleanError(f'the demo needs Gradio ({e.name} is not installed): pip install "glean-hub[demo]"') from None
        raise
    return demo


def run_demo(args) -> int:
    app = load_demo_app()
    app.launch(args.model, host=args.host, port=args.port, share=args.share)
    return 0


# --- training ----------------------------------------------------------------------------------


def _dataclass_flags(parser, cls, helps: dict[str, str], skip: tuple[str, ...] = ()) -> None:
    """One --flag per dataclass field (bool -> store_true; fields without default -> required)."""
    import dataclasses
    from pathlib import Path

    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING
        default = None if required else f.default
        text = helps.get(f.name, "") + ("" if required or default in (None, False) else f" (default: {default})")
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=text)
            continue
        kind = str(f.type)
        typ = Path if "Path" in kind else float if "float" in kind else int if "int" in kind else str
        choices = _CHOICES.get(f.name)
        metavar = None if choices else "PATH" if typ is Path else f.name.upper()
        parser.add_argument(flag, type=typ, default=default, required=required, help=text, metavar=metavar, choices=choices)


_CHOICES = {"pixel_loss": ("mse", "l1"), "degradation": ("bicubic", "realworld"), "crop_policy": ("center", "face", "pad"), "mixed_precision": ("no", "bf16", "fp16")}


_COMMON_TRAIN_HELP = {
    "data": "image folder: with train/ and val/ subfolders, or flat (a fixed 5%% by file-name hash is held out)",
    "out": "run folder (checkpoint.pt, log.jsonl, samples/, the result folder)",
    "category": "faces, cats, cars, bedrooms, towers, ... (metadata; picks the crop policy)",
    "crop_policy": "center, face or pad (default: faces -> face, others -> center)",
    "steps": "training steps", "batch_size": "images per step and process", "seed": "seed of every random choice",
    "mixed_precision": "no or bf16 (autocast through accelerate)", "cpu": "train on the CPU even when a GPU is present",
    "resume": "continue the run in --out exactly where its checkpoint stopped",
    "cache_dir": "where packed crops are cached (default: OUT/cache)",
    "max_minutes": "stop and checkpoint after this many minutes (then --resume)",
    "log_every": "steps between log lines", "sample_every": "steps between sample grids",
    "checkpoint_every": "steps between checkpoints", "progress": "(ignored; progress bars are on unless --no-progress)",
}


def add_train_bank(sub) -> None:
    from .train.bank import BankTrainArgs

    p = sub.add_parser(
        "train-bank", help="train a StyleGAN2 latent bank on a folder of images", formatter_class=_formatter,
        description=textwrap.dedent(
            """\
            Train a StyleGAN2 generator (the frozen latent bank of GLEAN models) with the non-saturating
            logistic loss, lazy R1, style mixing, an EMA generator and DiffAugment (so a few hundred images
            do not collapse). Writes OUT/bank: config.json, model.safetensors (EMA weights),
            discriminator.safetensors (to initialise GLEAN's discriminator), README.md.

            Widths: the defaults are the official config-f (512 channels, 512-d styles); small banks use
            e.g. --channel-max 64 --style-channels 128 --num-mlps 4.
            Multi-GPU: accelerate launch -m glean_hub.cli train-bank ...

            example:
              glean-hub train-bank --data ../shared/data/cats --category cats --resolution 128 \\
                  --channel-max 128 --style-channels 256 --steps 20000 --out runs/bank-cats-128
            """
        ),
    )
    _dataclass_flags(p, BankTrainArgs, {
        **_COMMON_TRAIN_HELP,
        "resolution": "output side of the bank (power of two)", "lr": "Adam learning rate",
        "r1_gamma": "R1 weight (default: 0.0002 * resolution^2 / batch)", "r1_every": "steps between lazy R1 updates",
        "mixing": "style-mixing probability", "ema_kimg": "EMA half-life in thousands of images (default: batch * 10 / 32)",
        "augment": "DiffAugment ops (comma-separated: color,translation,cutout; empty to disable)",
        "channel_max": "cap on layer widths", "channel_multiplier": "StyleGAN2 width multiplier",
        "style_channels": "latent (style) width", "num_mlps": "layers of the mapping MLP",
    }, skip=("progress",))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_train_bank)


def require_accelerate(command: str) -> None:
    """Training needs the train extra: say so in one line, before any run folder is made."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise GleanError(
            f'glean-hub {command} needs accelerate, which is not installed: pip install "glean-hub[train]" '
            '(from a source checkout: pip install -e ".[train]")'
        ) from None


def run_train_bank(args) -> int:
    require_accelerate("train-bank")
    from .train.bank import BankTrainArgs, train_bank

    folder = train_bank(_to_dataclass(BankTrainArgs, args))
    print(f"bank: {folder}")
    return 0


def add_train(sub) -> None:
    from .train.glean import GLEANTrainArgs

    p = sub.add_parser(
        "train", help="train a GLEAN model on a frozen latent bank", formatter_class=_formatter,
        description=textwrap.dedent(
            """\
            Train GLEAN (encoder, fusion convs, decoder) on a frozen latent bank. Losses: pixel MSE,
            perceptual (feature matching on the discriminator by default; VGG19 conv4_2 with
            --vgg-weights FILE, a torchvision vgg19 state dict), adversarial with the discriminator
            initialised from the bank's. LR images: MATLAB-exact bicubic downscaling of the uint8 HR
            crops (--degradation bicubic), or random blur + noise + JPEG (--degradation realworld).
            Writes OUT/model (a GLEAN folder that references the bank by path and sha256) and
            OUT/metrics.json (validation PSNR/SSIM vs bicubic, LR consistency).

            example:
              glean-hub train --bank runs/bank-cats-128/bank --data ../shared/data/cats --scale 8 \\
                  --rrdb-channels 32 --num-rrdbs 4 --steps 20000 --out runs/cats-8x
            """
        ),
    )
    _dataclass_flags(p, GLEANTrainArgs, {
        **_COMMON_TRAIN_HELP,
        "bank": "bank folder or Hub repo id (e.g. OUT/bank of train-bank)", "scale": "upscaling factor (in_size = bank side / scale)",
        "category": "metadata (default: the bank's category)", "degradation": "bicubic or realworld",
        "lr": "generator learning rate (cosine decay)", "d_lr": "discriminator learning rate", "warmup": "warm-up steps",
        "pixel_weight": "weight of the pixel MSE", "perceptual_weight": "weight of the perceptual term",
        "gan_weight": "weight of the adversarial term (0: no discriminator training)",
        "vgg_weights": "local torchvision vgg19 weights for a VGG perceptual loss",
        "rrdb_channels": "RRDB width", "num_rrdbs": "RRDB blocks", "rrdb_growth": "dense-block growth channels",
        "decoder_channels": "width of the decoder's last hidden conv",
        "decoder_width": "width of the pixel-shuffle decoder stages (default: the bank's widths, as the official models)",
        "bicubic_skip": "add the MATLAB-bicubic upscale of the input to the output (the network learns the residual)",
        "dense_rank": "add a fully connected residual over the encoder's whole input-size feature map, through this many "
                      "units (global and position-aware; helps aligned faces)",
        "decoder_activation": "LeakyReLU after each pixel-shuffle stage (the official decoder is linear but for its last "
                              "conv and the bank's features)",
        "pixel_loss": "mse (as MMEditing's GLEAN) or l1",
        "mse_from": "switch the pixel loss to MSE from this step (L1 converges faster; MSE then aims at the mean of the "
                    "plausible images, which PSNR rewards: +0.06 dB on faces 16x)",
        "extra_crops": "extra framings of the training images, comma-separated crop policies: center (faces: the photo's centre "
                       "square), start,end (the two ends of a landscape or portrait image), zoom-c,zoom-tl,zoom-tr,zoom-bl,zoom-br "
                       "(0.8x squares inside the centre square: more images from a small set; zoom65-c etc.: 0.65x)",
        "no_bank": "train the bank-less baseline (zeros instead of bank features) for comparisons",
        "bank_dropout": "share of each batch whose bank features the decoder gets as zeros (0 to 1): a bank trained on "
                        "the same few photos can let the model memorise them; this makes it work without the bank too",
        "init_from": "start the encoder, fusion convs and decoder from this GLEAN model (folder or Hub id, same scale and "
                     "widths; its bank is not used): fine-tune a small category from a related one",
        "val_images": "validation images for intermediate metrics (all at the end)",
    }, skip=("progress",))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_train)


def run_train(args) -> int:
    require_accelerate("train")
    from .train.glean import GLEANTrainArgs, train_glean

    folder = train_glean(_to_dataclass(GLEANTrainArgs, args))
    print(f"model: {folder}")
    return 0


def _to_dataclass(cls, args):
    import dataclasses

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values["progress"] = not args.no_progress
    return cls(**values)


def add_soup(sub) -> None:
    p = sub.add_parser(
        "soup", help="average the weights of finished GLEAN runs from one start (a model soup)", formatter_class=_formatter,
        description=textwrap.dedent(
            """\
            Average the weights of finished `glean-hub train` runs into one model (a uniform model soup,
            Wortsman et al. 2022). The runs must start from the same weights (the same --init-from, or
            the same --seed from scratch) and share architecture and bank; they may differ in recipe
            (crops, loss schedule, seed). On a small data set the soup is often better than each run:
            bundled towers 16x, runs at +0.295/+0.290/+0.292 dB over bicubic, their soup +0.306 dB.
            Writes OUT/model, OUT/training.json (each run's folder and args) and OUT/metrics.json (the
            validation split of the first run's --data, or --data).

            example:
              glean-hub soup runs/towers-16x-a runs/towers-16x-b runs/towers-16x-c --out runs/towers-16x-soup
            """
        ),
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="finished run folders (--out of glean-hub train)")
    p.add_argument("--out", type=Path, required=True, help="folder for the soup (model/, training.json, metrics.json)")
    p.add_argument("--data", type=Path, help="data folder for the validation numbers (default: the first run's --data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_soup)


def run_soup(args) -> int:
    from .train.soup import soup

    folder = soup(args.runs, args.out, data=args.data, progress=not args.no_progress)
    m = json.loads((args.out / "metrics.json").read_text())
    print(f"model: {folder} ({m['images']} validation images: {m['glean']['psnr']:.2f} dB, "
          f"bicubic {m['bicubic']['psnr']:.2f} dB, {m['glean']['psnr'] - m['bicubic']['psnr']:+.2f} dB)")
    return 0


# --- push --------------------------------------------------------------------------------------


def add_push(sub) -> None:
    p = sub.add_parser(
        "push", help="upload a bank or GLEAN folder to the Hub", formatter_class=_formatter,
        description=textwrap.dedent(
            """\
            Upload a trained latent bank (OUT/bank of train-bank) or GLEAN model (OUT/model of train) to a
            Hub repo, in one commit, with a model card generated from its config and, when present beside
            it, metrics.json and training.json.

            A GLEAN folder that references a local bank folder cannot be pushed as it is (the Hub copy
            could not find the bank): pass --bank-repo ID to push the bank there too and reference it
            by repo id and sha256, or --embed-bank to upload one self-contained file.

            example:
              glean-hub push runs/bank-cats-128/bank you/glean-bank-cats-128
              glean-hub push runs/cats-8x/model you/glean-cats-8x --bank-repo you/glean-bank-cats-128
            """
        ),
    )
    p.add_argument("folder")
    p.add_argument("repo_id")
    p.add_argument("--bank-repo", help="Hub repo for the bank of a GLEAN folder that references a local bank")
    p.add_argument("--embed-bank", action="store_true", help="upload the GLEAN model with its bank inside")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", help="branch to commit to (default: main)")
    p.add_argument("--message", help="commit message")
    p.add_argument("--license", default="other", help="licence of the weights (default: other, see the card)")
    p.add_argument("--license-name", help="short name of the licence when --license other (e.g. celeba-research-only)")
    p.set_defaults(run=run_push)


def run_push(args) -> int:
    from .publish import push

    info = push(args.folder, args.repo_id, bank_repo=args.bank_repo, embed_bank=args.embed_bank, private=args.private or None,
                revision=args.revision, commit_message=args.message, license=args.license, license_name=args.license_name)
    print(f"pushed {args.folder} -> {info.commit_url}")
    return 0


# --- upscale -----------------------------------------------------------------------------------

UPSCALE_DESCRIPTION = """\
Upscale images with a GLEAN model. Writes lossless PNGs: OUTDIR/<stem>_glean<scale>x.png.

size rules: each model takes exactly one input size, in_size x in_size (a 16x model with 256x256
output takes 16x16; `glean-hub models` lists each model's sizes):
  - an image of exactly in_size x in_size goes in as it is;
  - otherwise --mode first makes it square at its own resolution:
      crop    the centre square of the shorter side (default; the rest is cut off)
      pad     reflect-pad to the longer side; the padding is cut off the output again,
              so the result keeps the input's aspect ratio
      resize  squash the whole image to a square (with a warning: the result is distorted)
    and the square is shrunk to in_size x in_size with MATLAB-compatible bicubic imresize;
  - a square smaller than in_size is enlarged to in_size first (MATLAB bicubic), with a warning:
    the effective factor is then larger than the model's, and the extra part adds no detail;
  - a shorter side below max(4, in_size / 4) px is refused: there is nothing to super-resolve;
  - --align-faces finds the largest face (OpenCV Haar cascades: pip install "glean-hub[faces]"),
    rotates it upright, crops it like the training crops, upscales it and pastes it back into a
    bicubic enlargement of the whole photo; without a face it falls back to --mode, with a warning;
  - --output-size N resamples the result (longer side N) after GLEAN: a post-resize, no new detail.

degradation rule: "bicubic" models were trained on LR images made by MATLAB bicubic downscaling of
clean photos. Give them a clean image larger than in_size and let glean-hub make the LR (PIL or
OpenCV bicubic are not the same). Noisy, JPEG-compressed or nearest-neighbour-enlarged inputs get
a warning naming what fits better (a "realworld" model).

files: INPUT may be files, folders (their images) and quoted globs ('shots/*.jpg'). A file that
fails is reported as "<file>: error: ..." and skipped; existing outputs are kept unless --overwrite
(an error per file), or skipped with their inputs with --skip-existing (to resume an interrupted run).

many processes: `accelerate launch [--num_processes N] -m glean_hub.cli upscale ...` (or torchrun) splits
the inputs between the processes: each file is done by exactly one, each process uses its own GPU
(cuda:<local rank>), and one summary is printed at the end; add --skip-existing to resume.

precision: on a CPU with native bf16 (AVX512-BF16 or AMX) models of >= 5 GFLOP/image run in bf16 by
default (faster; >= 45 dB PSNR from fp32 on the official models); --dtype fp32 gives the fp32 result.
exit codes: 0 all done, 1 some files failed, 2 usage or setup error (no images, model not found).

examples:
  glean-hub upscale photo.jpg -o out --category faces --scale 16 --align-faces
  glean-hub upscale 'shots/*.png' lr_folder -o out --category cats --scale 8 --mode pad --save-lr
  glean-hub upscale img.png -o out --model ./my-glean-model --device cuda --dtype fp16 --batch-size 16
  accelerate launch --num_processes 4 -m glean_hub.cli upscale photos/ -o out --category faces --scale 8 --skip-existing
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_upscale(sub) -> None:
    p = sub.add_parser("upscale", help="upscale images (files, folders, globs) to PNG",
                       formatter_class=_formatter, description=UPSCALE_DESCRIPTION)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUTDIR", help="folder for the PNGs (created if needed)")
    p.add_argument("--category", help="model category from the registry: faces, cats, cars, ...")
    p.add_argument("--scale", type=_positive_int, help="upscaling factor of the registry model (8, 16, ...)")
    p.add_argument("--model", metavar="REPO_OR_DIR", help="a Hub repo id or model folder (--category/--scale, if given, are checked against it)")
    p.add_argument("--revision", help="Hub branch, tag or commit of --model")
    p.add_argument("--mode", choices=["crop", "pad", "resize"], default="crop", help="how non-square inputs are made square (default: crop)")
    p.add_argument("--align-faces", action="store_true", help="detect, align and paste back the largest face")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"],
                   help="compute dtype (default: bf16 on a CPU with native bf16 (AVX512-BF16 or AMX) for models of >= 5 "
                        "GFLOP/image, where it is faster and within 45 dB of fp32; fp32 otherwise; fp16 needs CUDA)")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--save-lr", action="store_true", help="also write <stem>_lr.png, the exact network input")
    p.add_argument("--output-size", type=_positive_int, metavar="N", help="resample the result to longer side N after GLEAN")
    p.add_argument("--max-pixels", type=_positive_int, metavar="N",
                   help="refuse larger images (default 8192*8192, or $GLEAN_HUB_MAX_PIXELS)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--skip-existing", action="store_true", help="keep existing outputs and skip their inputs (resume a run)")
    p.set_defaults(run=run_upscale)


def run_upscale(args) -> int:
    from pathlib import Path

    import warnings

    from .batch import BatchReport, ensure_output_dir, expand_inputs, plan_outputs, upscale_files
    from .errors import GleanWarning, ModelNotFoundError
    from .pipeline import GLEANPipeline, check_output_size
    from .registry import categories
    from .shard import ProcessGroup, summary

    if args.overwrite and args.skip_existing:
        raise GleanError("--overwrite replaces existing outputs and --skip-existing keeps them: give one of the two")
    group = ProcessGroup.from_env()  # several processes under accelerate launch / torchrun: each takes its share
    files, problems = expand_inputs(args.inputs)
    problems = problems if group.main else []  # every process finds the same ones; process 0 reports them
    for where, message in problems:
        write_line(f"{where}: error: {message}")
    if not files:
        raise GleanError("no images found in " + ", ".join(args.inputs))
    if args.model is None and args.category is None:
        raise ModelNotFoundError(f"say which model: --category ({', '.join(categories()) or 'none installed'}) with --scale, "
                                 "or --model REPO_OR_DIR")
    check_output_size(args.output_size, args.max_pixels)  # before loading anything
    out_dir = ensure_output_dir(args.output_dir)
    with warnings.catch_warnings(record=True) as caught:  # setup warnings (e.g. slow bf16) as one line each
        warnings.simplefilter("always", GleanWarning)
        group.set_cpu_threads()
        pipe = GLEANPipeline.from_pretrained(args.model or args.category, scale=args.scale, category=args.category,
                                             revision=args.revision, device=group.device(args.device), dtype=args.dtype)
    for w in caught:
        write_line(f"glean-hub upscale: warning: {w.message}")
    # existing outputs are checked after sharding (shard.py), so that all processes plan the same list
    jobs, clashes = plan_outputs(files, out_dir, scale=pipe.config.scale, output_size=args.output_size,
                                 save_lr=args.save_lr, overwrite=args.overwrite or args.skip_existing or group.distributed)
    jobs, skipped, existing = group.take(jobs, overwrite=args.overwrite, skip_existing=args.skip_existing)
    clashes = (clashes if group.main else []) + existing
    for where, message in clashes:
        write_line(f"{where}: error: {message}")
    report = BatchReport(failed=problems + clashes)
    upscale_files(pipe, jobs, mode=args.mode, align_faces=args.align_faces, output_size=args.output_size,
                  batch_size=args.batch_size, max_pixels=args.max_pixels, debug=args.debug, report=report,
                  progress=None if group.main else False)
    totals = group.gather(len(report.done), report.failed, skipped, report.seconds)
    if group.main:
        print(summary(totals, out_dir))
    return 1 if totals["failed"] else 0



# --- bench -------------------------------------------------------------------------------------

BENCH_DESCRIPTION = """\
Benchmark one forward pass: the reference (eager fp32 GLEAN.forward, exact) against the fast path
(glean_hub.fast.optimize: dtype, channels-last, precomputed bank constants, optional torch.compile),
measured in the same run on the same random input. Official architectures run with random weights
(no download); bundled models and folders/repos are loaded, and their load time is reported.

--config: cat_8x (32->256), cat_16x (16->256), ffhq_16x (64->1024), ffhq_8x_realworld (128->1024),
bundled (every installed registry model), or a model folder / Hub repo id; repeat for several.
Timing: median of --repeats calls after --warmup calls (CUDA: synchronized; cudnn.benchmark on), with the
fastest call, the spread and a "noisy" note for outlier calls (> 1.5x the fastest) or a spread > 25%.
These are benchmarks, not tests: run them on an otherwise idle machine.

examples:
  glean-hub bench --config ffhq_16x --device cuda --dtype bf16 --batch-size 1,2,4,8,16,32 --compile --json gpu.json
  glean-hub bench --config bundled --device cpu --threads 2
"""


def _comma_list(kind):
    def parse(text: str):
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return values
    return parse


def add_bench(sub) -> None:
    from .bench import COLUMNS_HELP

    p = sub.add_parser("bench", help="benchmark speed, memory and fast-path accuracy", formatter_class=_formatter,
                       description=BENCH_DESCRIPTION, epilog=COLUMNS_HELP)
    p.add_argument("--config", action="append", metavar="NAME_OR_DIR",
                   help="what to benchmark (default: bundled models if installed, else cat_16x; ffhq_16x on CUDA)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--dtype", type=_comma_list(str), metavar="LIST",
                   help="fast-path dtypes, comma-separated: fp32,bf16,fp16 (default: fp32 on CPU, fp32,bf16 on CUDA)")
    p.add_argument("--batch-size", type=_comma_list(_positive_int), metavar="LIST",
                   help="batch sizes, comma-separated (default: 1 on CPU, 1,8 on CUDA)")
    p.add_argument("--compile", action="store_true", help="also run each fast dtype through torch.compile")
    p.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                   help="torch.compile mode (default: reduce-overhead on CUDA, default on CPU)")
    p.add_argument("--upsample", choices=["transpose", "subpixel"], default="transpose",
                   help="fast-path form of the bank's 2x upsampling conv (default: transpose)")
    p.add_argument("--no-channels-last", action="store_true", help="fast path in NCHW instead of channels-last")
    p.add_argument("--threads", type=_positive_int, metavar="N", help="torch.set_num_threads(N) (CPU threads)")
    p.add_argument("--warmup", type=int, metavar="N", help="untimed calls before timing (default: 1 on CPU, 3 on CUDA)")
    p.add_argument("--repeats", type=_positive_int, metavar="N", help="timed calls; median, fastest and spread are reported (default: 5 on CPU, 20 on CUDA)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    p.add_argument("--profile", action="store_true", help="profile one call of the last setting (largest batch): top kernels")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': JSON on stdout instead of the table)")
    p.set_defaults(run=run_bench)


def run_bench(args) -> int:
    import torch

    from .bench import format_table, run_benchmark, to_json
    from .pipeline import resolve_device
    from .registry import available

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    configs = args.config or (["ffhq_16x"] if cuda else ["bundled"] if any(m.local_dir for m in available()) else ["cat_16x"])
    to_stdout = args.json == "-"
    log = None if to_stdout else (lambda line: print(line, file=sys.stderr, flush=True))
    result = run_benchmark(
        configs, device, args.dtype or (["fp32", "bf16"] if cuda else ["fp32"]), args.batch_size or ([1, 8] if cuda else [1]),
        compile=args.compile, compile_mode=args.compile_mode, channels_last=not args.no_channels_last, upsample=args.upsample,
        warmup=args.warmup if args.warmup is not None else (3 if cuda else 1), repeats=args.repeats or (20 if cuda else 5),
        seed=args.seed, profile=args.profile, log=log,
    )
    text = to_json(result["rows"], load=result["load"], sat=result["saturation"], profile=result["profile"], env=result["environment"])
    if to_stdout:
        print(text)
        return 0
    print(format_table(result["rows"], load=result["load"], sat=result["saturation"], profile=result["profile"], env=result["environment"]))
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(text + "\n")
        print(f"\nJSON: {args.json}")
    return 0


# --- main --------------------------------------------------------------------------------------

from .cli_compare import add_eval, add_invert

COMMANDS = [add_convert, add_convert_bank, add_models, add_demo, add_train_bank, add_train, add_soup, add_push, add_upscale, add_bench, add_invert, add_eval]


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
        write_line(f"glean-hub {args.command}: error: {e}")
        return 2
    except KeyboardInterrupt:
        write_line("interrupted")
        return 130
    except OSError as e:  # a path the filesystem refuses (too long, a file in the way, no permission, disk full)
        if args.debug:
            raise
        write_line(f"glean-hub {args.command}: error: {os_error_message(e)}")
        return 2
    except Exception as e:  # noqa: BLE001 - a bug: still one line (--debug shows the traceback)
        if args.debug:
            raise
        reason = " ".join(str(e).split())[:300]
        write_line(f"glean-hub {args.command}: error: unexpected {type(e).__name__}: {reason} (a bug in glean-hub: "
                   "rerun with --debug and report the traceback)")
        return 3


if __name__ == "__main__":
    sys.exit(main())
