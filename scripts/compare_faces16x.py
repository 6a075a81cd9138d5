"""Regenerate docs/comparison-faces-16x.md and its grid: GLEAN vs GAN inversion vs bicubic (vs the bank-less baseline)
on the bundled faces 16x model (4 -> 64) and its bank, through `glean-hub eval`.

    python scripts/compare_faces16x.py --data ../shared/data/faces/val [--limit 48] [--steps 200] [--no-bank-model DIR]

1. the table: `glean-hub eval` on the first --limit validation photos (the faces models' training crop, --crop face);
   its outputs stay in --work (the photos' licences keep them out of the repo);
2. the grid: `glean-hub eval` on images the bank itself generates (seeded, truncation 0.7) used as ground truth, so
   the committed PNG holds no dataset pixels;
3. docs/comparison-faces-16x.md with both tables, the grid and these exact commands.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import date
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glean_hub import GLEAN
from glean_hub.cli import main
from glean_hub.compare import markdown_table


def bank_samples(folder: Path, n: int, seed: int) -> None:
    """n images of the faces bank (64 px, truncation 0.7, seeded) as PNGs: ground truth with no dataset pixels."""
    bank = GLEAN.from_pretrained("faces", scale=16).generator
    torch.manual_seed(seed)
    with torch.no_grad():
        mean = bank.mean_latent(4096)
        images = bank(torch.randn(n, bank.config.style_channels), truncation=0.7, truncation_latent=mean)
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)):
        Image.fromarray(x.permute(1, 2, 0).numpy()).save(folder / f"bank-sample-{i}.png")


def reading(v: dict, speed: float | None) -> str:
    """The validation table in words (regenerated with the numbers)."""
    if not {"glean", "invert", "bicubic"} <= set(v):
        return ""
    g, i, b = v["glean"], v["invert"], v["bicubic"]
    return (f"GLEAN - inversion: {g['psnr'] - i['psnr']:+.2f} dB PSNR, {g['ssim'] - i['ssim']:+.3f} SSIM, "
            f"{g['lr_psnr'] - i['lr_psnr']:+.2f} dB LR-PSNR; GLEAN - bicubic: {g['psnr'] - b['psnr']:+.2f} dB PSNR. "
            f"GLEAN is {speed:,.0f}x faster per image (one forward pass against the inversion's optimisation steps; "
            "the ratio grows with the steps and the bank's size). "
            + ("Inversion explains the input better (higher LR-PSNR) but lands on other faces: lower PSNR and SSIM."
               if i["lr_psnr"] > g["lr_psnr"] and i["psnr"] < g["psnr"] else ""))


def run(argv: list[str], reuse: bool = False) -> dict:
    out = Path(argv[argv.index("--out") + 1]) / "metrics.json"
    if reuse and out.is_file():
        return json.loads(out.read_text())
    print("glean-hub " + shlex.join(argv), flush=True)
    if main(argv) != 0:
        raise SystemExit(f"glean-hub {argv[0]} failed")
    return json.loads((Path(argv[argv.index("--out") + 1]) / "metrics.json").read_text())


def main_script() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/faces/val", help="faces validation photos")
    ap.add_argument("--limit", type=int, default=48, help="first N validation photos (sorted by name)")
    ap.add_argument("--steps", type=int, default=200, help="inversion steps per image")
    ap.add_argument("--samples", type=int, default=6, help="bank-generated images for the grid")
    ap.add_argument("--no-bank-model", help="the bank-less faces 16x baseline (adds the no-bank method)")
    ap.add_argument("--work", default="runs/compare-faces-16x", help="folder for the eval outputs (not committed)")
    ap.add_argument("--doc", default="docs/comparison-faces-16x.md")
    ap.add_argument("--reuse", action="store_true", help="rewrite the page from the metrics.json files already in --work")
    args = ap.parse_args()
    work, doc = Path(args.work), ROOT / args.doc
    common = ["--category", "faces", "--scale", "16", "--invert-steps", str(args.steps), "--seed", "0"]
    if args.no_bank_model:
        common += ["--no-bank-model", args.no_bank_model]

    val_argv = ["eval", args.data, *common, "--crop", "face", "--limit", str(args.limit), "--batch-size", str(args.limit),
                "--out", str(work / "val")]
    val = run(val_argv, args.reuse)
    if not (args.reuse and (work / "samples" / "metrics.json").is_file()):
        bank_samples(work / "bank-samples", args.samples, seed=0)
    samples_argv = ["eval", str(work / "bank-samples"), *common, "--grid-rows", str(args.samples), "--out", str(work / "samples")]
    samples = run(samples_argv, args.reuse)

    doc.parent.mkdir(parents=True, exist_ok=True)
    grid = doc.with_suffix(".png")
    grid.write_bytes((work / "samples" / "grid.png").read_bytes())
    v = val["methods"]
    speed = v["invert"]["seconds_per_image"] / v["glean"]["seconds_per_image"] if "invert" in v and "glean" in v else None
    no_bank = "" if args.no_bank_model else (
        "The bank-less baseline (`no-bank`: the same encoder-decoder trained with zeros instead of the bank's features) "
        "is not in this run: no faces 16x baseline model is installed. Pass `--no-bank-model DIR` (a run of "
        "`scripts/train_bundled.sh` with `BASELINES=only`) to add it.\n\n")
    inv = val["settings"]["invert"]
    text = f"""# GLEAN vs GAN inversion on the same latent bank (faces, 16x)

