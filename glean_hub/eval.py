"""Validation numbers: PSNR/SSIM of GLEAN vs MATLAB-bicubic upscaling, and LR consistency.

All metrics on RGB uint8 images, no border crop (as the released GLEAN numbers). LR consistency
is the PSNR between MATLAB-bicubic downscaling of the output and the input: a faithful
super-resolution explains its input.
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
    return {
        "images": len(hr),
        "glean": {"psnr": float(p_sr.mean()), "ssim": float(ssim(sr, hr).mean()),
                  "lr_psnr": float(psnr(bicubic_downscale(sr, lr.shape[-1]), lr).mean())},
        "bicubic": {"psnr": float(p_bic.mean()), "ssim": float(ssim(bic, hr).mean()),
                    "lr_psnr": float(psnr(bicubic_downscale(bic, lr.shape[-1]), lr).mean())},
        "per_image_psnr": [round(float(v), 3) for v in p_sr],
    }
