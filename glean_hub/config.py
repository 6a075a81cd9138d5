"""Configs of the latent bank and of GLEAN: frozen dataclasses, checked on creation, JSON in/out.

Every constructor argument of `StyleGAN2Generator` and `GLEAN` lives here, plus the metadata a
user needs to feed the model correctly (category, degradation, value range, channel order) and
the identity of the latent bank (id + sha256). Reading JSON is strict: a missing or unknown key
is an error, never a silent default.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

DEGRADATIONS = ("bicubic", "realworld")
CROP_POLICIES = ("center", "face", "pad")

# Width of a StyleGAN2 layer at side `res`: min(channel_max, CHANNEL_BASE * multiplier / res).
# With channel_max 512 and multiplier 2 this is the official table
# {4..32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}.
CHANNEL_BASE = 2**14


def _is_pow2(n: int) -> bool:
    return isinstance(n, int) and n > 0 and (n & (n - 1)) == 0


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


class _JsonConfig:
    """Strict JSON round trip shared by both configs."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config"):
        data = dict(data)
        kind = data.pop("kind", None)
        _check(
            kind == cls.kind,
            f"{source}: expected a {cls.kind!r} config, got kind={kind!r}. "
            f"A GLEAN model and its latent bank live in separate folders; check which one you passed.",
        )
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        missing = [n for n in names if n not in data]
        unknown = [k for k in data if k not in names]
        _check(
            not missing and not unknown,
            f"{source}: config keys do not match {cls.__name__}: missing {missing}, unknown {unknown}. "
            "The file was written by another version of glean-hub or edited by hand.",
        )
        return cls._build(data)

    @classmethod
    def _build(cls, data: dict[str, Any]):
        return cls(**data)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_NAME
        path.write_text(self.to_json_string())
        return path

    @classmethod
    def load(cls, path: str | Path):
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(data, source=str(path))


