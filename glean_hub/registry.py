"""The catalogue of released models, as data: (category, scale) -> Hub repo, sizes, licence, bundled folder.

A new category or scale is a new entry here, nothing else. Entries with a `bundled` folder ship
inside the package (`glean_hub/weights/<folder>`) in the same layout as their Hub repo, so
`GLEAN.from_pretrained("cats", scale=8)` works offline on a fresh install; the Hub repo is their
canonical name (and where `push_to_hub` puts new versions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFoundError

WEIGHTS_DIR = Path(__file__).parent / "weights"
DATA_LICENSE_NOTE = "weights trained on non-commercial research data; see the model card"


@dataclass(frozen=True)
class BankEntry:
    repo_id: str  # Hub repo of the latent bank (StyleGAN2 generator)
    category: str
    out_size: int
    bundled: str | None = None  # folder under glean_hub/weights, or None (Hub only)
    revision: str | None = None

    @property
    def local_dir(self) -> Path | None:
        return _existing(self.bundled)


@dataclass(frozen=True)
class ModelEntry:
    category: str  # "faces", "cats", ...
    scale: int  # out_size / in_size
    in_size: int
    out_size: int
    repo_id: str  # Hub repo of the GLEAN model (encoder, fusion, decoder)
    bank_repo_id: str  # Hub repo of its shared latent bank
    bundled: str | None = None  # folder under glean_hub/weights, or None (Hub only)
    revision: str | None = None
    license: str = "other"
    description: str = ""  # what the model is for and what it was trained on

    @property
    def local_dir(self) -> Path | None:
        return _existing(self.bundled)

    @property
    def metrics(self) -> dict | None:
        """Measured validation numbers of the bundled weights (glean_hub/weights/metrics.json), or None."""
        return measured().get(self.repo_id)

    @property
    def notes(self) -> str:
        """One line for users: the description, then the measured verdict against bicubic (and the bank-less baselines)."""
        m = self.metrics
        if not m:
            return self.description
        gain = m["GLEAN"]["PSNR"] - m["bicubic"]["PSNR"]
        verdict = (f"validation PSNR {gain:+.2f} dB over bicubic" if gain > 0
                   else f"undertrained: its validation PSNR is {-gain:.2f} dB below bicubic's")
        if NO_BANK in m:
            verdict += f", {m['GLEAN']['PSNR'] - m[NO_BANK]['PSNR']:+.2f} dB over the same network without the bank"
        if PLAIN_CNN in m:
            verdict += f", {m['GLEAN']['PSNR'] - m[PLAIN_CNN]['PSNR']:+.2f} dB over a plain CNN"
        return f"{self.description}; {verdict}"

    @property
    def name(self) -> str:
        return f"{self.category} {self.scale}x ({self.in_size}->{self.out_size})"


METRICS_FILE = WEIGHTS_DIR / "metrics.json"  # written by scripts/package_bundled.py, installed with the weights
NO_BANK = "no bank (same encoder-decoder)"  # metrics key of the bank-less baseline
PLAIN_CNN = "plain CNN"  # metrics key of the yardstick without a bank (scripts/plain_cnn.py), trained on as many images


def measured() -> dict[str, dict]:
    """{repo_id: {"GLEAN": {"PSNR", "SSIM", "LR-PSNR", ...}, "bicubic": {...}, NO_BANK: {...}}} of the bundled models."""
    if not METRICS_FILE.is_file():
        return {}
    return {row["model"]: row for row in json.loads(METRICS_FILE.read_text())}


def _existing(folder: str | None) -> Path | None:
    if folder is None:
        return None
    path = WEIGHTS_DIR / folder
    return path if (path / "config.json").is_file() else None


def _bundled(category: str, scales: tuple[int, ...], out_size: int = 128, description: str = "") -> list[ModelEntry]:
    return [
        ModelEntry(
            category=category,
            scale=s,
            in_size=out_size // s,
            out_size=out_size,
            repo_id=f"glean-hub/glean-{category}-{s}x-{out_size}",
            bank_repo_id=f"glean-hub/bank-{category}-{out_size}",
            bundled=f"glean-{category}-{s}x-{out_size}",
            description=description,
        )
        for s in scales
    ]


# The bundled models are the CPU-trained stopgaps (64x64 output; see model_cards/): 128x128 models trained
# on a GPU replace them, as new entries, when they exist.
BUNDLED_SIZE = 64
CATEGORIES = ("faces", "cats", "cars", "bedrooms", "towers")
STOPGAP = "; small 64 px model trained on a CPU (stopgap, see its card)"

BANKS: tuple[BankEntry, ...] = tuple(
    BankEntry(f"glean-hub/bank-{c}-{BUNDLED_SIZE}", c, BUNDLED_SIZE, bundled=f"bank-{c}-{BUNDLED_SIZE}") for c in CATEGORIES
)

MODELS: tuple[ModelEntry, ...] = (
    *_bundled("faces", (8, 16), BUNDLED_SIZE, description="aligned frontal faces (CelebA crops)" + STOPGAP),
    *_bundled("cats", (8, 16), BUNDLED_SIZE, description="whole-body cat photos, squashed to square" + STOPGAP),
    *_bundled("cars", (8, 16), BUNDLED_SIZE, description="car photos, centre-cropped to square" + STOPGAP),
    *_bundled("bedrooms", (8, 16), BUNDLED_SIZE, description="bedroom interiors; small training set" + STOPGAP),
    *_bundled("towers", (8, 16), BUNDLED_SIZE, description="church facades; bank trained on GRAYSCALE images (colour "
              "inputs: the luma is super-resolved, the colour is bicubic)" + STOPGAP),
)


def available() -> list[ModelEntry]:
    """Models whose weights exist: bundled in this install, or Hub-only entries."""
    return [m for m in MODELS if m.bundled is None or m.local_dir is not None]


def categories() -> list[str]:
    return sorted({m.category for m in available()}, key=[m.category for m in MODELS].index)


def scales(category: str) -> list[int]:
    return sorted(m.scale for m in available() if m.category == category)


def lookup(category: str, scale: int | None, resolution: int | None = None) -> "ModelEntry | ReleasedEntry":
    """The entry for (category, scale); errors list the valid choices. With `resolution` (output side in
    pixels), the model of that size, bundled or released (e.g. `"cats", 8, 256` -> openmmlab/glean-cats-8x)."""
    if resolution is not None:
        return _lookup_resolution(category, scale, resolution)
    valid = categories()
    if category not in valid:
        raise ModelNotFoundError(
            f"unknown category {category!r}; available: {', '.join(valid) or 'none (no weights installed)'}. "
            "Pass a Hub repo id or a local folder to load other models."
        )
    options = scales(category)
    if scale is None:
        raise ModelNotFoundError(f"category {category!r} needs a scale: pass scale= one of {options}")
    for m in available():
        if m.category == category and m.scale == scale:
            return m
    raise ModelNotFoundError(f"no {category!r} model for scale {scale}; available scales: {options}")


def bank_entry(repo_id: str) -> BankEntry | None:
    return next((b for b in BANKS if b.repo_id == repo_id), None)


def model_entry(repo_id: str) -> ModelEntry | None:
    return next((m for m in MODELS if m.repo_id == repo_id), None)


# ---------------------------------------------------------------------------------------------
# Released OpenMMLab checkpoints (downloaded, checked, converted and cached by released.py)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleasedEntry:
    """A published `.pth` on download.openmmlab.com, offered under a Hub-style name.

    `path` is the URL path after the host (the host is GLEAN_HUB_OPENMMLAB_ENDPOINT, default
    https://download.openmmlab.com); `sha256` is the published prefix (the `-xxxxxxxx` suffix of the file
    name). `download_mb` is an estimate (float32 generator(s) + discriminator tensor counts): the host's
    Content-Length is authoritative.
    """

    name: str  # "openmmlab/glean-cats-8x": what from_pretrained accepts
    kind: str  # "glean" (GLEAN.from_pretrained) or "bank" (StyleGAN2Generator.from_pretrained, train --bank)
    path: str  # URL path after the host, as published
    sha256: str  # first 8 hex digits of the file's sha256
    category: str
    out_size: int  # output side in pixels (banks: the generator's square output)
    in_size: int | None = None  # GLEAN input side; None for banks
    degradation: str = "bicubic"
    psnr: float | None = None  # published PSNR (RGB, dB) of the GLEAN model
    download_mb: int = 0  # approximate size of the .pth
    unsupported: str | None = None  # why glean-hub refuses to load it (one sentence), or None
    notes: str = ""

    @property
    def scale(self) -> int | None:
        return self.out_size // self.in_size if self.in_size else None

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    # the same properties as ModelEntry, so lookup() can return either
    @property
    def repo_id(self) -> str:
        return self.name

    revision = None

    @property
    def local_dir(self) -> Path | None:
        """The converted folder in the cache, when it exists (no network)."""
        from .released import cached_folder

        return cached_folder(self)


_MMEDIT = "/mmediting/restorers/glean/"
_MMGEN = "/mmediting/stylegan2/"
PUBLISHED_DATA = "see the MMEditing/MMagic model zoo; trained on FFHQ/CelebA-HQ or LSUN, whose terms apply"

RELEASED: tuple[ReleasedEntry, ...] = (
    ReleasedEntry("openmmlab/glean-cats-8x", "glean", _MMEDIT + "glean_cat_8x_20210614-d3ac8683.pth", "d3ac8683",
                  "cats", 256, 32, psnr=23.98, download_mb=765, notes="LSUN cats, MATLAB-bicubic 32 -> 256"),
    ReleasedEntry("openmmlab/glean-cats-16x", "glean", _MMEDIT + "glean_cat_16x_20210527-68912543.pth", "68912543",
                  "cats", 256, 16, psnr=20.88, download_mb=803, notes="LSUN cats, MATLAB-bicubic 16 -> 256"),
    ReleasedEntry("openmmlab/glean-faces-16x", "glean", _MMEDIT + "glean_ffhq_16x_20210527-61a3afad.pth", "61a3afad",
                  "faces", 1024, 64, psnr=26.91, download_mb=818, notes="FFHQ aligned faces, MATLAB-bicubic 64 -> 1024"),
    ReleasedEntry("openmmlab/glean-faces-8x-realworld", "glean",
                  _MMEDIT + "glean_in128out1024_4x2_300k_ffhq_celebahq_20210812-acbcb04f.pth", "acbcb04f",
                  "faces", 1024, 128, degradation="realworld", psnr=27.94, download_mb=813,
                  notes="FFHQ + CelebA-HQ faces with blur, noise and JPEG, 128 -> 1024"),
    ReleasedEntry("openmmlab/stylegan2-ffhq-1024", "bank",
                  _MMGEN + "official_weights/stylegan2-ffhq-config-f-official_20210327_171224-bce9310c.pth", "bce9310c",
                  "faces", 1024, download_mb=381, notes="NVlabs StyleGAN2 config-f, FFHQ"),
    ReleasedEntry("openmmlab/stylegan2-ffhq-256", "bank", _MMGEN + "stylegan2_c2_ffhq_256_b4x8_20210407_160709-7890ae1f.pth",
                  "7890ae1f", "faces", 256, download_mb=357, notes="MMGeneration StyleGAN2, FFHQ at 256"),
    ReleasedEntry("openmmlab/stylegan2-cat-256", "bank",
                  _MMGEN + "official_weights/stylegan2-cat-config-f-official_20210327_172444-15bc485b.pth", "15bc485b",
                  "cats", 256, download_mb=357, notes="NVlabs StyleGAN2 config-f, LSUN cat"),
    ReleasedEntry("openmmlab/stylegan2-church-256", "bank",
                  _MMGEN + "official_weights/stylegan2-church-config-f-official_20210327_172657-1d42b7d1.pth", "1d42b7d1",
                  "towers", 256, download_mb=357, notes="NVlabs StyleGAN2 config-f, LSUN church outdoor"),
    ReleasedEntry("openmmlab/stylegan2-horse-256", "bank",
                  _MMGEN + "official_weights/stylegan2-horse-config-f-official_20210327_173203-ef3e69ca.pth", "ef3e69ca",
                  "horses", 256, download_mb=357, notes="NVlabs StyleGAN2 config-f, LSUN horse"),
    ReleasedEntry("openmmlab/stylegan2-car-512", "bank",
                  _MMGEN + "official_weights/stylegan2-car-config-f-official_20210327_172340-8cfe053c.pth", "8cfe053c",
                  "cars", 512, download_mb=364, notes="NVlabs StyleGAN2 config-f, LSUN car (512x384 content)",
                  unsupported="its images are 512 wide and 384 high (not square), and GLEAN's pipeline, crop policies "
                              "and training data are square-only"),
)


def released_entry(name: str) -> ReleasedEntry | None:
    return next((r for r in RELEASED if r.name == name), None)


def released_models() -> list[ReleasedEntry]:
    return [r for r in RELEASED if r.kind == "glean"]


def _lookup_resolution(category: str, scale: int | None, resolution: int) -> "ModelEntry | ReleasedEntry":
    candidates = [m for m in [*available(), *released_models()] if m.category == category]
    if not candidates:
        raise ModelNotFoundError(f"unknown category {category!r}; available: {', '.join(categories())}")
    sizes = sorted({(m.out_size, m.scale) for m in candidates})
    for m in candidates:
        if m.out_size == resolution and (scale is None or m.scale == scale):
            if scale is None and len([c for c in candidates if c.out_size == resolution]) > 1:
                break
            return m
    shown = ", ".join(f"resolution={r} scale={s}" for r, s in sizes)
    raise ModelNotFoundError(f"no {category!r} model for scale={scale} resolution={resolution}; available: {shown}")
