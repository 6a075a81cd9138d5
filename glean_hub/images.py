"""Named image conversions: file/array/PIL -> checked PIL image -> RGB + alpha -> tensor, and back.

Every image the pipeline, the CLI, the demo and the training data see goes through these, so
the value mapping is the same everywhere:

    uint8 RGB [H, W, 3] (0..255)  <->  float tensor [1, 3, H, W] in [-1, 1],  x = (v / 255 - 0.5) / 0.5

(the normalisation of MMEditing's GLEAN configs). Loading honours EXIF orientation, refuses
decompression bombs (`MAX_PIXELS`, overridable by argument or `GLEAN_HUB_MAX_PIXELS`) and turns
every decoding failure into one `InputImageError` that names the file and says what to do.
"""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import InputImageError

# Largest image (width * height) that load_image decodes; a guard against decompression bombs.
MAX_PIXELS = 8192 * 8192
MAX_PIXELS_ENV = "GLEAN_HUB_MAX_PIXELS"

# File suffixes that the CLI picks up from folders (explicitly named files are always tried).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")

# Modes to_rgb converts, and how (16-bit and float modes are rescaled, never clipped).
_ALPHA_MODES = {"RGBA": "RGB", "LA": "L", "PA": "P", "RGBa": "RGB", "La": "L"}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
SUPPORTED_MODES = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "HSV", "I", "F", *_SIXTEEN_BIT, *_ALPHA_MODES)

_PIL_LIMIT_LOCK = threading.Lock()


def default_max_pixels() -> int:
    """`GLEAN_HUB_MAX_PIXELS` when set (read at call time), else `MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None or raw.strip() == "":
        return MAX_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise InputImageError(f"{MAX_PIXELS_ENV}={raw!r} is not a positive integer (pixels, e.g. {MAX_PIXELS})")
    return value


def _check_pixels(size: tuple[int, int], max_pixels: int, name: str) -> None:
    w, h = size
    if w * h > max_pixels:
        raise InputImageError(
            f"{name}: {w}x{h} = {w * h:,} pixels, more than the limit of {max_pixels:,} (a guard against "
            f"decompression bombs). If you trust the file, raise the limit: --max-pixels {w * h} on the command line, "
            f"max_pixels={w * h} in Python, or the environment variable {MAX_PIXELS_ENV}={w * h}"
        )


def _reason(e: BaseException) -> str:
    """A decoder's message as one short printable line (some echo raw file bytes or span lines)."""
    text = re.sub(r"""b(['"]).*?\1""", "<file bytes>", " ".join(str(e).split()))  # no raw bytes in messages
    text = "".join(ch if ch.isprintable() and ord(ch) < 128 else "?" for ch in text)
    return (text[:150] + "...") if len(text) > 150 else (text or type(e).__name__)


# Decoder warnings of libjpeg(-turbo) that Pillow silences; the pipeline passes them on as warnings.
DECODER_WARNING = "glean_hub.decoder_warning"


def jpeg_decoder_warning(data: bytes) -> str | None:
    """libjpeg-turbo's first warning for this JPEG ("Corrupt JPEG data: ..."), or None when it decodes cleanly.

    Pillow decodes corrupt scan data without a word (garbage blocks, exit 0); `simplejpeg` in strict mode
    reports it. Without simplejpeg installed nothing is checked."""
    try:
        import simplejpeg
    except ImportError:  # pragma: no cover - a dependency; tolerated when missing
        return None
    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
    except ValueError as e:
        message = _reason(e)
        if "corrupt" in message.lower() or "premature" in message.lower() or "bogus" in message.lower():
            return message
    except Exception:  # noqa: BLE001 - a format simplejpeg does not handle (Pillow decoded it): nothing to add
        return None
    return None


