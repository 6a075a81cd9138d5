"""`glean-hub eval`: the paper's comparison on your own images: bicubic, GLEAN, the bank-less baseline and
GAN inversion on the same bank, every method run on the same LR.

    ground truth (files) -> S x S crops (`load_ground_truth`) -> MATLAB-bicubic LR n x n
    -> each method: LR -> S x S uint8 (timed) -> metrics per image and per method
    -> metrics.json, metrics.md (Markdown table), grid.png (LR | methods | ground truth)

Metrics come from `eval.py` (the code of the model cards' numbers): PSNR and SSIM against the ground
truth on RGB uint8, no border crop; LR-PSNR: the MATLAB-bicubic downscale of the output against the LR
(consistency); grid: `periodic_artifact_db` (dB of periodic energy at the pixel-shuffle periods beyond
the ground truth's); LPIPS (AlexNet) only when the `lpips` package and its backbone weights are already
on this machine (nothing is downloaded). Everything is deterministic for a seed but seconds_per_image.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .errors import ConfigError, InputImageError
from .eval import bicubic_downscale, bicubic_upscale, periodic_artifact_db, psnr, ssim
from .imresize import imresize_uint8

METHODS = ("bicubic", "glean", "no-bank", "invert")
CROPS = ("center", "face", "pad")


def parse_methods(text: str) -> list[str]:
    """"bicubic,glean,invert" -> ["bicubic", "glean", "invert"]; unknown or repeated names are one-line errors."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if not names or bad:
        raise ConfigError(f"--methods {text!r}: expected a comma-separated list of {', '.join(METHODS)}"
                          + (f" (unknown: {', '.join(bad)})" if bad else ""))
    if len(set(names)) != len(names):
        raise ConfigError(f"--methods {text!r} names a method twice")
    return names


def load_ground_truth(files: list, size: int, crop: str = "center", max_pixels: int | None = None):
    """Files -> (uint8 [N, 3, size, size], names, [(file, problem)]). An image of exactly size x size is used as
    it is; others are cut square by `crop` ("center": the centred square; "face": the training crop of the
    faces models; "pad": reflect-padded) and MATLAB-bicubic resized to size x size."""
    from .images import load_image, split_alpha
    from .train.data import square_crop

    if crop not in CROPS:
        raise ConfigError(f"crop={crop!r}; expected one of {CROPS}")
    images, names, problems = [], [], []
    for f in files:
        try:
            rgb, _ = split_alpha(load_image(f, max_pixels=max_pixels, name=str(f)))
        except InputImageError as e:
            problems.append((str(f), str(e).removeprefix(f"{f}: ")))
            continue
        if rgb.size != (size, size):
            rgb = square_crop(rgb, crop)
            arr = np.asarray(rgb, dtype=np.uint8)
            arr = imresize_uint8(np.ascontiguousarray(arr), size=(size, size)) if arr.shape[0] != size else arr
        else:
            arr = np.asarray(rgb, dtype=np.uint8)
        images.append(arr.transpose(2, 0, 1))
        names.append(Path(f).name if isinstance(f, (str, Path)) else str(f))
    hr = np.stack(images) if images else np.zeros((0, 3, size, size), np.uint8)
    return hr, names, problems


