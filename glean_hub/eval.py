"""Validation numbers: PSNR/SSIM of GLEAN vs MATLAB-bicubic upscaling, and LR consistency.

All metrics on RGB uint8 images, no border crop (as the released GLEAN numbers). LR consistency
is the PSNR between MATLAB-bicubic downscaling of the output and the input: a faithful
super-resolution explains its input. `grid_db` measures the pixel-shuffle-period pattern
(`periodic_artifact_db`): spectral spikes at the grid frequencies beyond the ground truth's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .imresize import imresize_uint8


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB) of uint8 arrays [N, C, H, W]."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image SSIM of uint8 arrays [N, C, H, W]: 11x11 Gaussian window (sigma 1.5), valid region,
    averaged over channels (the formula of Wang et al. 2004 as used by MMEditing)."""
    x = torch.from_numpy(a.astype(np.float64))
    y = torch.from_numpy(b.astype(np.float64))
    n, c, h, w = x.shape
    x, y = x.reshape(n * c, 1, h, w), y.reshape(n * c, 1, h, w)
    win = _gaussian_window(min(11, h, w) | 1, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = F.conv2d(x, win), F.conv2d(y, win)
    sxx = F.conv2d(x * x, win) - mu_x**2
    syy = F.conv2d(y * y, win) - mu_y**2
    sxy = F.conv2d(x * y, win) - mu_x * mu_y
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return m.reshape(n, c, -1).mean(dim=(1, 2)).numpy()


def grid_peaks(images: np.ndarray, period: int) -> float:
    """Spectral peakiness at the frequencies of a `period`-pixel grid, in dB.

    images: uint8 or float [N, C, S, S] (S divisible by `period`). The power spectrum of the
    mean-free images, averaged over images and channels, is read at every multiple of S/period in
    both axes (but 0, 0), where a pattern repeating every `period` pixels (pixel shuffle x2 repeats
    every 2 output pixels, an earlier x2 stage every 4, ...) puts its energy, and divided by the mean
    power of the 8 neighbouring bins. A smooth spectrum gives about 0 dB; a grid gives a spike.
    """
    x = images.astype(np.float64)
    x = x - x.mean(axis=(2, 3), keepdims=True)
    power = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=(0, 1))  # [S, S]
    s = power.shape[-1]
    step = s // period
    on_grid = np.zeros_like(power, dtype=bool)
    on_grid[::step, ::step] = True
    on_grid[0, 0] = False
    ratios = []
    for u, v in zip(*np.nonzero(on_grid)):
        near = [((u + du) % s, (v + dv) % s) for du in (-1, 0, 1) for dv in (-1, 0, 1) if (du, dv) != (0, 0)]
        near = [(a, b) for a, b in near if not on_grid[a, b] and (a, b) != (0, 0)]
        ratios.append(power[u, v] / max(np.mean([power[a, b] for a, b in near]), 1e-12))
    return float(10 * np.log10(np.mean(ratios)))


def periodic_artifact_db(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """The grid measure of the cards: `grid_peaks(sr) - grid_peaks(hr)` at the period `scale` (whose
    frequencies include those of every pixel-shuffle stage: periods 2, 4, ..., scale). About 0 dB: no
    more periodic energy than the ground truth; a visible grid is several dB."""
    return grid_peaks(sr, scale) - grid_peaks(hr, scale)


def bicubic_upscale(lr: np.ndarray, size: int) -> np.ndarray:
    """MATLAB-bicubic upscaling of uint8 [N, 3, h, w] to [N, 3, size, size]."""
    return np.stack([imresize_uint8(np.ascontiguousarray(x.transpose(1, 2, 0)), size=(size, size)).transpose(2, 0, 1) for x in lr])


def bicubic_downscale(hr: np.ndarray, size: int) -> np.ndarray:
    return np.stack([imresize_uint8(np.ascontiguousarray(x.transpose(1, 2, 0)), size=(size, size)).transpose(2, 0, 1) for x in hr])


@torch.no_grad()
def super_resolve(model, lr: np.ndarray, batch_size: int = 16, device="cpu") -> np.ndarray:
    """uint8 LR [N, 3, s, s] -> uint8 SR [N, 3, S, S] through `model` (float input in [-1, 1])."""
    from .train.data import to_float, to_uint8

    dtype = next(model.parameters()).dtype
    out = []
    for i in range(0, len(lr), batch_size):
        x = to_float(torch.from_numpy(lr[i : i + batch_size])).to(device=device, dtype=dtype)
        out.append(to_uint8(model(x)).cpu().numpy())
    return np.concatenate(out)


def evaluate(model, hr: np.ndarray, lr: np.ndarray, batch_size: int = 16, device="cpu") -> dict:
    """Metrics of `model` on uint8 pairs, with the bicubic baseline. Also per-image PSNR (for best/worst cases)."""
    was_training = model.training
    model.eval()
    sr = super_resolve(model, lr, batch_size, device)
    model.train(was_training)
    bic = bicubic_upscale(lr, hr.shape[-1])
    p_sr, p_bic = psnr(sr, hr), psnr(bic, hr)
    scale = hr.shape[-1] // lr.shape[-1]
    return {
        "images": len(hr),
        "glean": {"psnr": float(p_sr.mean()), "ssim": float(ssim(sr, hr).mean()),
                  "lr_psnr": float(psnr(bicubic_downscale(sr, lr.shape[-1]), lr).mean()),
                  "grid_db": periodic_artifact_db(sr, hr, scale)},
        "bicubic": {"psnr": float(p_bic.mean()), "ssim": float(ssim(bic, hr).mean()),
                    "lr_psnr": float(psnr(bicubic_downscale(bic, lr.shape[-1]), lr).mean()),
                    "grid_db": periodic_artifact_db(bic, hr, scale)},
        "per_image_psnr": [round(float(v), 3) for v in p_sr],
    }