def _open_file(path: Path, max_pixels: int) -> Image.Image:
    """Open and fully decode a file; every failure becomes an InputImageError naming the file."""
    try:
        if not path.exists():
            raise InputImageError(f"{path}: no such file")
        if path.is_dir():
            raise InputImageError(f"{path}: a folder, not an image file (the CLI accepts folders; Python takes files)")
        if path.stat().st_size == 0:
            raise InputImageError(f"{path}: empty file (0 bytes), it was not written completely; re-export or re-download it")
    except OSError as e:
        raise InputImageError(f"{str(path)[:200]}: cannot be read ({e.strerror or _reason(e)})") from None
    # PIL's own bomb check (warning, then error at 2x its limit) is replaced by ours, with our limit.
    with _PIL_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(path)
        except UnidentifiedImageError:
            with open(path, "rb") as f:
                head = f.read(16)
            raise InputImageError(
                f"{path}: not an image PIL can read (first bytes {head!r}); expected PNG, JPEG, WebP, BMP, TIFF, ... "
                "Is it a text or HTML file with an image suffix?"
            ) from None
        except OSError as e:
            raise InputImageError(f"{path}: cannot be opened ({_reason(e)})") from None
        except Exception as e:  # noqa: BLE001 - PIL plugins raise ValueError, struct.error, ... on corrupt headers
            raise InputImageError(
                f"{path}: a corrupt image header or metadata ({_reason(e)}); re-export or re-download it"
            ) from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    _check_pixels(img.size, max_pixels, str(path))
    try:
        img.load()
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, ValueError (e.g. oversized text/ICC chunks), ...
        raise InputImageError(
            f"{path}: truncated or corrupt ({img.format or 'unknown format'}: {_reason(e)}); re-export or re-download it"
        ) from None
    if img.format == "JPEG":
        warning = jpeg_decoder_warning(path.read_bytes())
        if warning:
            img.info[DECODER_WARNING] = (f"the JPEG decoder reported damaged data ({warning}): parts of the image may be "
                                         "garbage, and so the result; re-export or re-download it")
    return img


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    """numpy [H, W] or [H, W, C] (C = 1, 3, 4; RGB order) -> PIL. uint8 as is, uint16 /257, float [0, 1] x255."""
    shape = arr.shape
    if arr.ndim in (2, 3) and 0 in shape[:2]:
        raise InputImageError(f"{name}: empty array of shape {shape}")
    if arr.ndim == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        raise InputImageError(f"{name}: shape {shape} (channels first?); expected [H, W, C]: use arr.transpose(1, 2, 0)")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and shape[2] not in (1, 3, 4)):
        raise InputImageError(f"{name}: shape {shape}; expected [H, W], [H, W, 3] (RGB) or [H, W, 4] (RGBA)")
    if arr.ndim == 3 and shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.uint16:
        if arr.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(arr))  # mode I;16, scaled by to_rgb
        arr = _sixteen_to_uint8(arr)
    elif arr.dtype in (np.float16, np.float32, np.float64):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise InputImageError(
                f"{name}: float array with {_value_range(arr)}; float images must lie "
                "in [0, 1] (divide uint8 data by 255, or pass the uint8 array itself)"
            )
        arr = np.round(arr.astype(np.float64) * 255).astype(np.uint8)
    else:
        raise InputImageError(f"{name}: unsupported dtype {arr.dtype}; expected uint8, uint16 or float in [0, 1]")
    return Image.fromarray(np.ascontiguousarray(arr))


def _value_range(a: np.ndarray) -> str:
    """'values in [lo, hi]' for messages, or what is not finite (NaN-filled images have no range)."""
    finite = np.isfinite(a)
    if not finite.all():
        kind = "NaN" if np.isnan(a).any() else "infinite"
        return f"{kind} values ({int((~finite).sum()):,} of {a.size:,})"
    return f"values in [{a.min():.3g}, {a.max():.3g}]"


