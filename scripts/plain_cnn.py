"""The plain-CNN yardstick of the bundled models: no bank, trained on the same data for the same number of images.

    python scripts/plain_cnn.py --category faces --scale 8 --steps 1500 --out runs/plain-faces-8x-64 \
        [--data ../shared/data] [--extra-crops center]

The network of issue 13: a 3x3 conv to 64 channels, 4 residual blocks of 64 channels and a fully connected layer
over the whole input-size feature map (a residual), log2(scale) pixel-shuffle x2 steps (ICNR-initialised), a
3x3 conv to RGB (starting at zero) added to the MATLAB-bicubic upscale of the input; L1 loss, batch 32, Adam 3e-4
with cosine decay, bf16 autocast, seed 0. Data, crops, LR making and validation are those of `glean-hub train`
(64 px crops, MATLAB-bicubic LR from the uint8 HR, the category's validation split).

Writes to --out: `metrics.json` ("plain" and "bicubic": the numbers of a GLEAN run's metrics, on the whole validation split, plus
`framings` for the extra crop policies), `model.pt` (state dict) and `training.json` (steps, minutes).
`scripts/package_bundled.py` reads `metrics.json` into the cards and the README table ("plain CNN" column).
A run checkpoints to `checkpoint.pt` every 500 steps and at `--max-minutes`; rerun the same command to continue
it exactly (the checkpoint is removed when the run finishes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glean_hub.eval import evaluate  # noqa: E402
from glean_hub.imresize import imresize  # noqa: E402
from glean_hub.train.augment import random_flip  # noqa: E402
from glean_hub.train.common import cosine_lr  # noqa: E402
from glean_hub.train.data import PackedImages, batch_indices, crop_policies, split_files, to_float  # noqa: E402
from glean_hub.train.glean import icnr_  # noqa: E402

RESOLUTION = 64  # the bundled models' output side


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1), nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class PlainCNN(nn.Module):
    """lr [N, 3, s, s] in [-1, 1] -> [N, 3, S, S]: convs + a dense layer at s x s, pixel shuffle, bicubic skip."""

    def __init__(self, in_size: int, out_size: int, channels: int = 64, blocks: int = 4):
        super().__init__()
        self.out_size = out_size
        self.first = nn.Conv2d(3, channels, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        n = channels * in_size * in_size
        self.dense = nn.Linear(n, n)
        nn.init.zeros_(self.dense.weight), nn.init.zeros_(self.dense.bias)  # starts without the global term
        ups = []
        for _ in range(int(math.log2(out_size // in_size))):
            conv = nn.Conv2d(channels, 4 * channels, 3, 1, 1)
            icnr_(conv)  # the four sub-pixels start equal (no grid at step 0)
            nn.init.zeros_(conv.bias)
            ups += [conv, nn.PixelShuffle(2), nn.LeakyReLU(0.2)]
        self.up = nn.Sequential(*ups)
        self.last = nn.Conv2d(channels, 3, 3, 1, 1)
        nn.init.zeros_(self.last.weight), nn.init.zeros_(self.last.bias)  # starts as exactly bicubic

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        f = self.first(lr)
        f = f + self.body(f)
        f = f + F.leaky_relu(self.dense(f.flatten(1)), 0.2).view_as(f)
        out = self.last(self.up(f))
        return out + imresize(lr.float(), size=(self.out_size, self.out_size), antialias=False).to(out.dtype)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--category", required=True, help="faces, cats, cars, bedrooms or towers")
    p.add_argument("--scale", type=int, required=True, help="8 or 16 (input side 64 / scale)")
    p.add_argument("--steps", type=int, required=True, help="training steps of 32 images (use the GLEAN run's)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="folder with one folder per category")
    p.add_argument("--extra-crops", default="", help="extra framings, as the GLEAN run's (faces: center)")
    p.add_argument("--cache-dir", type=Path, default=None, help="packed-image cache (default: OUT/cache)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop with a checkpoint after this many minutes")
    args = p.parse_args()
    run_args = {k: str(v) for k, v in vars(args).items() if k != "max_minutes"}
    checkpoint = args.out / "checkpoint.pt"

    data = args.data / args.category
    _, crop = crop_policies(data, None, args.category)
    train_files, val_files = split_files(data)
    cache = args.cache_dir or args.out / "cache"
    train = PackedImages.from_files(train_files, RESOLUTION, crop, cache)
    for extra in filter(None, args.extra_crops.split(",")):
        train = train.concat(PackedImages.from_files(train_files, RESOLUTION, extra, cache))
    val = PackedImages.from_files(val_files, RESOLUTION, crop, cache)
    lrs = train.lr(args.scale)

    torch.manual_seed(0)
    model = PlainCNN(RESOLUTION // args.scale, RESOLUTION)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.9, 0.99))
    start, prior_minutes = 0, 0.0
    if checkpoint.is_file():  # continue the interrupted run exactly: weights, optimiser, flips' random state
        state = torch.load(checkpoint, weights_only=False)
        if {**state["args"], "out": ""} != {**run_args, "out": ""}:  # a resumed run repeats its arguments (the folder may move)
            sys.exit(f"{checkpoint}: a run with other arguments ({state['args']}); continue it with those, or use another --out")
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"]), torch.set_rng_state(state["rng"])
        start, prior_minutes = state["step"], state["minutes"]
    from tqdm.auto import tqdm

    t0 = time.time()
    elapsed_minutes = lambda: prior_minutes + (time.time() - t0) / 60  # noqa: E731 - over all resumes

    def save_checkpoint(step: int) -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        state = {"args": run_args, "step": step, "minutes": elapsed_minutes(), "model": model.state_dict(), "opt": opt.state_dict(),
                 "rng": torch.get_rng_state()}
        torch.save(state, checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)  # never a half-written checkpoint

    for step in (bar := tqdm(range(start, args.steps), initial=start, total=args.steps, desc=f"plain CNN {args.category} {args.scale}x")):
        idx = batch_indices(step, 32, len(train), 0)
        hr, lr = random_flip(to_float(torch.from_numpy(train.hr[idx])), to_float(torch.from_numpy(lrs[idx])))
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, args.steps, 3e-4, 0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sr = model(lr)
        loss = F.l1_loss(sr.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            bar.set_postfix(l1=f"{loss.item():.4f}")
        if args.max_minutes is not None and time.time() - t0 > args.max_minutes * 60:
            save_checkpoint(step + 1)
            print(f"stopped after {args.max_minutes} min at step {step + 1}; rerun the same command to continue")
            return
        if (step + 1) % 500 == 0 and step + 1 < args.steps:
            save_checkpoint(step + 1)
    minutes = elapsed_minutes()

    m = evaluate(model, val.hr, val.lr(args.scale))
    metrics = {"images": m["images"], "plain": m["glean"], "bicubic": m["bicubic"]}
    framings = {}
    for policy in filter(None, args.extra_crops.split(",")):
        other = PackedImages.from_files(val_files, RESOLUTION, policy, cache)
        f = evaluate(model, other.hr, other.lr(args.scale))
        framings[policy] = {"plain": f["glean"]["psnr"], "bicubic": f["bicubic"]["psnr"]}
    metrics["framings"] = framings
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "model.pt")
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (args.out / "training.json").write_text(json.dumps({"kind": "plain-cnn", "step": args.steps, "minutes": round(minutes, 2),
                                                        "args": run_args}, indent=2))
    checkpoint.unlink(missing_ok=True)
    gain = metrics["plain"]["psnr"] - metrics["bicubic"]["psnr"]
    print(f"plain CNN {args.category} {args.scale}x: {metrics['plain']['psnr']:.2f} dB, {gain:+.2f} over bicubic, {minutes:.1f} min")


if __name__ == "__main__":
    main()
