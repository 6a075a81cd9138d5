"""Augmentations: differentiable (DiffAugment) for the discriminator, and real-world LR degradation.

DiffAugment (Zhao et al., NeurIPS 2020) applies the same kind of random colour, translation and
cutout to real and generated images before the discriminator, so small sets (a few hundred
images) do not make it memorise and collapse. Gradients flow through every op.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..imresize import imresize_uint8

DIFFAUGMENT = "color,translation,cutout"


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + tx + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, gy, gx].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ox - ch // 2, 0, h - 1)
    gx = torch.clamp(gx[None] + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, device=x.device, dtype=x.dtype)
    mask[torch.arange(n, device=x.device)[:, None, None], gy, gx] = 0
    return x * mask[:, None]


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: str = DIFFAUGMENT) -> torch.Tensor:
    """[N, C, H, W] -> same shape, randomly augmented (differentiable). policy: comma-separated op names."""
    for name in filter(None, policy.split(",")):
        x = _OPS[name](x)
    return x.contiguous()


def random_flip(*batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Flip the same random half of the samples left-right in every batch (HR and LR stay paired)."""
    flip = torch.rand(batches[0].shape[0]) < 0.5
    return tuple(torch.where(flip.view(-1, 1, 1, 1).to(b.device), b.flip(-1), b) for b in batches)


def realworld_lr(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """Real-world degradation of uint8 HR [N, 3, R, R]: Gaussian blur (sigma 0.2-3 HR px), MATLAB-bicubic
    downscale, Gaussian noise (sigma 0-10 grey levels), JPEG (quality 30-95). Returns uint8 LR."""
    from PIL import ImageFilter

    out = []
    for img in hr:
        pil = Image.fromarray(img.transpose(1, 2, 0)).filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.2, 3.0)))
        small = imresize_uint8(np.asarray(pil), scale=1 / scale).astype(np.float64)
        small += rng.normal(0, rng.uniform(0, 10), small.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(np.round(small), 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(30, 96)))
        out.append(np.asarray(Image.open(buf).convert("RGB")).transpose(2, 0, 1))
    return np.stack(out)
