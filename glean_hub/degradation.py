"""The degradation guard: does an input look like what a `bicubic` model was trained on?

A `degradation="bicubic"` model has only seen LR images made by MATLAB `imresize` from clean
photos; sensor noise and JPEG blocking are out of distribution and get sharpened into
artefacts. The pipeline makes its own LR by downscaling, which averages noise and blocking away
when the factor is large, so the checks look at the *source* region (the square the network
input is made from, at the original resolution) and at how much of a defect survives the shrink:

* noise: Immerkaer's residual (3x3 kernel of norm 6), robust to edges and texture by taking its
  20th percentile; fires when sigma > `noise_threshold(side)` *and* sigma / shrink > `LR_NOISE_MIN`;
* JPEG: a JPEG file of estimated quality < `JPEG_QUALITY_MIN`, or an 8-pixel grid in the gradients
  (`blockiness` > `BLOCKINESS_MAX`, sides >= `MIN_SIDE_FOR_BLOCKING`), when shrunk < `BLOCKING_MAX_SHRINK`x;
* nearest-neighbour enlargements (every pixel repeated k x k): their bicubic downscale is not what
  the model saw.

Calibration (MATLAB-bicubic LRs of 195 real photos, 5 categories, vs the same LRs with Gaussian
noise or JPEG): clean LRs measure sigma p99 ~4 (64 px), ~6.6 (32 px), ~12.8 (16 px); blockiness of
clean 64 px LRs p95 1.5, max 2.1. So the guard catches sigma >= ~6 noise at 64 px, >= ~9 at 32 px,
>= ~15 at 16 px and is silent below 16 px, where texture and noise cannot be told apart. It is a
heuristic: it warns, never refuses.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# (shortest side of the measured image, sigma threshold in grey levels): the first row whose side fits.
NOISE_THRESHOLDS = ((64, 4.5), (32, 6.5), (16, 12.0))
LR_NOISE_MIN = 2.0  # noise left after the downscale (sigma / shrink) that is worth a warning
NOISE_WINDOW = 512  # larger sources are measured on their central NOISE_WINDOW^2 pixels
BLOCKINESS_MAX = 2.2  # strongest 8-px phase / median phase
MIN_SIDE_FOR_BLOCKING = 64  # too few 8x8 blocks below this to tell a grid from one strong edge
BLOCKING_MAX_SHRINK = 3.0  # larger downscales average JPEG blocks away
JPEG_QUALITY_MIN = 75  # estimated from the file's luma quantisation table
PIXEL_REPEAT_MAX_SIDE = 2048  # nearest-neighbour enlargements are looked for in images up to this side

_PERCENTILE = 20
_HALF_NORMAL_P20 = 0.25335  # Phi^-1(0.6): the 20th percentile of |N(0, 1)|

# libjpeg's standard luma table (quality 50); quality q scales it by 5000/q (q < 50) or 200 - 2q (%).
_STD_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


LUMA_601 = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights of R, G, B (those of PIL's "L")


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float64 luma [H, W] in 0..255 (ITU-R 601)."""
    return rgb[..., :3].astype(np.float64) @ np.array(LUMA_601)


def _center_window(g: np.ndarray, size: int) -> np.ndarray:
    h, w = g.shape
    t, l = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return g[t : t + size, l : l + size]


def noise_sigma(gray: np.ndarray) -> float:
    """Noise standard deviation (grey levels) of float [H, W]; 0.0 for images under 3x3."""
    g = _center_window(gray, NOISE_WINDOW)
    if min(g.shape) < 3:
        return 0.0
    r = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
         - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
         + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:])  # Immerkaer's kernel: N(0, s) -> N(0, 6 s)
    return float(np.percentile(np.abs(r), _PERCENTILE) / (6 * _HALF_NORMAL_P20))


def noise_threshold(side: int) -> float | None:
    """Sigma above which an image with this shortest side counts as noisy; None: too small to tell."""
    return next((t for s, t in NOISE_THRESHOLDS if side >= s), None)


