"""Train a StyleGAN2 latent bank: `glean-hub train-bank --data DIR --out DIR --resolution R`.

One loop, read top to bottom: non-saturating logistic loss, lazy R1 on real images, style mixing,
DiffAugment in front of the discriminator, EMA generator. accelerate places models on devices,
runs bf16 autocast and multi-GPU (`accelerate launch -m glean_hub.cli train-bank ...`). Every
step's randomness comes from (seed, step, rank), so `--resume` continues exactly.

Writes to --out: `bank/` (EMA generator as a bank folder + discriminator.safetensors, loadable by
`StyleGAN2Generator.from_pretrained` and `glean-hub train --bank`), `checkpoint.pt`, `log.jsonl`,
`samples/*.png`, `training.json`.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cards import CardFacts, bank_card
from ..config import BankConfig
from ..discriminator import StyleGAN2Discriminator
from ..stylegan2 import StyleGAN2Generator
from .augment import DIFFAUGMENT, diff_augment, random_flip
from .common import (
    CHECKPOINT, LOG, JsonlLog, Throughput, args_dict, ema_update, load_checkpoint, make_accelerator,
    prepare_run_dir, save_checkpoint, save_grid, seed_step,
)
from .data import PackedImages, batch_indices, crop_policies, split_files, to_float
from .losses import d_logistic_loss, g_nonsaturating_loss, r1_penalty


@dataclass
class BankTrainArgs:
    data: Path  # image folder (with train/ and val/, or flat: a fixed 5% goes to validation)
    out: Path  # run folder
    resolution: int = 128  # output side of the bank
    category: str | None = None  # metadata; picks the crop policy
    crop_policy: str | None = None  # center / face / pad (default: by category, else center)
    steps: int = 10_000
    batch_size: int = 16
    lr: float = 0.002
    r1_gamma: float | None = None  # None: 0.0002 * R^2 / batch (StyleGAN2-ADA heuristic)
    r1_every: int = 16  # lazy regularisation interval
    mixing: float = 0.9  # style-mixing probability
    ema_kimg: float | None = None  # EMA half-life in thousands of images (None: batch * 10 / 32)
    augment: str = DIFFAUGMENT  # DiffAugment ops, "" to disable
    channel_max: int = 512
    channel_multiplier: float = 2
    style_channels: int = 512
    num_mlps: int = 8
    seed: int = 0
    mixed_precision: str = "no"  # "no" or "bf16"
    cpu: bool = False
    resume: bool = False
    cache_dir: Path | None = None  # where packed crops are cached (default: <out>/cache)
    max_minutes: float | None = None  # stop (and checkpoint) after this long; resume later
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    progress: bool = True


def train_bank(args: BankTrainArgs) -> Path:
    """Run (or resume) bank training; returns the bank folder."""
    out = prepare_run_dir(Path(args.out), args.resume)
    acc = make_accelerator(args.mixed_precision, args.cpu)
    device, rank, world = acc.device, acc.process_index, acc.num_processes
    policy, crop = crop_policies(args.data, args.crop_policy, args.category)

    # 1. data: square crops packed once; grayscale sets make a grayscale bank
    train_files, _ = split_files(args.data)
    data = PackedImages.from_files(train_files, args.resolution, crop, args.cache_dir or out / "cache", args.progress and acc.is_main_process)
    config = BankConfig(
        out_size=args.resolution, style_channels=args.style_channels, num_mlps=args.num_mlps,
        channel_multiplier=args.channel_multiplier, channel_max=args.channel_max,
        category=args.category, grayscale=data.grayscale_fraction > 0.99,
    )

    # 2. models and optimisers (Adam betas and lr corrected for lazy R1, as in StyleGAN2)
    torch.manual_seed(args.seed)
    G = StyleGAN2Generator(config).set_fused_modulation(False)
    D = StyleGAN2Discriminator(config)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    c = args.r1_every / (args.r1_every + 1)
    g_opt = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=args.lr * c, betas=(0.0, 0.99**c))
    start, prior_minutes = 0, 0.0
    if args.resume:
        ckpt = load_checkpoint(out / CHECKPOINT)
        G.load_state_dict(ckpt["G"]), D.load_state_dict(ckpt["D"]), G_ema.load_state_dict(ckpt["G_ema"])
        g_opt.load_state_dict(ckpt["g_opt"]), d_opt.load_state_dict(ckpt["d_opt"])
        start, prior_minutes = ckpt["step"], ckpt.get("minutes", 0.0)
    G, D, g_opt, d_opt = acc.prepare(G, D, g_opt, d_opt)
    G_ema.to(device)
    g_raw = acc.unwrap_model(G)

    r1_gamma = args.r1_gamma if args.r1_gamma is not None else 0.0002 * args.resolution**2 / args.batch_size
    ema_nimg = (args.ema_kimg if args.ema_kimg is not None else args.batch_size * 10 / 32) * 1000
    log = JsonlLog(out / LOG, acc.is_main_process, truncate_after=start if args.resume else None)
    sample_z = torch.randn(16, config.style_channels, generator=torch.Generator().manual_seed(args.seed)).to(device)
    aug = (lambda x: diff_augment(x, args.augment)) if args.augment else (lambda x: x)
    meter, t0 = Throughput(), time.time()

    def make_z(n: int):
        """z [N, S], or [N, 2, S] with a mixing index when mixing styles."""
        if random.random() < args.mixing:
            return torch.randn(n, 2, config.style_channels, device=device), random.randint(1, config.num_styles - 1)
        return torch.randn(n, config.style_channels, device=device), None

    def snapshot(step: int) -> None:
        """Checkpoint + bank folder + card (main process only)."""
        if not acc.is_main_process:
            return
        minutes = round(prior_minutes + (time.time() - t0) / 60, 2)  # training time over all resumes
        save_checkpoint(out / CHECKPOINT, step=step, G=g_raw.state_dict(), D=acc.unwrap_model(D).state_dict(),
                        G_ema=G_ema.state_dict(), g_opt=g_opt.state_dict(), d_opt=d_opt.state_dict(), args=args_dict(args),
                        minutes=minutes)
        facts = CardFacts(
            data=f"{len(data)} images from `{Path(args.data).name}`, {policy} square crops at {args.resolution}px"
            + (" (grayscale)" if config.grayscale else ""),
            training=f"{step} steps x {args.batch_size * world} images, DiffAugment `{args.augment}`, R1 gamma {r1_gamma:.4g}, seed {args.seed}",
        )
        sha = G_ema.save_pretrained(out / "bank", discriminator=acc.unwrap_model(D).state_dict())
        (out / "bank" / "README.md").write_text(bank_card(config, sha, facts))
        (out / "training.json").write_text(json.dumps({"kind": "bank", "step": step, "args": args_dict(args),
                                                       "minutes": minutes}, indent=2))

    from tqdm.auto import tqdm

    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="train-bank", disable=not (args.progress and acc.is_main_process))
    step = start
    for step in bar:
        seed_step(args.seed, step, rank)
        idx = batch_indices(step, args.batch_size, len(data), args.seed, rank, world)
        (real,) = random_flip(to_float(torch.from_numpy(data.hr[idx])).to(device))

        # 3. discriminator: logistic loss on augmented real and generated images
        D.requires_grad_(True)
        with torch.no_grad():
            z, mix = make_z(len(real))
            fake = G(z, mix_index=mix, noise="random")
        with acc.autocast():
            d_loss = d_logistic_loss(D(aug(real)), D(aug(fake)))
        d_opt.zero_grad(set_to_none=True)
        acc.backward(d_loss)
        d_opt.step()

        # 4. lazy R1 every r1_every steps (scaled up by the interval)
        r1 = torch.zeros((), device=device)
        if step % args.r1_every == 0:
            real_r1 = real.detach().requires_grad_(True)
            with acc.autocast():
                real_logits = D(aug(real_r1))
            r1 = r1_penalty(real_logits, real_r1)
            d_opt.zero_grad(set_to_none=True)
            acc.backward(r1_gamma / 2 * r1 * args.r1_every + 0 * real_logits[0, 0])
            d_opt.step()

        # 5. generator: non-saturating loss through the (frozen) discriminator
        D.requires_grad_(False)
        z, mix = make_z(len(real))
        with acc.autocast():
            g_loss = g_nonsaturating_loss(D(aug(G(z, mix_index=mix, noise="random"))))
        g_opt.zero_grad(set_to_none=True)
        acc.backward(g_loss)
        g_opt.step()

        # 6. EMA of the generator weights (half-life ema_nimg images, ramped up early in training)
        nimg = (step + 1) * args.batch_size * world
        beta = 0.5 ** (args.batch_size * world / max(min(ema_nimg, nimg * 0.05), 1e-8))
        ema_update(G_ema, g_raw, beta)

        meter.add(len(real) * world)
        if step % args.log_every == 0 or step == args.steps - 1:
            row = dict(step=step, d_loss=d_loss.item(), g_loss=g_loss.item(), r1=r1.item(), img_per_s=meter.rate())
            log.write(**row)
            bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}")
        if acc.is_main_process and (step + 1) % args.sample_every == 0:
            with torch.no_grad():
                save_grid([G_ema(sample_z[i::4], noise="stored") for i in range(4)], out / "samples" / f"step{step + 1:07d}.png")
        if (step + 1) % args.checkpoint_every == 0 and step + 1 < args.steps:
            snapshot(step + 1)
        if args.max_minutes is not None and time.time() - t0 > args.max_minutes * 60:
            snapshot(step + 1)
            bar.close()
            print(f"stopped after {args.max_minutes} min at step {step + 1}; continue with --resume")
            return out / "bank"
    snapshot(max(start, args.steps))  # a resumed run may already be past --steps
    bar.close()
    return out / "bank"
