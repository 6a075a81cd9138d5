"""Official checkpoints (.pth) -> glean-hub folders (config.json + model.safetensors + README.md).

GLEAN: MMEditing checkpoints hold `{'meta': ..., 'state_dict': ...}`, where the state dict belongs
to the training wrapper: the network under `generator.` (its bank under `generator.generator.`),
plus `discriminator.*` and possibly loss-network tensors. We keep `generator.*`, strip that prefix
once, read the architecture off the tensor shapes, and require the key set and every shape to
match the architecture exactly. The discriminator is dropped (or written to
`discriminator.safetensors` with `keep_discriminator=True`); other wrapper tensors are dropped and
reported; any other top-level key is an error.

StyleGAN2 banks: MMGeneration checkpoints hold `generator_ema.*` (taken), `generator.*` (the
non-averaged weights, ignored) and `discriminator.*` (kept next to the bank for GAN training).

Files are read with `torch.load(weights_only=True)`: only tensors and plain containers are
unpickled, never code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import BankConfig, GLEANConfig
from .errors import CheckpointError, OutputPathError, os_error_message
from .glean import GLEAN
from .hub import check_state_dict, write_bank_folder, write_glean_folder, write_safetensors
from .ops import make_kernel
from .stylegan2 import StyleGAN2Generator

WRAPPER_PREFIXES = ("discriminator.", "perceptual_loss.", "pixel_loss.", "gan_loss.", "vgg.")


@dataclass
class ConversionReport:
    output_dir: Path
    config: GLEANConfig | BankConfig
    tensors: int  # tensors written to model.safetensors
    parameters: int  # numbers in them
    dropped: dict[str, int] = field(default_factory=dict)  # top-level prefix -> tensors not converted
    bank_dir: Path | None = None
    bank_sha256: str | None = None

    def summary(self) -> str:
        c = self.config
        kind = f"GLEAN {c.in_size}->{c.out_size} ({c.scale}x)" if isinstance(c, GLEANConfig) else f"StyleGAN2 bank {c.out_size}px"
        lines = [f"{kind}: {self.tensors} tensors, {self.parameters:,} numbers -> {self.output_dir}"]
        lines += [f"  dropped {n} tensors under {p!r}" for p, n in self.dropped.items()]
        if self.bank_dir:
            lines.append(f"  bank -> {self.bank_dir} (sha256 {self.bank_sha256})")
        return "\n".join(lines)


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a .pth file (under 'state_dict' when present), loaded without running code."""
    path = Path(path)
    try:
        found = path.is_file()
    except OSError as e:
        raise CheckpointError(f"no checkpoint file {os_error_message(e, str(path))}") from None
    if not found:
        raise CheckpointError(f"no checkpoint file {path}")
    from . import formats

    try:
        nvlabs = formats.is_nvlabs_pickle(path)
    except OSError as e:
        raise CheckpointError(f"cannot read the checkpoint {os_error_message(e, str(path))}") from None
    if nvlabs:  # NVlabs stylegan2-ada-pytorch: G_ema through a restricted unpickler, renamed to MMGeneration's keys
        return formats.nvlabs_to_mmgen(path)
    try:
        with torch.serialization.safe_globals(formats.SAFE_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        obj = None  # mmap needs the zip format; retry without for legacy files
    except Exception as e:
        raise CheckpointError(_unpickle_message(path, e)) from None
    if obj is None:
        try:
            with torch.serialization.safe_globals(formats.SAFE_GLOBALS):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(_unpickle_message(path, e)) from None
    if formats.is_rosinality(obj):  # rosinality/stylegan2-pytorch: the g_ema generator, renamed to MMGeneration's keys
        obj = formats.rosinality_to_mmgen(obj)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors (expected {{'meta': ..., 'state_dict': {{name: tensor}}}})")
    return state


def _unpickle_message(path: Path, error: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(error))  # torch's message carries ANSI escapes
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # torch's advice (weights_only=False, add_safe_globals, file an issue) does not apply here: keep what it refused
    advice = ("Weights only load failed", "Please file an issue", "Check the documentation", "In PyTorch", "WeightsUnpickler error:")
    refused = [line for line in lines if not line.startswith(advice)]
    first = (refused or ["the file is not a plain container of tensors"])[0]
    first = "".join(ch if ch.isprintable() else "?" for ch in first)[:200].rstrip(".")
    return (
        f"cannot read {path} safely: {first}. glean-hub only loads tensors and plain containers "
        "(torch.load(weights_only=True)); a file that needs more is not an official checkpoint or is corrupt."
    )


def split_prefix(state: dict[str, torch.Tensor], keep: str, droppable: tuple[str, ...]) -> tuple[dict, dict, dict[str, int]]:
    """(tensors under `keep` with the prefix stripped, discriminator tensors, counts of dropped prefixes)."""
    kept, disc, dropped = {}, {}, {}
    unknown = []
    for k, v in state.items():
        if k.startswith(keep):
            kept[k[len(keep):]] = v
        elif k.startswith("discriminator."):
            disc[k[len("discriminator."):]] = v
        elif k.startswith(droppable):
            prefix = k.split(".", 1)[0] + "."
            dropped[prefix] = dropped.get(prefix, 0) + 1
        else:
            unknown.append(k)
    if unknown:
        raise CheckpointError(
            f"unexpected top-level keys (neither {keep!r} nor a known training-wrapper part): {', '.join(unknown[:10])}"
            + (f", ... ({len(unknown) - 10} more)" if len(unknown) > 10 else "")
        )
    if not kept:
        raise CheckpointError(f"no tensors under {keep!r}: not an official checkpoint of this kind")
    if disc:
        dropped["discriminator."] = len(disc)
    return kept, disc, dropped


def _count(state: dict, pattern: str, start: int = 0) -> int:
    """How many consecutive i >= start make `pattern.format(i)` a key."""
    i = start
    while pattern.format(i) in state:
        i += 1
    return i - start


def _shape(state: dict, key: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"missing tensor {key!r}: not a StyleGAN2/GLEAN checkpoint of the official layout")
    return tuple(state[key].shape)


def infer_bank_config(state: dict[str, torch.Tensor], **metadata) -> BankConfig:
    """Read a StyleGAN2 bank's architecture off its tensor shapes (keys without prefix)."""
    style_channels = _shape(state, "conv1.conv.style_modulation.linear.weight_orig")[1]
    num_rgbs = _count(state, "to_rgbs.{}.bias")
    out_size = 2 ** (num_rgbs + 2)
    channel_max = _shape(state, "constant_input.input")[1]
    widths = {2 ** (t + 3): _shape(state, f"convs.{2 * t}.activate.bias")[0] for t in range(num_rgbs)}
    widths[4] = channel_max
    for m in [*range(1, 65), 0.5, 0.25, 0.125, 0.0625]:
        config = BankConfig(
            out_size=out_size, img_channels=_shape(state, "to_rgb1.bias")[1], style_channels=style_channels,
            num_mlps=_count(state, "style_mapping.{}.bias", start=1),  # slot 0 is the parameter-free PixelNorm
            channel_multiplier=m, channel_max=channel_max, **metadata,
        )
        if all(config.channels(r) == w for r, w in widths.items()):
            break
    else:
        raise CheckpointError(f"layer widths {widths} fit no StyleGAN2 channel table (cap {channel_max}, multiplier 1/16..64)")
    expected_kernel = make_kernel(config.blur_kernel, gain=4)
    for k, v in state.items():
        if k.endswith(".kernel") and not v.is_meta and not torch.allclose(v.float(), expected_kernel):
            raise CheckpointError(f"{k} is not the [1, 3, 3, 1] blur kernel; other FIR kernels are not supported")
    return config


def infer_glean_config(state: dict[str, torch.Tensor], **metadata) -> GLEANConfig:
    """Read GLEAN's architecture off its tensor shapes (keys with the `generator.` wrapper prefix stripped)."""
    bank = infer_bank_config({k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")},
                             category=metadata.get("category"))
    num_rrdbs = _count(state, "encoder.0.0.body.{}.rdb1.conv1.weight")
    last_decoder = _count(state, "decoder.{}.upsample_conv.weight")
    return GLEANConfig(
        in_size=2 ** (_count(state, "fusion_out.{}.weight") + 1),
        bank=bank,
        rrdb_channels=_shape(state, "encoder.0.0.conv_first.weight")[0],
        num_rrdbs=num_rrdbs,
        rrdb_growth=_shape(state, "encoder.0.0.body.0.rdb1.conv1.weight")[0] if num_rrdbs else 32,
        decoder_channels=_shape(state, f"decoder.{last_decoder}.0.weight")[0],
        **metadata,
    )


def expected_state(config: GLEANConfig | BankConfig) -> dict[str, torch.Tensor]:
    """Keys and shapes of the architecture (meta tensors, no memory)."""
    with torch.device("meta"):
        model = GLEAN(config) if isinstance(config, GLEANConfig) else StyleGAN2Generator(config)
    return model.state_dict()


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    if dtype is None:
        return state
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


# Dataset words in the published checkpoint names -> category (glean_cat_16x_20210527-68912543.pth is cats,
# glean_ffhq_16x_..., glean_in128out1024_4x2x2_16x_ffhq_... are faces, stylegan2_c2_lsun-church_... is towers).
FILENAME_CATEGORIES = {"ffhq": "faces", "celeba": "faces", "celebahq": "faces", "face": "faces", "faces": "faces",
                       "cat": "cats", "cats": "cats", "car": "cars", "cars": "cars", "church": "towers",
                       "bedroom": "bedrooms", "bedrooms": "bedrooms"}


def category_from_filename(path: str | os.PathLike) -> str | None:
    """The category a released checkpoint's file name states (one dataset word), else None."""
    words = re.split(r"[^a-z0-9]+", Path(path).name.lower())
    found = {FILENAME_CATEGORIES[w] for w in words if w in FILENAME_CATEGORIES}
    return found.pop() if len(found) == 1 else None


def _check_output_folder(path: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, an output path that is a file or that the filesystem cannot hold."""
    try:
        is_file = Path(path).exists() and not Path(path).is_dir()
    except OSError as e:
        raise OutputPathError(f"{what} {os_error_message(e, str(path))}") from None
    if is_file:
        raise OutputPathError(f"{what} {path} is a file; give a folder (it is created, or written into if it exists)")


def convert_glean(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    category: str | None = None,
    degradation: str = "bicubic",
    crop_policy: str = "center",
    bank_dir: str | os.PathLike | None = None,
    keep_discriminator: bool = False,
    dtype: torch.dtype | None = None,
) -> ConversionReport:
    """Convert an official GLEAN checkpoint. With `bank_dir`, the bank goes to its own folder and
    the GLEAN folder references it (by relative path and sha256); otherwise it is embedded.
    `category`: None reads it off a published file name (`category_from_filename`), else leaves it unset."""
    _check_output_folder(output_dir, "the output folder")
    if bank_dir is not None:
        _check_output_folder(bank_dir, "--bank-out")
    category = category or category_from_filename(checkpoint)
    state = read_checkpoint(checkpoint)
    network, disc, dropped = split_prefix(state, "generator.", WRAPPER_PREFIXES)
    config = infer_glean_config(network, category=category, degradation=degradation, crop_policy=crop_policy)
    check_state_dict(expected_state(config), network, f"{checkpoint} (generator.*)")
    network = _cast(network, dtype)
    output_dir = Path(output_dir)
    report = ConversionReport(output_dir, config, 0, sum(v.numel() for v in network.values()), dropped)
    if bank_dir is not None:
        bank_state = {k[len("generator."):]: v for k, v in network.items() if k.startswith("generator.")}
        network = {k: v for k, v in network.items() if not k.startswith("generator.")}
        sha = write_bank_folder(bank_dir, config.bank, bank_state)
        config = config.replace(bank_id=os.path.relpath(Path(bank_dir).resolve(), output_dir.resolve()), bank_sha256=sha)
        report.bank_dir, report.bank_sha256, report.config = Path(bank_dir), sha, config
    write_glean_folder(output_dir, config, network)
    if keep_discriminator and disc:
        write_safetensors(disc, output_dir / "discriminator.safetensors")
    report.tensors = len(network)
    return report


def convert_bank(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    category: str | None = None,
    grayscale: bool = False,
    source: str = "generator_ema",
    dtype: torch.dtype | None = None,
) -> ConversionReport:
    """Convert an official StyleGAN2 checkpoint (MMGeneration layout) into a bank folder."""
    _check_output_folder(output_dir, "the output folder")
    category = category or category_from_filename(checkpoint)
    state = read_checkpoint(checkpoint)
    other = "generator." if source == "generator_ema" else "generator_ema."
    bank_state, disc, dropped = split_prefix(state, f"{source}.", (other,))
    config = infer_bank_config(bank_state, category=category, grayscale=grayscale)
    check_state_dict(expected_state(config), bank_state, f"{checkpoint} ({source}.*)")
    sha = write_bank_folder(output_dir, config, _cast(bank_state, dtype), discriminator=disc or None)
    dropped.pop("discriminator.", None)
    return ConversionReport(Path(output_dir), config, len(bank_state), sum(v.numel() for v in bank_state.values()),
                            dropped, Path(output_dir), sha)
