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

# Limits on what a config may ask for, checked before anything is built (a config.json is untrusted input).
# The released models have 162-176 M parameters and 1024 px output; these leave room for much larger ones.
MAX_PARAMETERS = 1_000_000_000  # parameters + buffers of the whole model (4 GB in float32)
MAX_OUT_SIZE = 8192  # output side in pixels
MAX_WIDTH = 8192  # any channel count
MAX_NUM_RRDBS = 1000
MAX_NUM_MLPS = 64
MAX_CONFIG_BYTES = 1 << 20  # config.json files are a few hundred bytes


def _is_pow2(n: int) -> bool:
    return _is_int(n) and n > 0 and (n & (n - 1)) == 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """A finite int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    _check(_is_int(value) and low <= value <= high, f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    _check(isinstance(value, bool), f"{name} must be true or false, got {value!r}")


def _check_optional_str(name: str, value: Any, max_len: int = 1000) -> None:
    _check(value is None or (isinstance(value, str) and 0 < len(value) <= max_len),
           f"{name} must be null or a non-empty string of at most {max_len} characters, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _no_constants(name: str) -> Any:
    raise ConfigError(f"{name} is not a JSON number (config.json must hold finite numbers)")


class _JsonConfig:
    """Strict JSON round trip shared by both configs."""

    kind: ClassVar[str]
    # architecture options added after the first release, all off by default: a config written before them
    # loads with them off (the model it describes had none of them); every other key must be present
    added_later: ClassVar[frozenset[str]] = frozenset()

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
        _check(isinstance(data, dict), f"{source}: expected a JSON object {{...}} with the {cls.kind!r} config keys, "
                                       f"got {type(data).__name__} {_short(data)}")
        data = dict(data)
        kind = data.pop("kind", None)
        _check(
            kind == cls.kind,
            f"{source}: expected a {cls.kind!r} config, got kind={kind!r}. "
            f"A GLEAN model and its latent bank live in separate folders; check which one you passed.",
        )
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        missing = [n for n in names if n not in data and n not in cls.added_later]
        unknown = [k for k in data if k not in names]
        _check(
            not missing and not unknown,
            f"{source}: config keys do not match {cls.__name__}: missing {missing}, unknown {unknown}. "
            "The file was written by another version of glean-hub or edited by hand.",
        )
        config = cls._build(data)
        config.check_size(source)
        return config

    @classmethod
    def _build(cls, data: dict[str, Any]):
        return cls(**data)

    def num_parameters(self) -> int:  # pragma: no cover - defined by each config
        raise NotImplementedError

    def check_size(self, source: str = "config") -> None:
        """Refuse a config whose model would exceed MAX_PARAMETERS (parameters + buffers), before building it."""
        n = self.num_parameters()
        _check(n <= MAX_PARAMETERS, f"{source}: this config describes a model of {n:,} parameters; glean-hub refuses "
                                    f"more than {MAX_PARAMETERS:,} (the released models have about 175 M)")

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
            with open(path, "rb") as f:
                raw = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
        _check(len(raw) <= MAX_CONFIG_BYTES, f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a glean-hub config.json")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); not a glean-hub config.json") from None
        try:
            data = json.loads(text, parse_constant=_no_constants)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        except RecursionError:
            raise ConfigError(f"{path}: JSON nested too deeply; not a glean-hub config.json") from None
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
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
        _check(isinstance(self.blur_kernel, (list, tuple)) and 2 <= len(self.blur_kernel) <= 16
               and all(_is_int(k) and abs(k) <= 1000 for k in self.blur_kernel) and sum(self.blur_kernel) != 0,
               f"blur_kernel must be 2 to 16 integer taps with a nonzero sum, e.g. [1, 3, 3, 1], got {_short(self.blur_kernel)}")
        object.__setattr__(self, "blur_kernel", tuple(self.blur_kernel))
        _check(_is_pow2(self.out_size) and 8 <= self.out_size <= MAX_OUT_SIZE,
               f"out_size must be a power of two in [8, {MAX_OUT_SIZE}], got {_short(self.out_size)}")
        _check_int("img_channels", self.img_channels, 1, 16)
        _check_int("style_channels", self.style_channels, 1, MAX_WIDTH)
        _check_int("num_mlps", self.num_mlps, 1, MAX_NUM_MLPS)
        _check_int("channel_max", self.channel_max, 1, MAX_WIDTH)
        _check(
            _is_real(self.channel_multiplier) and 0 < self.channel_multiplier <= 1024 and self.channels(self.out_size) >= 1,
            f"channel_multiplier must be a number in (0, 1024] that leaves >= 1 channel at {self.out_size}px, "
            f"got {_short(self.channel_multiplier)}",
        )
        _check(_is_real(self.lr_mlp) and 0 < self.lr_mlp <= 1000, f"lr_mlp must be a number in (0, 1000], got {_short(self.lr_mlp)}")
        _check_optional_str("category", self.category, 100)
        _check_bool("grayscale", self.grayscale)

    def num_parameters(self) -> int:
        """Parameters + buffers of the generator this config builds (counted on the meta device: no memory)."""
        import torch

        from .stylegan2 import StyleGAN2Generator

        with torch.device("meta"):
            bank = StyleGAN2Generator(self)
        return sum(t.numel() for t in bank.parameters()) + sum(t.numel() for t in bank.buffers())

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
    added_later: ClassVar[frozenset[str]] = frozenset({"decoder_width", "bicubic_skip", "dense_rank", "decoder_activation"})

    in_size: int  # side of the low-resolution input, a power of two >= 4
    bank: BankConfig  # the latent bank; bank.out_size is the output side
    rrdb_channels: int = 64  # width of the RRDB trunk
    num_rrdbs: int = 23  # RRDB blocks in the trunk
    rrdb_growth: int = 32  # growth channels of each dense block
    decoder_channels: int = 64  # width of the decoder's last hidden conv (official: 64)
    decoder_width: int | None = None  # width of the pixel-shuffle stages above in_size; None: the bank's widths (official)
    bicubic_skip: bool = False  # add the MATLAB-bicubic upscale of the input to the output (official: False)
    dense_rank: int | None = None  # a fully connected residual over the whole in_size feature map, through this
    #   many units (global and position-aware, as a plain CNN's dense layer); None: off (official)
    decoder_activation: bool = False  # LeakyReLU(0.2) after each pixel-shuffle stage (official: none, the decoder
    #   is linear but for its last conv and the bank's features)
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
        _check(isinstance(self.input_range, (list, tuple)) and len(self.input_range) == 2 and all(map(_is_real, self.input_range)),
               f"input_range must be [-1.0, 1.0], got {_short(self.input_range)}")
        object.__setattr__(self, "input_range", tuple(float(v) for v in self.input_range))
        _check(isinstance(self.bank, BankConfig), f"bank must be a BankConfig, got {type(self.bank).__name__}")
        _check(_is_pow2(self.in_size) and self.in_size >= 4, f"in_size must be a power of two >= 4, got {_short(self.in_size)}")
        _check(
            self.in_size < self.out_size,
            f"in_size must be smaller than out_size, got in_size={self.in_size}, out_size={self.out_size}",
        )
        for name in ("rrdb_channels", "rrdb_growth", "decoder_channels"):
            _check_int(name, getattr(self, name), 1, MAX_WIDTH)
        _check(self.decoder_width is None or (isinstance(self.decoder_width, int) and not isinstance(self.decoder_width, bool)
                                              and self.decoder_width >= 1),
               f"decoder_width must be null or a positive integer, got {self.decoder_width!r}")
        _check(isinstance(self.bicubic_skip, bool), f"bicubic_skip must be true or false, got {self.bicubic_skip!r}")
        _check_bool("decoder_activation", self.decoder_activation)
        if self.dense_rank is not None:
            _check_int("dense_rank", self.dense_rank, 1, MAX_WIDTH)
        _check_int("num_rrdbs", self.num_rrdbs, 0, MAX_NUM_RRDBS)
        _check(self.decoder_width is None or self.decoder_width <= MAX_WIDTH,
               f"decoder_width must be at most {MAX_WIDTH}, got {self.decoder_width!r}")
        _check_bool("use_bank", self.use_bank)
        _check_optional_str("category", self.category, 100)
        for name in ("degradation", "crop_policy", "channel_order"):
            _check(isinstance(getattr(self, name), str), f"{name} must be a string, got {_short(getattr(self, name))}")
        _check(self.degradation in DEGRADATIONS, f"degradation must be one of {DEGRADATIONS}, got {self.degradation!r}")
        _check(self.crop_policy in CROP_POLICIES, f"crop_policy must be one of {CROP_POLICIES}, got {self.crop_policy!r}")
        _check(self.channel_order == "RGB", f"channel_order must be 'RGB', got {self.channel_order!r}")
        _check(self.input_range == (-1.0, 1.0), f"input_range must be (-1.0, 1.0), got {self.input_range}")
        _check_optional_str("bank_id", self.bank_id)
        _check_optional_str("bank_revision", self.bank_revision)
        _check(
            self.bank_sha256 is None or (isinstance(self.bank_sha256, str) and len(self.bank_sha256) == 64
                                         and all(c in "0123456789abcdef" for c in self.bank_sha256)),
            f"bank_sha256 must be 64 lowercase hex digits, got {_short(self.bank_sha256)}",
        )

    def num_parameters(self) -> int:
        """Parameters + buffers of the model this config builds, bank included; computed without building
        the RRDB trunk (linear in num_rrdbs) and without memory (meta device)."""
        import torch

        from .glean import GLEAN

        with torch.device("meta"):
            model = GLEAN(self.replace(num_rrdbs=0))
        c, g = self.rrdb_channels, self.rrdb_growth
        per_rdb = sum((c + i * g) * (c if i == 4 else g) * 9 + (c if i == 4 else g) for i in range(5))
        return (sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())
                + self.num_rrdbs * 3 * per_rdb)

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
        _check(isinstance(data, dict), f"{source}: expected a JSON object {{...}} with the {cls.kind!r} config keys, "
                                       f"got {type(data).__name__} {_short(data)}")
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