@dataclass(frozen=True)
class BankConfig(_JsonConfig):
    """The StyleGAN2 generator (config-f semantics) used as GLEAN's frozen latent bank."""

    kind: ClassVar[str] = "stylegan2-bank"

    out_size: int  # side of the generated image in pixels, a power of two >= 8
    img_channels: int = 3  # channels of the generated image
    style_channels: int = 512  # width of the latent codes w (and of the mapping MLP)
    num_mlps: int = 8  # linear layers in the mapping MLP z -> w
    channel_multiplier: float = 2  # StyleGAN2 width multiplier (config-f: 2; fractions make small banks)
    channel_max: int = 512  # cap on every layer's width (official: 512)
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)  # separable FIR kernel of up/down-sampling
    lr_mlp: float = 0.01  # learning-rate multiplier of the mapping MLP
    # metadata (not used by the network)
    category: str | None = None  # what the bank generates: "faces", "cats", ...
    grayscale: bool = False  # trained on grayscale images replicated to 3 channels

    def __post_init__(self) -> None:
        object.__setattr__(self, "blur_kernel", tuple(int(k) for k in self.blur_kernel))
        _check(_is_pow2(self.out_size) and self.out_size >= 8, f"out_size must be a power of two >= 8, got {self.out_size}")
        for name in ("img_channels", "style_channels", "num_mlps", "channel_max"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        _check(
            isinstance(self.channel_multiplier, (int, float)) and self.channels(self.out_size) >= 1,
            f"channel_multiplier must be > 0 and leave >= 1 channel at {self.out_size}px, got {self.channel_multiplier!r}",
        )
        _check(len(self.blur_kernel) >= 2, f"blur_kernel needs at least 2 taps, got {self.blur_kernel}")
        _check(self.lr_mlp > 0, f"lr_mlp must be > 0, got {self.lr_mlp}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.out_size))

    @property
    def num_styles(self) -> int:
        """Number of per-layer latent codes: 2 * log2(out_size) - 2."""
        return 2 * self.log_size - 2

    @property
    def num_injected_noises(self) -> int:
        return self.num_styles - 1

    def channels(self, res: int) -> int:
        """Width of the layers at side `res` (4 <= res <= out_size)."""
        return min(self.channel_max, int(CHANNEL_BASE * self.channel_multiplier) // res)


@dataclass(frozen=True)
class GLEANConfig(_JsonConfig):
    """GLEAN: RRDB encoder -> frozen StyleGAN2 bank with fused features -> pixel-shuffle decoder."""

    kind: ClassVar[str] = "glean"

    in_size: int  # side of the low-resolution input, a power of two >= 4
    bank: BankConfig  # the latent bank; bank.out_size is the output side
    rrdb_channels: int = 64  # width of the RRDB trunk
    num_rrdbs: int = 23  # RRDB blocks in the trunk
    rrdb_growth: int = 32  # growth channels of each dense block
    decoder_channels: int = 64  # width of the decoder's last hidden conv (official: 64)
    decoder_width: int | None = None  # width of the pixel-shuffle stages above in_size; None: the bank's widths (official)
    bicubic_skip: bool = False  # add the MATLAB-bicubic upscale of the input to the output (official: False)
    use_bank: bool = True  # False: ablation without the bank (decoder gets zeros), the "bank-less baseline"
    # metadata: how to feed the model (the pipeline reads these, never hard-coded numbers)
    category: str | None = None  # "faces", "cats", "cars", "bedrooms", "towers", or None
    degradation: str = "bicubic"  # how the LR was made in training: "bicubic" or "realworld"
    crop_policy: str = "center"  # how training images were made square: "center", "face", "pad"
    input_range: tuple[float, float] = (-1.0, 1.0)  # value range of input and output tensors
    channel_order: str = "RGB"
    bank_id: str | None = None  # Hub repo id or folder of the shared bank; None = weights embedded
    bank_revision: str | None = None  # Hub revision of the bank (None = default branch)
    bank_sha256: str | None = None  # sha256 of the bank's model.safetensors, checked on load

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_range", tuple(float(v) for v in self.input_range))
        _check(isinstance(self.bank, BankConfig), f"bank must be a BankConfig, got {type(self.bank).__name__}")
        _check(_is_pow2(self.in_size) and self.in_size >= 4, f"in_size must be a power of two >= 4, got {self.in_size}")
        _check(
            self.in_size < self.out_size,
            f"in_size must be smaller than out_size, got in_size={self.in_size}, out_size={self.out_size}",
        )
        for name in ("rrdb_channels", "rrdb_growth", "decoder_channels"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        _check(self.decoder_width is None or (isinstance(self.decoder_width, int) and not isinstance(self.decoder_width, bool)
                                              and self.decoder_width >= 1),
               f"decoder_width must be null or a positive integer, got {self.decoder_width!r}")
        _check(isinstance(self.bicubic_skip, bool), f"bicubic_skip must be true or false, got {self.bicubic_skip!r}")
        _check(isinstance(self.num_rrdbs, int) and self.num_rrdbs >= 0, f"num_rrdbs must be >= 0, got {self.num_rrdbs!r}")
        _check(self.degradation in DEGRADATIONS, f"degradation must be one of {DEGRADATIONS}, got {self.degradation!r}")
        _check(self.crop_policy in CROP_POLICIES, f"crop_policy must be one of {CROP_POLICIES}, got {self.crop_policy!r}")
        _check(self.channel_order == "RGB", f"channel_order must be 'RGB', got {self.channel_order!r}")
        _check(self.input_range == (-1.0, 1.0), f"input_range must be (-1.0, 1.0), got {self.input_range}")
        _check(
            self.bank_sha256 is None or (len(self.bank_sha256) == 64 and all(c in "0123456789abcdef" for c in self.bank_sha256)),
            f"bank_sha256 must be 64 lowercase hex digits, got {self.bank_sha256!r}",
        )

    @classmethod
    def _build(cls, data: dict[str, Any]) -> "GLEANConfig":
        data["bank"] = BankConfig.from_dict(data["bank"], source="config.bank")
        return cls(**data)

    @property
    def out_size(self) -> int:
        return self.bank.out_size

    @property
    def scale(self) -> int:
        return self.out_size // self.in_size

    @property
    def num_styles(self) -> int:
        return self.bank.num_styles

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["scale"] = self.scale  # derived; written for readers of config.json, checked on load
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "GLEANConfig":
        data = dict(data)
        scale = data.pop("scale", None)
        config = super().from_dict(data, source)
        _check(
            scale is None or scale == config.scale,
            f"{source}: scale={scale} disagrees with in_size={config.in_size} -> out_size={config.out_size} "
            f"(scale {config.scale})",
        )
        return config

    def replace(self, **changes: Any) -> "GLEANConfig":
        return dataclasses.replace(self, **changes)


def official_config(in_size: int, out_size: int, **metadata: Any) -> GLEANConfig:
    """The architecture of the released GLEAN checkpoints (23x64 RRDB, 512-wide config-f bank)."""
    bank = BankConfig(out_size=out_size, category=metadata.get("category"))
    return GLEANConfig(in_size=in_size, bank=bank, **metadata)


# The four released configs, by the names of their key manifests.
OFFICIAL_CONFIGS: dict[str, GLEANConfig] = {
    "glean_cat_8x": official_config(32, 256, category="cats"),
    "glean_cat_16x": official_config(16, 256, category="cats"),
    "glean_ffhq_16x": official_config(64, 1024, category="faces"),
    "glean_in128out1024_4x2_300k_ffhq_celebahq": official_config(
        128, 1024, category="faces", degradation="realworld"
    ),
}
