"""Train GLEAN on a frozen bank: `glean-hub train --bank BANK --data DIR --scale S --out DIR`.

One loop, read top to bottom. Losses (weights as MMEditing's GLEAN configs): pixel MSE (1.0),
perceptual (1e-2: feature matching on the discriminator, or VGG19 conv4_2 with a local weight
file), adversarial (1e-2: non-saturating, discriminator initialised from the bank's). LR images:
MATLAB-bicubic from the uint8 HR (`bicubic`), or random blur + noise + JPEG (`realworld`).

Writes to --out: `model/` (a GLEAN folder that references the bank by path and sha256),
`metrics.json` (validation PSNR/SSIM vs bicubic, LR consistency), `checkpoint.pt`, `log.jsonl`,
`samples/*.png` (LR | SR | HR), `training.json`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..cards import CardFacts, glean_card
from ..config import GLEANConfig
from ..discriminator import StyleGAN2Discriminator
from ..eval import evaluate
from ..glean import GLEAN, PixelShufflePack
from ..errors import CheckpointError, ConfigError
from ..hub import BANK_PREFIX, DISCRIMINATOR_NAME, HubOptions, check_state_dict, fetch, load_bank
from .augment import realworld_lr, random_flip
from .common import (
    CHECKPOINT, LOG, JsonlLog, Throughput, args_dict, cosine_lr, load_checkpoint, make_accelerator,
    prepare_run_dir, save_checkpoint, save_grid, seed_step,
)
from .data import PackedImages, batch_indices, crop_policies, split_files, to_float
from .losses import VGGPerceptual, d_logistic_loss, feature_matching, g_nonsaturating_loss


@dataclass
class GLEANTrainArgs:
    bank: str  # bank folder or Hub repo id (frozen)
    data: Path  # image folder (train/ and val/, or flat with a fixed 5% validation split)
    scale: int  # upscaling factor; in_size = bank resolution / scale
    out: Path  # run folder
    category: str | None = None  # default: the bank's
    crop_policy: str | None = None  # default: by category
    degradation: str = "bicubic"  # or "realworld"
    steps: int = 20_000
    batch_size: int = 8
    lr: float = 1e-4
    d_lr: float = 1e-4
    warmup: int = 0
    pixel_weight: float = 1.0
    pixel_loss: str = "mse"  # "mse" (MMEditing's GLEAN) or "l1" (PSNR-oriented training converges faster)
    mse_from: int | None = None  # switch the pixel loss to MSE from this step (L1 converges faster; MSE then aims
    #   at the mean of the plausible images, which is what PSNR rewards)
    perceptual_weight: float = 1e-2
    gan_weight: float = 1e-2
    vgg_weights: Path | None = None  # torchvision vgg19 state dict; default perceptual term: D feature matching
    rrdb_channels: int = 64
    num_rrdbs: int = 23
    rrdb_growth: int = 32
    decoder_channels: int = 64
    decoder_width: int | None = None  # width of the pixel-shuffle stages; None: the bank's widths (official)
    bicubic_skip: bool = False  # learn the residual over the MATLAB-bicubic upscale (not in the official models)
    dense_rank: int | None = None  # low-rank fully connected residual on the encoder's in_size feature (not official)
    decoder_activation: bool = False  # LeakyReLU after each pixel-shuffle stage (not official)
    extra_crops: str = ""  # more training framings, comma-separated crop policies (e.g. "center" for faces)
    no_bank: bool = False  # train the bank-less baseline (same encoder/decoder, zeros instead of bank features)
    bank_dropout: float = 0.0  # share of each batch that gets zeros instead of bank features (not official)
    init_from: str | None = None  # GLEAN folder or Hub id whose encoder, fusion convs and decoder start this run
    seed: int = 0
    mixed_precision: str = "no"
    cpu: bool = False
    resume: bool = False
    cache_dir: Path | None = None
    max_minutes: float | None = None
    val_images: int = 64  # validation images used for metrics during training (all at the end)
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    progress: bool = True


# where and how a run goes, not what it trains: left out of train_command
RUN_CONTROL = ("out", "resume", "cache_dir", "max_minutes", "val_images", "log_every", "sample_every",
               "checkpoint_every", "progress", "cpu")


def train_command(args: dict) -> list[str]:
    """The `glean-hub train` flags that repeat a run, from its training.json `args`: the required ones and every
    value that differs from its default, in field order; where and how it runs (RUN_CONTROL) is left out."""
    flags = []
    for f in fields(GLEANTrainArgs):
        value = args.get(f.name, f.default)
        if f.name in RUN_CONTROL or (f.default is not MISSING and value == f.default):
            continue
        flag = "--" + f.name.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)]
    return flags


PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


@torch.no_grad()
def icnr_(conv: torch.nn.Conv2d, scale: int = 2) -> None:
    """ICNR weights (Aitken et al. 2017) for a conv followed by pixel shuffle x`scale`: the scale**2 sub-pixels of
    each output channel get the same (Kaiming-normal) kernel, so they start equal. The bias is left to the caller."""
    r2 = scale**2
    sub = torch.empty(conv.out_channels // r2, *conv.weight.shape[1:])
    torch.nn.init.kaiming_normal_(sub, a=0.2)
    conv.weight.copy_(sub.repeat_interleave(r2, dim=0))


@torch.no_grad()
def init_from_model(model: GLEAN, source: str) -> None:
    """Start `model`'s encoder, fusion convs and decoder from the GLEAN model `source` (folder or Hub id), e.g. a
    related category's: fine-tuning from it needs fewer images than training from scratch. The bank is not copied."""
    ours, theirs = ({k: v for k, v in m.state_dict().items() if not k.startswith(BANK_PREFIX)}
                    for m in (model, GLEAN.from_pretrained(source)))
    try:
        check_state_dict(ours, theirs, "its encoder/decoder")
    except CheckpointError as e:
        raise CheckpointError(f"--init-from {source}: its encoder/decoder differ from this run's; train with the scale "
                              f"and width flags it was trained with ({e})") from None
    model.load_state_dict(theirs, strict=False)