GLEAN's claim (Chan et al., CVPR 2021) is that one feed-forward pass through an encoder and a frozen StyleGAN2
beats optimising the generator's latent codes for each image (PULSE, mGANprior, DGP): better fidelity, consistent
with the input, and much faster. `glean-hub eval` checks it on any images and any bank; this page is its run on
the **bundled faces 16x model** (4 x 4 -> 64 x 64, small CPU-trained stopgap weights) and **its own bank**
(`glean-hub/bank-faces-64`), measured {date.today().isoformat()} on a 2-core CPU shared with training jobs (the
seconds are indicative only).

Methods: `bicubic` (MATLAB), `glean` (the model), `invert` (PULSE-style: {inv['steps']} Adam steps on the W+
codes of the same bank, {'noise optimised' if inv['optimize_noise'] else 'its stored noise'}, penalty
{inv['latent_weight']} x mean squared distance to the mean w in units of its std, init at the mean w, seed 0).
Columns: PSNR and SSIM against the ground truth (RGB, no border crop); LR-PSNR: the MATLAB-bicubic downscale of
the output against the 4 x 4 input (consistency; higher is more consistent); grid: periodic-artefact measure
(dB of energy at the pixel-shuffle periods beyond the ground truth's; about 0 is clean); seconds per image.
{val['settings']['lpips'].rstrip('.')}.

## Validation photos

The first {val['settings']['images']} photos of the faces validation split (sorted by name), cut with the faces
models' training crop and MATLAB-bicubic resized to 64 x 64 (the photos themselves are not in the repo):

{markdown_table(val)}
{reading(v, speed)}

{no_bank}## Bank-generated images (the grid)

{args.samples} images generated by the bank itself (seeded, truncation 0.7) as ground truth: the case most
favourable to inversion, since an exact answer exists in the bank's range. (The bundled bank is a small CPU-trained stopgap:
its samples are rough, and so is this ground truth.)

{markdown_table(samples)}
![LR, bicubic, GLEAN, inversion, ground truth]({grid.name})

Columns: the 4 x 4 input (enlarged), each method, the ground truth.

## Reproduce

```
python scripts/compare_faces16x.py --data ../shared/data/faces/val --limit {args.limit} --steps {args.steps}
```

which runs

```
glean-hub {shlex.join(val_argv)}
glean-hub {shlex.join(samples_argv)}
```

(after writing the bank samples). Outputs, per-image numbers and settings are in `{work}/val/metrics.json` and
`{work}/samples/metrics.json`.
"""
    doc.write_text(text)
    print(f"wrote {doc} and {grid}")


if __name__ == "__main__":
    main_script()