def load_lpips(device="cpu"):
    """(LPIPS-AlexNet callable on uint8 [N, 3, H, W] -> [N], None) when `lpips` and the torchvision AlexNet weights
    are on this machine; else (None, one-line note). Nothing is downloaded."""
    try:
        import lpips
    except ImportError:
        return None, "LPIPS skipped: the lpips package is not installed (pip install lpips; its AlexNet weights must be in the torch hub cache)"
    weights = Path(torch.hub.get_dir()) / "checkpoints" / "alexnet-owt-7be5be79.pth"
    if not weights.is_file():
        return None, f"LPIPS skipped: the AlexNet backbone weights are not in {weights.parent} (nothing is downloaded)"
    import lpips

    net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()

    @torch.no_grad()
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(a).float().to(device) / 127.5 - 1
        y = torch.from_numpy(b).float().to(device) / 127.5 - 1
        return net(x, y).flatten().cpu().numpy()

    return distance, None


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def glean_method(pipe, batch_size: int = 8):
    """LR uint8 [N, 3, n, n] -> SR uint8 through a pipeline's step 4 (a GLEANPipeline: the fast path users run;
    an InversionPipeline: the inversion), rounded as the pipeline's outputs are."""
    def run(lr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(lr).float() / 127.5 - 1  # = pil_to_tensor of the LR, bit for bit
        return _to_uint8(pipe.forward(x, batch_size=batch_size, progress=True))
    return run


def bicubic_method(size: int):
    return lambda lr: bicubic_upscale(lr, size)


def compare(hr: np.ndarray, in_size: int, methods: dict, names: list[str] | None = None, *, lpips=None,
            seed: int = 0, log=None) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """Run `methods` ({name: LR uint8 -> SR uint8}) on the MATLAB-bicubic LR of `hr` (uint8 [N, 3, S, S]).
    Returns (metrics in the metrics.json schema, outputs by method, lr)."""
    if len(hr) == 0:
        raise InputImageError("no ground-truth images to evaluate")
    size = hr.shape[-1]
    lr = bicubic_downscale(hr, in_size)
    names = names or [f"image {i}" for i in range(len(hr))]
    scale = size // in_size
    result = {"methods": {}, "images": [{"name": n} for n in names]}
    outputs = {}
    for name, run in methods.items():
        torch.manual_seed(seed)
        if log:
            log(f"{name}: {len(hr)} images")
        start = time.perf_counter()
        sr = run(lr)
        seconds = time.perf_counter() - start
        if sr.shape != hr.shape or sr.dtype != np.uint8:
            raise ValueError(f"method {name} returned {sr.dtype} {list(sr.shape)}, expected uint8 {list(hr.shape)}")
        outputs[name] = sr
        p, s = psnr(sr, hr), ssim(sr, hr)
        lp = psnr(bicubic_downscale(sr, in_size), lr)
        row = {"psnr": float(p.mean()), "ssim": float(s.mean()), "lr_psnr": float(lp.mean()),
               "grid": periodic_artifact_db(sr, hr, scale), "seconds_per_image": seconds / len(hr)}
        per = {"psnr": p, "ssim": s, "lr_psnr": lp}
        if lpips is not None:
            d = lpips(sr, hr)
            row["lpips"], per["lpips"] = float(d.mean()), d
        result["methods"][name] = row
        for i, item in enumerate(result["images"]):
            item[name] = {k: round(float(v[i]), 4) for k, v in per.items()}
    return result, outputs, lr


def markdown_table(metrics: dict) -> str:
    """The methods as a Markdown table (PSNR, SSIM, LR-PSNR, grid, LPIPS when measured, seconds per image)."""
    rows = metrics["methods"]
    has_lpips = any("lpips" in r for r in rows.values())
    head = "| method | PSNR (dB) | SSIM | LR-PSNR (dB) | grid (dB) |" + (" LPIPS |" if has_lpips else "") + " s / image |"
    lines = [head, "|---|---:|---:|---:|---:|" + ("---:|" if has_lpips else "") + "---:|"]
    for name, r in rows.items():
        lp = f" {r['lpips']:.3f} |" if has_lpips and "lpips" in r else (" - |" if has_lpips else "")
        lr_psnr = f"{r['lr_psnr']:.2f}" if r["lr_psnr"] < 99 else "inf"
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {lr_psnr} | {r['grid']:+.2f} |{lp} "
                     f"{_seconds(r['seconds_per_image'])} |")
    return "\n".join(lines) + "\n"


def _seconds(s: float) -> str:
    return f"{s:.4f}" if s < 0.1 else f"{s:.2f}" if s < 10 else f"{s:.0f}"


def save_grid(lr: np.ndarray, outputs: dict[str, np.ndarray], hr: np.ndarray, path, rows: int = 6, pad: int = 2) -> Path:
    """PNG: one row per image (the first `rows`), columns LR (nearest-enlarged) | each method | ground truth,
    with a label row on top."""
    n = min(rows, len(hr))
    size = hr.shape[-1]
    cols = [("LR", np.repeat(np.repeat(lr[:n], size // lr.shape[-1], 2), size // lr.shape[-1], 3))]
    cols += [(k, v[:n]) for k, v in outputs.items()] + [("ground truth", hr[:n])]
    label_h = 14
    cell = max(size, 6 * max(len(k) for k, _ in cols) + 4)  # wide enough for the label (PIL's default font)
    canvas = Image.new("RGB", (len(cols) * (cell + pad) + pad, label_h + n * (size + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, (label, imgs) in enumerate(cols):
        x = pad + j * (cell + pad)
        draw.text((x, 1), label, fill="black")
        for i in range(n):
            canvas.paste(Image.fromarray(imgs[i].transpose(1, 2, 0)), (x + (cell - size) // 2, label_h + pad + i * (size + pad)))
    path = Path(path)
    canvas.save(path)
    return path


def write_report(out_dir, metrics: dict, lr: np.ndarray, outputs: dict, hr: np.ndarray, grid_rows: int = 6) -> dict[str, Path]:
    """DIR/metrics.json, DIR/metrics.md, DIR/grid.png; returns their paths."""
    out_dir = Path(out_dir)
    grid = save_grid(lr, outputs, hr, out_dir / "grid.png", rows=grid_rows)
    metrics = {**metrics, "grid_png": grid.name}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / "metrics.md").write_text(markdown_table(metrics))
    return {"json": out_dir / "metrics.json", "table": out_dir / "metrics.md", "grid": grid}


def settings_record(**values) -> dict:
    """JSON-safe record of the run's settings (dataclasses become dicts)."""
    return {k: asdict(v) if hasattr(v, "__dataclass_fields__") else v for k, v in values.items()}
