"""The catalogue of released models, as data: (category, scale) -> Hub repo, sizes, licence, bundled folder.

A new category or scale is a new entry here, nothing else. Entries with a `bundled` folder ship
inside the package (`glean_hub/weights/<folder>`) in the same layout as their Hub repo, so
`GLEAN.from_pretrained("cats", scale=8)` works offline on a fresh install; the Hub repo is their
canonical name (and where `push_to_hub` puts new versions).
"""

from __future__ import annotations

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
    notes: str = ""  # one line for users: what the model is good and bad at

    @property
    def local_dir(self) -> Path | None:
        return _existing(self.bundled)

    @property
    def name(self) -> str:
        return f"{self.category} {self.scale}x ({self.in_size}->{self.out_size})"


def _existing(folder: str | None) -> Path | None:
    if folder is None:
        return None
    path = WEIGHTS_DIR / folder
    return path if (path / "config.json").is_file() else None


def _bundled(category: str, scales: tuple[int, ...], out_size: int = 128, notes: str = "") -> list[ModelEntry]:
    return [
        ModelEntry(
            category=category,
            scale=s,
            in_size=out_size // s,
            out_size=out_size,
            repo_id=f"glean-hub/glean-{category}-{s}x-{out_size}",
            bank_repo_id=f"glean-hub/bank-{category}-{out_size}",
            bundled=f"glean-{category}-{s}x-{out_size}",
            notes=notes,
        )
        for s in scales
    ]


# The bundled models are the CPU-trained stopgaps (64x64 output; see model_cards/): 128x128 models trained
# on a GPU replace them, as new entries, when they exist.
BUNDLED_SIZE = 64
CATEGORIES = ("faces", "cats", "cars", "bedrooms", "towers")
STOPGAP = "; small 64 px model trained on a CPU (stopgap, see its card)"
BELOW_BICUBIC = "; undertrained: its validation PSNR is below bicubic's"  # measured: model_cards/metrics.json

BANKS: tuple[BankEntry, ...] = tuple(
    BankEntry(f"glean-hub/bank-{c}-{BUNDLED_SIZE}", c, BUNDLED_SIZE, bundled=f"bank-{c}-{BUNDLED_SIZE}") for c in CATEGORIES
)

MODELS: tuple[ModelEntry, ...] = (
    *_bundled("faces", (8, 16), BUNDLED_SIZE, notes="aligned frontal faces (CelebA crops)" + STOPGAP),
    *_bundled("cats", (8, 16), BUNDLED_SIZE, notes="whole-body cat photos, squashed to square" + STOPGAP + BELOW_BICUBIC),
    *_bundled("cars", (8, 16), BUNDLED_SIZE, notes="car photos, centre-cropped to square" + STOPGAP + BELOW_BICUBIC),
    *_bundled("bedrooms", (8, 16), BUNDLED_SIZE, notes="bedroom interiors; small training set" + STOPGAP + BELOW_BICUBIC),
    *_bundled("towers", (8, 16), BUNDLED_SIZE, notes="church facades; trained on GRAYSCALE images" + STOPGAP + BELOW_BICUBIC),
)


def available() -> list[ModelEntry]:
    """Models whose weights exist: bundled in this install, or Hub-only entries."""
    return [m for m in MODELS if m.bundled is None or m.local_dir is not None]


def categories() -> list[str]:
    return sorted({m.category for m in available()}, key=[m.category for m in MODELS].index)


def scales(category: str) -> list[int]:
    return sorted(m.scale for m in available() if m.category == category)


def lookup(category: str, scale: int | None) -> ModelEntry:
    """The entry for (category, scale); errors list the valid choices."""
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