@torch.no_grad()
def init_decoder(model: GLEAN) -> None:
    """ICNR initialisation of the pixel-shuffle convs (`icnr_`, with the bias equal over the sub-pixels too: the
    output carries no pixel-shuffle-period grid at step 0); with a bicubic skip, the last conv starts at zero
    so the untrained model is exactly bicubic."""
    for block in model.decoder:
        if isinstance(block, PixelShufflePack):
            conv = block.upsample_conv
            r2 = block.scale**2
            icnr_(conv, block.scale)
            conv.bias.copy_(conv.bias.view(-1, r2)[:, :1].expand(-1, r2).reshape(-1))
    if model.config.bicubic_skip:
        last = model.decoder[-1][-1]
        last.weight.zero_(), last.bias.zero_()


def train_glean(args: GLEANTrainArgs) -> Path:
    """Run (or resume) GLEAN training; returns the model folder."""
    if not 0 <= args.bank_dropout < 1:
        raise ConfigError(f"--bank-dropout {args.bank_dropout}: give a share of the batch from 0 up to (not including) 1")
    out = prepare_run_dir(Path(args.out), args.resume)
    acc = make_accelerator(args.mixed_precision, args.cpu)
    device, rank, world = acc.device, acc.process_index, acc.num_processes

    # 1. the frozen bank, its sha256, and its discriminator when the bank folder has one
    bank = load_bank(args.bank, share=False)
    res = bank.config.out_size
    if res % args.scale or res // args.scale < 4:
        raise ConfigError(f"scale {args.scale} does not fit the {res}px bank (in_size = {res}/{args.scale} must be a power of two >= 4)")
    category = args.category or bank.config.category
    policy, crop = crop_policies(args.data, args.crop_policy, category)
    bank_id = os.path.relpath(Path(args.bank).resolve(), (out / "model").resolve()) if Path(args.bank).is_dir() else args.bank
    config = GLEANConfig(
        in_size=res // args.scale, bank=bank.config, rrdb_channels=args.rrdb_channels, num_rrdbs=args.num_rrdbs,
        rrdb_growth=args.rrdb_growth, decoder_channels=args.decoder_channels, decoder_width=args.decoder_width,
        bicubic_skip=args.bicubic_skip, dense_rank=args.dense_rank,
        decoder_activation=args.decoder_activation, use_bank=not args.no_bank,
        category=category, degradation=args.degradation, crop_policy=policy, bank_id=bank_id, bank_sha256=bank.sha256,
    )

    # 2. the model (before the data: a --init-from that does not fit fails at once, not after packing)
    torch.manual_seed(args.seed)
    model = GLEAN(config)
    model.generator.load_state_dict(bank.state_dict())
    model.generator.set_fused_modulation(False)
    init_decoder(model)
    model.bank_dropout = args.bank_dropout
    if args.init_from and not args.resume:
        init_from_model(model, args.init_from)

    # 3. data: HR crops at the bank's resolution, bicubic LRs made once
    train_files, val_files = split_files(args.data)
    cache = args.cache_dir or out / "cache"
    show = args.progress and acc.is_main_process
    train = PackedImages.from_files(train_files, res, crop, cache, show)
    for extra in filter(None, args.extra_crops.split(",")):  # the same images framed otherwise: robust to framing
        train = train.concat(PackedImages.from_files(train_files, res, extra, cache, show))
    val = PackedImages.from_files(val_files or train_files[:8], res, crop, cache, show)

    # 4. discriminator, losses, optimisers
    D = StyleGAN2Discriminator(bank.config)
    disc_path = fetch(args.bank, DISCRIMINATOR_NAME, HubOptions(), required=False)
    if disc_path is not None:
        from safetensors.torch import load_file

        D.load_state_dict(load_file(disc_path))
    perceptual = VGGPerceptual(args.vgg_weights).to(device) if args.vgg_weights else None
    g_opt = torch.optim.Adam(model.trainable_parameters(), lr=args.lr, betas=(0.9, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=args.d_lr, betas=(0.9, 0.99))
    start, prior_minutes = 0, 0.0
    if args.resume:
        ckpt = load_checkpoint(out / CHECKPOINT)
        model.load_state_dict(ckpt["model"]), D.load_state_dict(ckpt["D"])
        g_opt.load_state_dict(ckpt["g_opt"]), d_opt.load_state_dict(ckpt["d_opt"])
        start, prior_minutes = ckpt["step"], ckpt.get("minutes", 0.0)
    model, D, g_opt, d_opt = acc.prepare(model, D, g_opt, d_opt)
    raw = acc.unwrap_model(model)
    log = JsonlLog(out / LOG, acc.is_main_process, truncate_after=start if args.resume else None)
    meter, t0 = Throughput(), time.time()
    use_d = args.gan_weight > 0 or perceptual is None and args.perceptual_weight > 0
    n_val = min(args.val_images, len(val))
    sample_lr = to_float(torch.from_numpy(val.lr(args.scale)[:6])).to(device)
    sample_hr = to_float(torch.from_numpy(val.hr[:6])).to(device)

    def lr_batch(idx: np.ndarray, step: int) -> torch.Tensor:
        if args.degradation == "realworld":
            return torch.from_numpy(realworld_lr(train.hr[idx], args.scale, np.random.default_rng([args.seed, step, rank])))
        return torch.from_numpy(train.lr(args.scale)[idx])

    def snapshot(step: int, metrics: dict | None) -> None:
        if not acc.is_main_process:
            return
        minutes = round(prior_minutes + (time.time() - t0) / 60, 2)  # training time over all resumes
        save_checkpoint(out / CHECKPOINT, step=step, model=raw.state_dict(), D=acc.unwrap_model(D).state_dict(),
                        g_opt=g_opt.state_dict(), d_opt=d_opt.state_dict(), args=args_dict(args), minutes=minutes)
        facts = CardFacts(
            data=f"{len(train)} training / {len(val)} validation images from `{Path(args.data).name}`, "
            f"{policy} square crops at {res}px; LR: {args.degradation}",
            training=f"{step} steps x {args.batch_size * world} images; losses pixel {args.pixel_loss} {args.pixel_weight}"
            + (f" (MSE from step {args.mse_from})" if args.mse_from is not None else "") + ", "
            f"perceptual {args.perceptual_weight} ({'VGG19' if perceptual else 'discriminator features'}), GAN {args.gan_weight}",
            metrics={k: {m: v for m, v in metrics[k].items()} for k in ("glean", "bicubic")} if metrics else {},
        )
        raw.save_pretrained(out / "model", card=glean_card(config, facts))
        (out / "training.json").write_text(json.dumps({"kind": "glean", "step": step, "args": args_dict(args),
                                                       "minutes": minutes}, indent=2))

    def validate(step: int, count: int) -> dict:
        metrics = evaluate(raw, val.hr[:count], val.lr(args.scale)[:count], device=device)
        metrics["step"] = step
        if acc.is_main_process:
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        return metrics

    from tqdm.auto import tqdm

    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="train", disable=not show)
    for step in bar:
        seed_step(args.seed, step, rank)
        idx = batch_indices(step, args.batch_size, len(train), args.seed, rank, world)
        hr, lr = random_flip(to_float(torch.from_numpy(train.hr[idx])), to_float(lr_batch(idx, step)))
        hr, lr = hr.to(device), lr.to(device)
        for group in g_opt.param_groups:
            group["lr"] = cosine_lr(step, args.steps, args.lr, args.warmup)

        # 4. generator (encoder, fusions, decoder): pixel + perceptual + adversarial
        D.requires_grad_(False)
        with acc.autocast():
            sr = model(lr)
            pixel_loss = "mse" if args.mse_from is not None and step >= args.mse_from else args.pixel_loss
            pixel = PIXEL_LOSSES[pixel_loss](sr.float(), hr)
            if use_d:
                fake_logits, fake_feats = D(sr, return_features=True)
            if perceptual is not None:
                perc = perceptual(sr.float(), hr)
            elif args.perceptual_weight > 0:
                with torch.no_grad():
                    _, real_feats = D(hr, return_features=True)
                perc = feature_matching(fake_feats, real_feats)
            else:
                perc = torch.zeros((), device=device)
            gan = g_nonsaturating_loss(fake_logits) if args.gan_weight > 0 else torch.zeros((), device=device)
            g_loss = args.pixel_weight * pixel + args.perceptual_weight * perc + args.gan_weight * gan
        g_opt.zero_grad(set_to_none=True)
        acc.backward(g_loss)
        g_opt.step()

        # 5. discriminator (only when the adversarial term is on)
        d_loss = torch.zeros((), device=device)
        if args.gan_weight > 0:
            D.requires_grad_(True)
            with acc.autocast():
                d_loss = d_logistic_loss(D(hr), D(sr.detach()))
            d_opt.zero_grad(set_to_none=True)
            acc.backward(d_loss)
            d_opt.step()

        meter.add(len(hr) * world)
        if step % args.log_every == 0 or step == args.steps - 1:
            row = dict(step=step, loss=g_loss.item(), pixel=pixel.item(), perceptual=perc.item(), gan=gan.item(),
                       d_loss=d_loss.item(), lr=g_opt.param_groups[0]["lr"], img_per_s=meter.rate())
            log.write(**row)
            shown = {"pix": f"{row['pixel']:.4f}"}
            if pixel_loss == "mse":  # the batch PSNR in [-1, 1] units (range 2)
                shown["psnr"] = f"{10 * np.log10(4 / max(row['pixel'], 1e-10)):.1f}"
            bar.set_postfix(**shown)
        if acc.is_main_process and (step + 1) % args.sample_every == 0:
            raw.eval()
            with torch.no_grad():
                save_grid([sample_lr, raw(sample_lr), sample_hr], out / "samples" / f"step{step + 1:07d}.png")
            raw.train()
        if (step + 1) % args.checkpoint_every == 0 and step + 1 < args.steps:
            snapshot(step + 1, validate(step + 1, n_val))
        if args.max_minutes is not None and time.time() - t0 > args.max_minutes * 60:
            snapshot(step + 1, validate(step + 1, n_val))
            bar.close()
            print(f"stopped after {args.max_minutes} min at step {step + 1}; continue with --resume")
            return out / "model"
    bar.close()
    final = max(start, args.steps)  # a resumed run may already be past --steps
    snapshot(final, validate(final, len(val)))
    return out / "model"