def blockiness(gray: np.ndarray) -> float:
    """JPEG grid strength of float [H, W]: strongest 8-px phase of boundary/interior gradients over the median phase.

    Per phase, median |gradient| across block boundaries over the median inside the blocks (medians:
    one strong edge cannot fake a grid). 1.0 for no grid or images under MIN_SIDE_FOR_BLOCKING.
    """
    if min(gray.shape) < MIN_SIDE_FOR_BLOCKING:
        return 1.0
    scores = np.zeros(8)
    for d in (np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0)).T):
        n = (d.shape[1] + 1) // 8 - 1  # complete blocks with a boundary after them
        for p in range(8):
            cols = np.arange(n) * 8 + p + 7
            cols = cols[cols < d.shape[1]]
            inside = np.mean([d[:, cols - j] for j in range(1, 8)], axis=0)
            scores[p] += (np.median(d[:, cols]) + 0.5) / (np.median(inside) + 0.5)
    return float(scores.max() / np.median(scores))


def jpeg_quality(img: Image.Image) -> int | None:
    """Estimated libjpeg quality (1-100) from a JPEG file's luma table; None for other formats."""
    tables = getattr(img, "quantization", None)
    if getattr(img, "format", None) != "JPEG" or not tables or 0 not in tables:
        return None
    percent = float(np.mean(np.asarray(tables[0], dtype=np.float64) / _STD_LUMA)) * 100  # 5000/q or 200-2q
    q = 5000 / percent if percent >= 100 else (200 - percent) / 2
    return int(np.clip(round(q), 1, 100))


def pixel_repeat(rgb: np.ndarray) -> int:
    """k > 1 when the image is a nearest-neighbour enlargement (k x k blocks of equal pixels), else 1."""
    h, w = rgb.shape[:2]
    if max(h, w) > PIXEL_REPEAT_MAX_SIDE:
        return 1
    for k in (8, 4, 3, 2):
        if h % k or w % k or min(h, w) < 4 * k:
            continue
        small = rgb[::k, ::k]
        if np.array_equal(np.repeat(np.repeat(small, k, 0), k, 1), rgb) and small.std() > 0:
            return k
    return 1


def degradation_warnings(source: np.ndarray, shrink: float, quality: int | None, model_degradation: str) -> list[str]:
    """Warnings (strings) when the input of a bicubic model looks noisy, compressed or pixelated; [] otherwise.

    source: uint8 [H, W, 3], the region the network input is made from, at its own resolution.
    shrink: source side / network input side (< 1 when enlarged). quality: `jpeg_quality` of the file.
    """
    if model_degradation != "bicubic":
        return []
    found = []
    gray = luma(source)
    sigma, limit = noise_sigma(gray), noise_threshold(min(gray.shape))
    if limit is not None and sigma > limit and sigma / max(shrink, 1.0) > LR_NOISE_MIN:
        found.append(f"noise (sigma ~{sigma:.1f} grey levels, ~{sigma / max(shrink, 1.0):.1f} after the downscale)")
    if shrink < BLOCKING_MAX_SHRINK:
        b = blockiness(gray)
        if b > BLOCKINESS_MAX:
            found.append(f"JPEG blocking (an 8-px grid {b:.1f}x stronger than the image's other gradients)")
        elif quality is not None and quality < JPEG_QUALITY_MIN:
            found.append(f"JPEG compression (quality ~{quality}, shrunk only {shrink:.1f}x before the network)")
    k = pixel_repeat(source)
    if k > 1:
        found.append(f"a nearest-neighbour enlargement ({k}x{k} blocks of equal pixels; pass the original small image)")
    if not found:
        return []
    return [
        "input does not look like a clean bicubic low-resolution image: " + "; ".join(found) + ". This model was "
        "trained on clean MATLAB-bicubic downscales (degradation='bicubic') and will sharpen such artefacts. A model "
        "trained with degradation='realworld' fits better (e.g. the official GLEAN FFHQ 128->1024 real-world model: "
        "glean-hub convert ... --degradation realworld), or pass a larger, cleaner image and let glean-hub downscale it"
    ]