def _sixteen_to_uint8(a: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 by round(v / 257): 65535 -> 255, 257 -> 1 (PIL's convert clips instead)."""
    return np.floor(a.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def load_image(image, max_pixels: int | None = None, name: str | None = None) -> Image.Image:
    """A path, PIL image or numpy array -> decoded PIL image, upright (EXIF orientation applied).

    Arrays: [H, W] or [H, W, 3|4] in RGB(A) order; uint8, uint16 (16-bit) or float in [0, 1].
    The mode is left as it is (see `split_alpha`, `to_rgb`). Raises InputImageError for missing,
    empty, truncated or non-image files and images over `max_pixels` (default `default_max_pixels()`).
    `name` labels in-memory images in messages (default "image"/"array"; files are named by their path).
    """
    max_pixels = default_max_pixels() if max_pixels is None else int(max_pixels)
    if isinstance(image, (str, os.PathLike)):
        img = _open_file(Path(image).expanduser(), max_pixels)
        name = str(image)
    elif isinstance(image, Image.Image):
        name = name or "image"
        _check_pixels(image.size, max_pixels, name)
        try:
            image.load()  # a lazily opened file decodes here: truncated or closed files fail now, with the name
        except Exception as e:  # noqa: BLE001 - OSError (truncated), ValueError/AttributeError (closed), ...
            raise InputImageError(
                f"{name}: this PIL image cannot be decoded ({_reason(e)}); it is truncated, corrupt or already closed. "
                "Open it again, or pass the file path"
            ) from None
        img = image
    elif isinstance(image, np.ndarray):
        name = name or "array"
        if image.ndim not in (2, 3):
            raise InputImageError(f"{name}: a {image.ndim}-d array of shape {image.shape}; expected [H, W], [H, W, 3] (RGB) "
                                  "or [H, W, 4] (RGBA)")
        _check_pixels((image.shape[1], image.shape[0]), max_pixels, name)
        img = _from_array(image, name)
    elif isinstance(image, torch.Tensor):
        raise InputImageError(
            "got a torch.Tensor; the pipeline takes paths, PIL images or numpy arrays. For a tensor "
            "[N, 3, in_size, in_size] in [-1, 1], call the model directly: model(lr)"
        )
    elif isinstance(image, (bytes, bytearray)):
        raise InputImageError("got raw bytes; wrap them: PIL.Image.open(io.BytesIO(data))")
    else:
        raise InputImageError(f"cannot use an object of type {type(image).__name__} as an image; pass a path, PIL image or numpy array")
    if img.width < 1 or img.height < 1:
        raise InputImageError(f"{name}: empty image ({img.width}x{img.height})")
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make an otherwise fine image unusable
        return img
    if upright is not img:  # keep what the degradation guard reads (JPEG quality) on the copy
        upright.format = img.format
        if DECODER_WARNING in img.info:
            upright.info[DECODER_WARNING] = img.info[DECODER_WARNING]
        if hasattr(img, "quantization"):
            upright.quantization = img.quantization
    return upright


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """PIL image -> (RGB image, alpha as mode "L" or None).

    Alpha comes from RGBA/LA/PA, premultiplied RGBa/La (un-premultiplied first), and palette or
    single-colour transparency (`info["transparency"]`). The colour part goes through `to_rgb`.
    """
    if img.mode == "La":
        img = Image.merge("LA", img.split()).convert("RGBa").convert("RGBA")  # PIL has no La -> LA
    elif img.mode == "RGBa":
        img = img.convert("RGBA")
    elif "transparency" in img.info and img.mode in ("P", "L", "RGB"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        alpha = img.getchannel("A")
        colour = img.convert("RGB") if img.mode == "PA" else img.convert(_ALPHA_MODES[img.mode])
        return to_rgb(colour), alpha
    return to_rgb(img), None


def to_rgb(img: Image.Image) -> Image.Image:
    """PIL image of any supported mode -> mode "RGB" (alpha dropped; use `split_alpha` to keep it).

    16-bit (I;16*, I with values in 0..65535) -> round(v / 257); F must lie in [0, 1] (-> x255);
    CMYK through its ICC profile when it has one; L, 1, P, YCbCr, HSV by PIL's conversion.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _ALPHA_MODES:
        return split_alpha(img)[0]
    if mode in _SIXTEEN_BIT or mode == "I":
        a = np.asarray(img).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise InputImageError(
                f"a mode-{mode} image with values in [{a.min()}, {a.max()}]; 32-bit integer images are read as 16-bit "
                "(0..65535). Rescale it to 8 or 16 bit first"
            )
        return Image.fromarray(_sixteen_to_uint8(a)).convert("RGB")
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise InputImageError(f"a float (mode F) image with {_value_range(a)}; float images must lie in [0, 1]. Rescale it first")
        return Image.fromarray(np.round(a * 255).astype(np.uint8)).convert("RGB")
    if mode == "CMYK" and img.info.get("icc_profile"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
            return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: PIL's plain conversion below
    if mode in ("1", "L", "P", "RGBX", "CMYK", "YCbCr", "HSV"):
        return img.convert("RGB")
    raise InputImageError(
        f"unsupported image mode {mode!r}; supported: {', '.join(SUPPORTED_MODES)}. Convert it to RGB first "
        "(for LAB use a colour-managed tool: PIL's LAB conversion is not colour-accurate)"
    )


def to_grayscale_rgb(img: Image.Image) -> Image.Image:
    """RGB -> luma (ITU-R 601, PIL's "L") replicated to 3 channels, for banks trained on grayscale."""
    return img.convert("L").convert("RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor [1, 3, H, W] in [-1, 1]: (v / 255 - 0.5) / 0.5."""
    if not isinstance(img, Image.Image) or img.mode != "RGB":
        raise InputImageError(f"pil_to_tensor expects an RGB PIL image, got {getattr(img, 'mode', type(img).__name__)}; use to_rgb first")
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].float()
    return (x / 255 - 0.5) / 0.5


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Tensor [1, 3, H, W] or [3, H, W] in about [-1, 1] -> RGB PIL: round(clamp((y + 1) / 2, 0, 1) * 255)."""
    return Image.fromarray(tensor_to_uint8(t))


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """Tensor [1, 3, H, W] or [3, H, W] in about [-1, 1] -> uint8 array [H, W, 3]."""
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a tensor [1, 3, H, W] or [3, H, W], got {list(t.shape)}")
    y = ((t.detach().float().cpu() + 1) / 2).clamp(0, 1) * 255
    return y.round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
