"""Training images: square crops per category, packed once into uint8 arrays, LR made MATLAB-style.

A folder of images becomes `PackedImages`: HR crops [N, 3, R, R] uint8 (grayscale files are kept
as one channel and replicated to RGB), cached as .npy keyed by the file list and settings. LR
images for bicubic models are made from the uint8 HR with MATLAB-exact `imresize` (rounded after
each pass, as MATLAB does for uint8), the way the released GLEAN models were trained.

Crop policies (written into the model config as `crop_policy`):
- center: the largest centred square (cats, bedrooms, towers, cars: cars lose some front/back,
  but every crop shows the car body at the same scale; padding would teach mirrored borders);
- face:   CelebA-aligned crops (178x218, eyes at y~110): a square of 0.84 x width centred at
          (0.5 w, 0.55 h), i.e. 150 px around (89, 120), so the face fills the frame;
- pad:    reflect-pad to a square (keeps everything, adds mirrored borders);
- start, end: the left (top) and right (bottom) squares of a landscape (portrait) image: extra training
          framings (`--extra-crops start,end`) with the centre crop's scale, so a 3:2 photo gives three
          different crops instead of one.
- zoom-c, zoom-tl, zoom-tr, zoom-bl, zoom-br: a square of ZOOM x the centre square's side at that square's
          centre or one of its corners (`--extra-crops zoom-c,zoom-tl,...`): more training images from small sets,
          seen 1.25x closer; zoomNN-c etc.: a square of NN% of the side (zoom65-tl: 0.65, seen 1.54x closer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import ConfigError, GleanError, InputImageError
from ..imresize import imresize_uint8

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
CROP_POLICY = {"faces": "face", "cats": "center", "cars": "center", "bedrooms": "center", "towers": "center"}
FACE_BOX = (0.5, 0.55, 0.84)  # centre x, centre y (fractions of width, height), side (fraction of width)
ZOOM = 0.8  # side of the zoom-* crops, as a fraction of the centre square's
ZOOM_CORNERS = {"c": (0.5, 0.5), "tl": (0, 0), "tr": (1, 0), "bl": (0, 1), "br": (1, 1)}  # where in the free margin
PACK_INFO = "pack.json"  # written by pack_dataset: the folder holds square crops made with this policy


def zoom_of(policy: str) -> tuple[float, str] | None:
    """(side as a fraction of the centre square's, corner) of a zoom-* or zoomNN-* policy, else None."""
    head, _, corner = policy.partition("-")
    if not head.startswith("zoom") or corner not in ZOOM_CORNERS:
        return None
    if head == "zoom":
        return ZOOM, corner
    percent = head[4:]
    return (int(percent) / 100, corner) if percent.isdigit() and 10 <= int(percent) < 100 else None


def is_zoom_crop(policy: str) -> bool:
    """True for the zoom policies: more training images from a small set, not a framing users send."""
    return zoom_of(policy) is not None


def square_crop(img: Image.Image, policy: str) -> Image.Image:
    """A square region of `img` chosen by `policy` (see the module docstring)."""
    w, h = img.size
    if policy == "center":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return img.crop((left, top, left + s, top + s))
    if policy == "face":
        cx, cy, frac = FACE_BOX
        s = min(round(frac * w), w, h)
        left = min(max(round(cx * w - s / 2), 0), w - s)
        top = min(max(round(cy * h - s / 2), 0), h - s)
        return img.crop((left, top, left + s, top + s))
    if policy in ("start", "end"):
        s = min(w, h)
        offset = 0 if policy == "start" else max(w, h) - s
        return img.crop((offset, 0, offset + s, s) if w >= h else (0, offset, s, offset + s))
    if (zoomed := zoom_of(policy)) is not None:
        zoom, corner = zoomed
        s, z = min(w, h), round(zoom * min(w, h))
        fx, fy = ZOOM_CORNERS[corner]
        left = (w - s) // 2 + round(fx * (s - z))
        top = (h - s) // 2 + round(fy * (s - z))
        return img.crop((left, top, left + z, top + z))
    if policy == "pad":
        s = max(w, h)
        arr = np.asarray(img)
        pad = [((s - h) // 2, s - h - (s - h) // 2), ((s - w) // 2, s - w - (s - w) // 2)] + [(0, 0)] * (arr.ndim - 2)
        return Image.fromarray(np.pad(arr, pad, mode="reflect"))
    raise ConfigError(f"crop policy must be 'center', 'face', 'pad', 'start', 'end' or "
                     f"{', '.join('zoom-' + k for k in ZOOM_CORNERS)} (zoomNN-*: NN% of the side, 10-99), got {policy!r}")


def default_crop_policy(requested: str | None, category: str | None) -> str:
    """The crop policy asked for, else the category's (CROP_POLICY), else centre."""
    return requested or CROP_POLICY.get(category or "", "center")


def crop_policies(root: str | Path, requested: str | None, category: str | None) -> tuple[str, str]:
    """(policy to record in the model config, crop to apply when loading the images).

    A folder made by `pack_dataset` holds square crops already: nothing more is cut (centre crop of a
    square is the identity), and its pack.json names the policy that made them."""
    default = default_crop_policy(requested, category)
    info = Path(root) / PACK_INFO
    if not info.is_file():
        return default, default
    packed = json.loads(info.read_text())["crop_policy"]
    if requested and requested != packed:
        raise GleanError(f"{root} holds {packed!r} crops (see its {PACK_INFO}), but --crop-policy {requested} was asked for")
    return packed, "center"


def pack_dataset(src: str | Path, dst: str | Path, resolution: int, policy: str, quality: int = 95) -> int:
    """Write the square training crops of `src` (train/ and val/) to `dst` as JPEGs, with a pack.json, so a
    category fits a small upload (e.g. 128 px faces: ~40 MB). Returns the number of images written."""
    from tqdm.auto import tqdm

    dst = Path(dst)
    train, val = split_files(src)
    count = 0
    for split, files in (("train", train), ("val", val)):
        (dst / split).mkdir(parents=True, exist_ok=True)
        for path in tqdm(files, desc=f"packing {split}", unit="img"):
            Image.fromarray(load_square(path, resolution, policy)).save(dst / split / f"{path.stem}.jpg", quality=quality)
            count += 1
    (dst / PACK_INFO).write_text(json.dumps({"crop_policy": policy, "resolution": resolution, "source": Path(src).name,
                                             "train": len(train), "val": len(val), "jpeg_quality": quality}, indent=2))
    return count


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def split_files(root: str | Path, val_fraction: float = 0.05) -> tuple[list[Path], list[Path]]:
    """(train, val) files: `root/train` and `root/val` when both exist, else a fixed hash-based split."""
    root = Path(root)
    if not root.is_dir():
        raise InputImageError(f"no data folder {root}")
    if (root / "train").is_dir() and (root / "val").is_dir():
        train, val = list_images(root / "train"), list_images(root / "val")
    else:
        files = list_images(root)
        in_val = [int(hashlib.sha1(p.name.encode()).hexdigest(), 16) % 10_000 < val_fraction * 10_000 for p in files]
        train = [p for p, v in zip(files, in_val) if not v]
        val = [p for p, v in zip(files, in_val) if v]
    if not train:
        raise InputImageError(f"no training images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return train, val


def load_square(path: Path, resolution: int, policy: str) -> np.ndarray:
    """One training image: [R, R] (grayscale) or [R, R, 3] uint8, cropped by `policy`, Lanczos-resized."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        img = img.convert("L") if img.mode in ("L", "I;16", "I", "1") else img.convert("RGB")
    img = square_crop(img, policy)
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.LANCZOS)
    return np.asarray(img)


def pack_images(files: list[Path], resolution: int, policy: str, cache_dir: Path | None = None, progress: bool = True) -> np.ndarray:
    """All files as one uint8 array [N, 3, R, R], cached as .npy in `cache_dir` (keyed by files and settings)."""
    key = hashlib.sha1(json.dumps([resolution, policy, [(str(p), p.stat().st_size) for p in files]]).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"pack-{resolution}-{policy}-{key}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        return np.load(cache)
    from tqdm.auto import tqdm

    out = np.empty((len(files), 3, resolution, resolution), dtype=np.uint8)
    for i, path in enumerate(tqdm(files, desc=f"packing {resolution}px crops", disable=not progress, unit="img")):
        arr = load_square(path, resolution, policy)
        out[i] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # grayscale: one channel replicated
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, out)
    return out


def bicubic_lr(hr: np.ndarray, scale: int, chunk: int = 256) -> np.ndarray:
    """MATLAB imresize(hr, 1/scale, 'bicubic') of uint8 [N, 3, R, R] -> uint8 [N, 3, R/scale, R/scale]."""
    n, c, r, _ = hr.shape
    out = np.empty((n, c, r // scale, r // scale), dtype=np.uint8)
    for i in range(0, n, chunk):
        block = hr[i : i + chunk]  # resize many images at once: stack them along the channel axis
        stacked = block.reshape(-1, r, r).transpose(1, 2, 0)
        small = imresize_uint8(np.ascontiguousarray(stacked), size=(r // scale, r // scale))
        out[i : i + chunk] = small.transpose(2, 0, 1).reshape(len(block), c, r // scale, r // scale)
    return out


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [..] -> float32 in [-1, 1] (the models' input range)."""
    return x.float() / 127.5 - 1


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in about [-1, 1] -> uint8, as images are saved: clamp((x + 1) / 2, 0, 1) * 255, rounded."""
    return ((x.detach().float() + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8)


@dataclass
class PackedImages:
    """HR crops in memory, with bicubic LRs made once per scale."""

    hr: np.ndarray  # [N, 3, R, R] uint8
    names: list[str] = field(default_factory=list)
    _lr: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.hr)

    @property
    def resolution(self) -> int:
        return self.hr.shape[-1]

    @property
    def grayscale_fraction(self) -> float:
        hr = self.hr[:, :, ::8, ::8]
        return float(np.mean((hr[:, 0] == hr[:, 1]).all(axis=(1, 2)) & (hr[:, 1] == hr[:, 2]).all(axis=(1, 2))))

    def concat(self, other: "PackedImages") -> "PackedImages":
        return PackedImages(np.concatenate([self.hr, other.hr]), self.names + other.names)

    def lr(self, scale: int) -> np.ndarray:
        if scale not in self._lr:
            self._lr[scale] = bicubic_lr(self.hr, scale)
        return self._lr[scale]

    @classmethod
    def from_files(cls, files: list[Path], resolution: int, policy: str, cache_dir=None, progress=True) -> "PackedImages":
        return cls(pack_images(files, resolution, policy, cache_dir, progress), [p.name for p in files])


def batch_indices(step: int, batch_size: int, n: int, seed: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """Indices of the global batch `step` (this rank's share): epochs are fixed permutations of (seed, epoch),
    so a batch depends only on the step number, which makes resuming exact."""
    total = batch_size * world
    positions = np.arange(step * total, (step + 1) * total)[rank::world]
    epochs = positions // n
    out = np.empty(len(positions), dtype=np.int64)
    for e in np.unique(epochs):
        perm = np.random.default_rng([seed, int(e)]).permutation(n)
        mask = epochs == e
        out[mask] = perm[positions[mask] % n]
    return out
