"""GLEANPipeline: any image -> the model's exact LR -> GLEAN -> PIL image, with the LR kept.

    check_inputs -> 1. load (EXIF, modes, alpha) -> 2. square + MATLAB-bicubic LR -> 3. degradation guard
                 -> 4. GLEAN in batches -> 5. back to the image's geometry (+ alpha, post-resize) -> 6. output

Size rules, all read from `model.config` (in_size n, out_size N):

* an n x n input is used as it is ("passthrough");
* otherwise `mode` makes it square at its own resolution: "crop" (centre square of the shorter
  side), "pad" (reflect-pad to the longer side; the padding is cut from the output, which keeps
  the input's aspect), "resize" (squash the whole image; a warning says the output is distorted);
* the square is brought to n x n with MATLAB-compatible bicubic `imresize` on uint8 (antialiased
  when shrinking), the way the training LRs were made, and `pil_to_tensor` of that LR is the
  network input, bit for bit;
* a square smaller than n is enlarged to n the same way, with a warning giving the effective
  factor N / side (more than the model's scale; the extra part adds no detail);
* shorter side < `min_side(config)` = max(4, n // 4): `InputImageError`, nothing to super-resolve;
* `align_faces=True`: the largest face is rotated upright and cropped like the training crops
  (see faces.py), upscaled, and pasted back with a feathered mask into a bicubic enlargement of
  the whole image by the same factor; no face found -> a warning and the `mode` rule;
* grayscale banks (`config.bank.grayscale`): the network sees the luma of the LR (ITU-R 601) and its
  output is made exactly gray (the luma of its three channels); for a colour input that luma is the Y
  of the result and Cb, Cr come from the MATLAB-bicubic upscale of the colour LR (the usual Y-channel
  practice), so colour in gives colour out and gray stays gray.

Alpha (RGBA, LA, PA, transparency) is taken off, enlarged to the output with MATLAB bicubic and put
back. `output_size` resamples the final image (flagged `post_resize` in `UpscaleInfo`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .degradation import LUMA_601, degradation_warnings, jpeg_quality
from .errors import ConfigError, GleanWarning, InputImageError
from .images import DECODER_WARNING, default_max_pixels, load_image, pil_to_tensor, split_alpha, to_grayscale_rgb
from .imresize import imresize, imresize_uint8

MODES = ("crop", "pad", "resize")
OUTPUT_TYPES = ("pil", "np")
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def min_side(config) -> int:
    """Smallest usable shorter side: max(4, in_size // 4) (4 px for 16x16 inputs, 16 px for 64x64)."""
    return max(4, config.in_size // 4)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None -> cuda when available, else cpu; anything else is checked by `hub.check_device` (as the loaders do)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from .hub import check_device

    return check_device(device)


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device, warn: bool = True) -> torch.dtype:
    """None -> float32; "fp32"/"bf16"/"fp16" or a torch dtype. fp16 on CPU is an error (no silent fallback)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ConfigError(f"dtype={dtype!r} is not supported; use 'fp32', 'bf16' or 'fp16' (or a torch dtype)")
        dtype = DTYPES[dtype]
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ConfigError(f"dtype={dtype} is not supported; use torch.float32, torch.bfloat16 or torch.float16")
    if dtype == torch.float16 and device.type == "cpu":
        raise ConfigError("fp16 is not supported on CPU (slow and inexact there); use dtype='bf16' or 'fp32', or a CUDA device")
    if warn and dtype == torch.bfloat16 and device.type == "cpu" and not _cpu_has_bf16():
        warnings.warn("bf16 on this CPU (no AVX512-BF16/AMX) is emulated: convolutions run ~50-100x slower than fp32; "
                      "use dtype='fp32' here", GleanWarning, stacklevel=3)
    return dtype


def _is_auto(dtype) -> bool:
    return isinstance(dtype, str) and dtype == "auto"


def auto_dtype(stored: torch.dtype, device: torch.device) -> torch.dtype:
    """dtype="auto": the weights' own dtype, except float16 on a CPU (not supported there) -> float32."""
    return torch.float32 if stored == torch.float16 and device.type == "cpu" else stored


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True  # unknown: do not warn


def cpu_has_native_bf16() -> bool:
    """The CPU computes bf16 dot products in hardware (AVX512-BF16 or AMX-BF16), where oneDNN's bf16
    convolutions beat float32 (~1.9x for a 128-channel 3x3 conv on 2 AVX512-BF16 cores). Read from
    torch.cpu.get_capabilities() (cpuinfo), else from the flags in /proc/cpuinfo; False when unknown."""
    try:
        caps = torch.cpu.get_capabilities()
        return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    except (AttributeError, RuntimeError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


# The default dtype on a CPU is bf16 where it is both faster and accurate: a CPU with native bf16
# (above) and a model of at least BF16_MIN_GFLOP per image (below that, per-layer overhead and the
# casts outweigh the faster convolutions); the fast path's bf16 output is >= 45 dB from float32 on
# the official configs (BENCHMARKS.md, "CPU bf16").
BF16_MIN_GFLOP = 5.0


@functools.lru_cache(maxsize=64)
def model_gflop(config) -> float:
    """Model FLOPs per image in GFLOP (bench.count_flops: counted on the meta device, no compute; cached per config)."""
    from .bench import count_flops

    return count_flops(config) / 1e9


def default_dtype(device: torch.device, config=None, fast: bool = True) -> torch.dtype:
    """dtype=None: bf16 for the fast path on a CPU with native bf16 and a model of >= BF16_MIN_GFLOP per image
    (outputs of 256 px and more always are; `config` None: any model), float32 otherwise (GPUs: pass dtype=)."""
    if device.type != "cpu" or not fast or not cpu_has_native_bf16():
        return torch.float32
    if config is not None and config.out_size < 256 and model_gflop(config) < BF16_MIN_GFLOP:
        return torch.float32
    return torch.bfloat16


@dataclass
class UpscaleInfo:
    """What the pipeline did to one image. Sizes are (width, height); boxes (left, top, right, bottom)."""

    original_size: tuple[int, int]  # after EXIF rotation
    policy: str  # "passthrough", "crop", "pad", "resize" or "face"
    reason: str  # why, and what was done, in words
    box: tuple[float, float, float, float]  # the square the network saw, in original pixels (pad: beyond the image)
    effective_factor: float  # output side / side of the original region it covers ("resize": the smaller axis)
    output_size: tuple[int, int] = (0, 0)
    post_resize: bool = False  # the result was resampled to output_size after GLEAN
    upsampled_input: bool = False  # the square was smaller than in_size and was enlarged before the network
    face_angle: float | None = None  # degrees the face was rotated ("face" policy)
    warnings: list[str] = field(default_factory=list)


@dataclass
class UpscaleOutput:
    images: list  # PIL images (RGB, or RGBA/LA... -> RGBA), or float32 arrays [H, W, C] in [0, 1] for output_type="np"
    lr_images: list[Image.Image]  # uint8 RGB in_size x in_size: pil_to_tensor(lr) is exactly the network input
    info: list[UpscaleInfo]


@dataclass
class Prepared:
    """One image after steps 1-3: the LR and everything needed to put the output back (internal)."""

    name: str
    rgb: np.ndarray  # uint8 [H, W, 3], upright, after grayscale conversion if any
    alpha: np.ndarray | None  # uint8 [H, W]
    lr: Image.Image  # uint8 RGB [in_size, in_size]
    info: UpscaleInfo
    box: tuple[float, float, float, float] = (0, 0, 0, 0)  # UpscaleInfo.box
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, top, right, bottom ("pad")
    crop: object = None  # faces.AlignedCrop ("face")
    alpha_box: tuple[int, int, int, int] | None = None  # region of the original whose alpha goes with the output
    colour_lr: np.ndarray | None = None  # uint8 [n, n, 3]: the colour LR whose chroma a grayscale bank's output gets


class GLEANPipeline:
    """Upscale images of any size and mode with a GLEAN model. See the module docstring for the rules."""

    def __init__(self, model, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None,
                 fast: bool = True):
        """`fast`: run `fast.optimize(model)` (the same function up to float rounding, < 1e-5 in float32;
        faster, and the float16 safeguards of StyleGAN2); False runs the reference `model.forward`.
        `dtype="auto"`: the model's own dtype (float16 on a CPU becomes float32). `dtype=None` (default):
        the model in float32, computed in `default_dtype(device, config, fast)`: bf16 on a CPU with native bf16
        (AVX512-BF16/AMX) for models of >= BF16_MIN_GFLOP per image, else float32; `self.dtype` says which."""
        self.device = resolve_device(device)
        p = next(model.parameters())
        self.dtype = auto_dtype(p.dtype, self.device) if _is_auto(dtype) else resolve_dtype(dtype, self.device)
        if p.device != self.device or p.dtype != self.dtype:
            model = model.to(device=self.device, dtype=self.dtype)  # like diffusers' .to(): moves the model
        self.model = model.eval()
        self.config = model.config
        if dtype is None:  # the default: the model stays float32, the fast path may compute in bf16 (default_dtype)
            self.dtype = default_dtype(self.device, self.config, fast)
        if fast:
            from .fast import optimize

            self.network = optimize(self.model, dtype=self.dtype)
        else:
            self.network = self.model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, scale: int | None = None, category: str | None = None,
                        device=None, dtype=None, torch_dtype=None, fast: bool = True, **hub_kwargs) -> "GLEANPipeline":
        """`GLEAN.from_pretrained(pretrained_model_name_or_path, scale=, category=, **hub_kwargs)` loaded straight
        to device and dtype. `dtype` or its older spelling `torch_dtype` (diffusers takes both): None -> the default (see __init__),
        "auto" -> as stored (float16 on a CPU becomes float32), a name ("fp32", "bf16", ...) or a torch dtype."""
        from .glean import GLEAN
        from .hub import one_dtype

        dtype = one_dtype(torch_dtype, dtype)
        dev = resolve_device(device)
        if _is_auto(dtype):
            model = GLEAN.from_pretrained(pretrained_model_name_or_path, scale=scale, category=category,
                                          torch_dtype="auto", device=dev, **hub_kwargs)
            return cls(model, device=dev, dtype="auto", fast=fast)
        dt = resolve_dtype(dtype, dev, warn=False)  # before loading: a bad dtype fails fast
        model = GLEAN.from_pretrained(pretrained_model_name_or_path, scale=scale, category=category, torch_dtype=dt,
                                      device=dev, **hub_kwargs)
        return cls(model, device=dev, dtype=None if dtype is None else dt, fast=fast)  # None: default_dtype decides

    def __repr__(self) -> str:
        c = self.config
        return (f"GLEANPipeline({c.category or 'uncategorised'} {c.scale}x, {c.in_size}->{c.out_size}, "
                f"degradation={c.degradation}, device={self.device}, dtype={self.dtype})")

    # --- the call, as numbered steps -----------------------------------------------------------

    def __call__(self, images, *, mode: str = "crop", align_faces: bool = False, output_size=None, batch_size: int = 8,
                 progress: bool = False, output_type: str = "pil", max_pixels: int | None = None) -> UpscaleOutput:
        """Upscale a path, PIL image or numpy array (or a list of them).

        Returns an `UpscaleOutput` with lists, one entry per input: `images` (PIL, or float32 arrays
        [H, W, C] in [0, 1] with output_type="np"), `lr_images` (the exact LR each network input was
        made from) and `info`. Warnings also go through `warnings.warn(..., GleanWarning)`.
        `output_size`: int (longer side, aspect kept) or (width, height): a post-resize of the result.
        """
        items = self.check_inputs(images, mode=mode, align_faces=align_faces, output_size=output_size,
                                  batch_size=batch_size, output_type=output_type, max_pixels=max_pixels)
        # 1-3. load, convert, make each square LR, check its degradation
        prepared = [self.preprocess(img, mode=mode, align_faces=align_faces, max_pixels=max_pixels, name=name)
                    for name, img in items]
        # 4. GLEAN, batch_size LRs at a time
        lr = torch.cat([pil_to_tensor(p.lr) for p in prepared])
        sr = self.forward(lr, batch_size=batch_size, progress=progress)
        # 5-6. back to each image's geometry, alpha, post-resize; collect
        out = UpscaleOutput(images=[], lr_images=[], info=[])
        for p, y in zip(prepared, sr):
            image, info = self.postprocess(p, y, output_size=output_size, output_type=output_type)
            out.images.append(image)
            out.lr_images.append(p.lr)
            out.info.append(info)
        return out

    def check_inputs(self, images, *, mode, align_faces, output_size, batch_size, output_type,
                     max_pixels=None) -> list[tuple[str, object]]:
        """Validate the arguments; return [(name, image)] with names for messages ("image 2" or the path)."""
        if not isinstance(mode, str) or mode not in MODES:
            raise ConfigError(f"mode={mode!r}; expected one of {MODES}")
        if not isinstance(output_type, str) or output_type not in OUTPUT_TYPES:
            raise ConfigError(f"output_type={output_type!r}; expected one of {OUTPUT_TYPES}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        check_output_size(output_size, max_pixels)
        if align_faces:
            from .faces import _cv2

            _cv2()  # missing OpenCV: the install hint, before any work
        if isinstance(images, (list, tuple)):
            if not images:
                raise InputImageError("got an empty list of images")
            return [(str(x) if isinstance(x, (str, os.PathLike)) else f"image {i}", x) for i, x in enumerate(images)]
        return [(str(images) if isinstance(images, (str, os.PathLike)) else "image 0", images)]

    # --- steps 1-3: one image -> Prepared ------------------------------------------------------

    def preprocess(self, image, *, mode: str = "crop", align_faces: bool = False, max_pixels: int | None = None,
                   name: str = "image") -> Prepared:
        """Steps 1-3 for one image: load and convert, square + MATLAB-bicubic LR, degradation guard."""
        c = self.config
        n = c.in_size
        notes: list[str] = []

        # 1. load: EXIF orientation, mode -> RGB, alpha aside
        pil = load_image(image, max_pixels=max_pixels, name=name)
        quality = jpeg_quality(pil)
        try:
            rgb_img, alpha_img = split_alpha(pil)
        except InputImageError as e:
            raise InputImageError(f"{name}: {e}") from None
        if pil.info.get(DECODER_WARNING):
            notes.append(pil.info[DECODER_WARNING])
        luma_only = c.bank.grayscale and not _is_gray(rgb_img)
        if luma_only:
            notes.append("this model's latent bank was trained on grayscale images: it super-resolves the luma "
                         "(ITU-R 601); the colour comes from the bicubic upscale of the input")
        rgb = np.array(rgb_img, dtype=np.uint8)  # writable copies: torch.from_numpy warns on read-only arrays
        alpha = None if alpha_img is None else np.array(alpha_img, dtype=np.uint8)
        h, w = rgb.shape[:2]
        if min(h, w) < min_side(c):
            raise InputImageError(
                f"{name}: {w}x{h} is too small to be meaningful for this {n}x{n}-input model (the shorter side must be "
                f"at least {min_side(c)} px = max(4, in_size // 4)); give a larger image"
            )

        # 2. the square region at the original resolution, then MATLAB-bicubic to n x n
        p = Prepared(name=name, rgb=rgb, alpha=alpha, lr=None, info=None)  # type: ignore[arg-type]
        policy, source, reason = None, None, ""
        if align_faces and (w, h) != (n, n):
            policy, source, reason = self._face_square(p, mode, notes, max_pixels)
        if policy is None:
            policy, source, reason = self._square(p, mode, notes)
        side = source.shape[0]
        if policy == "resize":
            lr = imresize_uint8(rgb, size=(n, n)) if (w, h) != (n, n) else rgb
            shrink = min(w, h) / n
        else:
            lr = source if side == n else imresize_uint8(source, size=(n, n))
            shrink = side / n
        p.lr = Image.fromarray(np.ascontiguousarray(lr))
        if luma_only:  # the network sees the luma; the colour LR gives the chroma in step 5
            p.colour_lr, p.lr = np.ascontiguousarray(lr), to_grayscale_rgb(p.lr)
        upsampled = min(source.shape[:2]) < n if policy != "resize" else min(w, h) < n
        if upsampled:
            covered = min(w, h) if policy == "resize" else side
            notes.append(
                f"{w}x{h} is smaller than the model's {n}x{n} input: the {policy} region ({covered} px) was enlarged "
                f"to {n}x{n} with MATLAB bicubic before the network, so the effective factor is {c.out_size / covered:.1f}x "
                f"instead of {c.scale}x and the extra {n / covered:.2f}x adds no detail. Give at least {n}x{n} pixels for a "
                f"true {c.scale}x"
            )
            reason += f"; enlarged {n / covered:.2f}x to {n}x{n} (smaller than the model input)"
        elif policy != "passthrough":
            reason += f"; downscaled {shrink:.2f}x to {n}x{n} with MATLAB bicubic (antialiased)"

        # 3. degradation guard (bicubic models want clean LRs)
        notes += degradation_warnings(source, shrink, quality, c.degradation)

        p.info = UpscaleInfo(original_size=(w, h), policy=policy, reason=reason, box=p.box, effective_factor=0.0,
                             upsampled_input=upsampled, warnings=notes,
                             face_angle=None if p.crop is None else math.degrees(p.crop.angle))
        for msg in notes:
            warnings.warn(f"{name}: {msg}", GleanWarning, stacklevel=3)
        return p

    def _square(self, p: Prepared, mode: str, notes: list[str]):
        """Step 2 for the size policies: (policy, source square uint8 [s, s, 3] or the image for resize, reason)."""
        rgb, n = p.rgb, self.config.in_size
        h, w = rgb.shape[:2]
        if (w, h) == (n, n):
            p.box, p.alpha_box = (0, 0, w, h), (0, 0, w, h)
            return "passthrough", rgb, f"already {n}x{n}: used as it is"
        if mode == "crop":
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            p.box = p.alpha_box = (left, top, left + s, top + s)
            lost = f", {w - s} columns cut" if w > h else (f", {h - s} rows cut" if h > w else "")
            return "crop", rgb[top : top + s, left : left + s], f"mode='crop': centre square {s}x{s} at ({left}, {top}){lost}"
        if mode == "pad":
            s = max(w, h)
            left, top = (s - w) // 2, (s - h) // 2
            p.pad = (left, top, s - w - left, s - h - top)
            p.box, p.alpha_box = (-left, -top, w + p.pad[2], h + p.pad[3]), (0, 0, w, h)
            square = np.pad(rgb, ((top, p.pad[3]), (left, p.pad[2]), (0, 0)), mode="reflect")
            return "pad", square, f"mode='pad': reflect-padded to {s}x{s} (left {left}, top {top}, right {p.pad[2]}, " \
                                  f"bottom {p.pad[3]}); the padding is cut from the output"
        p.box = p.alpha_box = (0, 0, w, h)
        if w != h:
            notes.append(
                f"{w}x{h} input: mode='resize' squashed it to a square (aspect {w / h:.2f} -> 1), so the output is "
                "distorted. Use mode='crop' (centre square) or mode='pad' (whole image, aspect kept), or restore the aspect "
                "with output_size=(width, height)"
            )
        return "resize", rgb, f"mode='resize': the whole {w}x{h} image squashed to {n}x{n}"

    def _face_square(self, p: Prepared, mode: str, notes: list[str], max_pixels: int | None):
        """Step 2 with align_faces: (policy "face", aligned crop, reason), or (None, None, "") after a warning."""
        from . import faces

        found = faces.detect_faces(p.rgb)
        if not found:
            notes.append(f"align_faces: no face found (OpenCV Haar cascade), so the image was processed with mode={mode!r} "
                         "instead; for a face, give a larger or more frontal photo, or crop it yourself")
            return None, None, ""
        if len(found) > 1:
            notes.append(f"{len(found)} faces found: only the largest is upscaled by GLEAN; the rest of the image is bicubic")
        if self.config.category not in (None, "faces"):
            notes.append(f"align_faces=True with a {self.config.category!r} model: face alignment is meant for faces models")
        f = found[0]
        crop = faces.face_crop(f)
        h, w = p.rgb.shape[:2]
        k = self.config.out_size / crop.side
        limit = default_max_pixels() if max_pixels is None else max_pixels
        if round(w * k) * round(h * k) > limit:
            raise InputImageError(
                f"{p.name}: pasting the {self.config.out_size}-px face back needs a {round(w * k)}x{round(h * k)} image "
                f"(the face is {crop.side} px, {k:.1f}x smaller), over the limit of {limit:,} pixels; crop the photo closer "
                "to the face, or run without align_faces"
            )
        p.crop = crop
        corners = np.linalg.inv(crop.matrix()) @ np.array([[0, crop.side, crop.side, 0], [0, 0, crop.side, crop.side], [1, 1, 1, 1]])
        p.box = (float(corners[0].min()), float(corners[1].min()), float(corners[0].max()), float(corners[1].max()))
        p.alpha_box = (0, 0, w, h)
        eyes = "eyes detected" if f.eyes_detected else "eyes estimated from the face box"
        reason = (f"align_faces: face at ({f.box[0]:.0f}, {f.box[1]:.0f}) {f.box[2]:.0f} px wide ({eyes}), rotated "
                  f"{math.degrees(crop.angle):.1f} deg, square {crop.side}x{crop.side} "
                  f"({faces.FACE_BOX_SCALE} face widths); pasted back into a bicubic enlargement of the whole image")
        return "face", faces.warp_crop(p.rgb, crop), reason

    # --- step 4: the network -------------------------------------------------------------------

    def forward(self, lr: torch.Tensor, *, batch_size: int = 8, progress: bool = False) -> torch.Tensor:
        """float [N, 3, in_size, in_size] in [-1, 1] -> float32 CPU [N, 3, out_size, out_size], batch_size at a time."""
        chunks = range(0, lr.shape[0], batch_size)
        if progress and len(chunks) > 1:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="GLEAN", unit="batch")
        outs = []
        with torch.inference_mode():
            for i in chunks:
                x = lr[i : i + batch_size].to(device=self.device, dtype=self.dtype)
                outs.append(self.network(x).float().cpu())
        return torch.cat(outs)

    # --- steps 5-6: back to the image ----------------------------------------------------------

    def postprocess(self, p: Prepared, sr: torch.Tensor, *, output_size=None, output_type: str = "pil"):
        """Network output [3, N, N] (or [1, 3, N, N]) -> (image, UpscaleInfo) in the input's geometry."""
        c = self.config
        info = dataclasses.replace(p.info, warnings=list(p.info.warnings))  # p stays reusable
        y = ((sr.reshape(3, c.out_size, c.out_size).float() + 1) / 2).clamp(0, 1)  # [3, N, N] in [0, 1]
        if c.bank.grayscale:  # the network's channels differ slightly; the output is gray, as the input was
            y = (torch.tensor(LUMA_601, dtype=y.dtype) @ y.reshape(3, -1)).reshape(1, *y.shape[1:]).expand(3, -1, -1).contiguous()
            if p.colour_lr is not None:
                y = with_chroma_of(y[0], p.colour_lr)
        h, w = p.rgb.shape[:2]

        # 5. geometry: cut the padding / paste the face back
        if info.policy == "pad":
            k = c.out_size / max(w, h)
            x0, y0 = round(p.pad[0] * k), round(p.pad[1] * k)
            y = y[:, y0 : y0 + max(1, round(h * k)), x0 : x0 + max(1, round(w * k))]
        elif info.policy == "face":
            y = self._paste_face(p, y)
        out_h, out_w = y.shape[1:]
        if output_size is not None:
            aspect_of = (w, h) if info.policy in ("pad", "face") else (out_w, out_h)  # the exact aspect, not a rounded one
            out_w, out_h = target_size(output_size, aspect_of)
            if (out_w, out_h) != tuple(y.shape[2:0:-1]):
                y = imresize(y.double(), size=(out_h, out_w)).clamp(0, 1).float()
            info.post_resize = True
            info.reason += f"; post-resized to {out_w}x{out_h} after GLEAN (MATLAB bicubic)"
        info.output_size = (out_w, out_h)
        bx0, by0, bx1, by1 = (0, 0, w, h) if info.policy in ("pad", "face", "resize") else info.box
        info.effective_factor = min(out_w / (bx1 - bx0), out_h / (by1 - by0))
        if info.effective_factor < 1 and not info.post_resize:
            note = (f"the output ({out_w}x{out_h}) is smaller than the {round(bx1 - bx0)}x{round(by1 - by0)} region of the "
                    f"input it replaces (effective factor {info.effective_factor:.2f}x): this model always makes "
                    f"{c.out_size}x{c.out_size} from a {c.in_size}x{c.in_size} input, so larger images are downscaled first. "
                    f"Give images of about {c.in_size}x{c.in_size} px, or resample the result with output_size=")
            info.warnings.append(note)
            warnings.warn(f"{p.name}: {note}", GleanWarning, stacklevel=3)

        # alpha: its region of the original, MATLAB bicubic to the output size
        a = None
        if p.alpha is not None:
            ax0, ay0, ax1, ay1 = p.alpha_box
            region = p.alpha[ay0:ay1, ax0:ax1]
            a = imresize_uint8(region, size=(out_h, out_w)) if region.shape != (out_h, out_w) else region

        # 6. output
        if output_type == "np":
            arr = y.permute(1, 2, 0).numpy()
            if a is not None:
                arr = np.concatenate([arr, a[:, :, None].astype(np.float32) / 255], axis=2)
            return np.ascontiguousarray(arr, dtype=np.float32), info
        rgb8 = (y * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        image = Image.fromarray(rgb8)
        if a is not None:
            image = Image.merge("RGBA", (*image.split(), Image.fromarray(a)))
        return image, info

    def _paste_face(self, p: Prepared, face: torch.Tensor) -> torch.Tensor:
        """[3, N, N] face in [0, 1] -> [3, H', W'] whole image: bicubic background by N / side, face blended in."""
        from . import faces

        h, w = p.rgb.shape[:2]
        k = self.config.out_size / p.crop.side
        bw, bh = max(1, round(w * k)), max(1, round(h * k))
        background = imresize_uint8(p.rgb, size=(bh, bw)).astype(np.float32) / 255
        face_np = face.permute(1, 2, 0).numpy()
        merged = faces.paste_back(background, face_np, p.crop, (bw / w, bh / h))
        return torch.from_numpy(np.clip(merged, 0, 1)).permute(2, 0, 1).float()


def check_output_size(output_size, max_pixels: int | None = None) -> None:
    """None, a positive int (longer side), or (width, height) of positive ints, within `max_pixels`
    (default: the input limit, `images.default_max_pixels()`; an int N counts as N x N, its largest case)."""
    from .images import MAX_PIXELS_ENV, default_max_pixels

    if output_size is None:
        return
    ok = (isinstance(output_size, int) and not isinstance(output_size, bool) and output_size > 0) or (
        isinstance(output_size, (tuple, list)) and len(output_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in output_size)
    )
    if not ok:
        raise ConfigError(f"output_size must be a positive int (the longer side) or (width, height), got {output_size!r}")
    limit = max_pixels if max_pixels is not None else default_max_pixels()
    w, h = (output_size, output_size) if isinstance(output_size, int) else output_size
    if w * h > limit:
        raise ConfigError(
            f"output_size={output_size!r} allows up to {w}x{h} = {w * h:,} output pixels, more than the limit of "
            f"{limit:,}; ask for a smaller size, or raise the limit (--max-pixels, max_pixels=, or {MAX_PIXELS_ENV}) "
            "if you have the memory (about 50 bytes per output pixel)"
        )


def target_size(output_size, size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) for `output_size`: an int sets the longer side of `size` (aspect kept), a pair is exact."""
    if isinstance(output_size, int):
        w, h = size
        k = output_size / max(w, h)
        return max(1, round(w * k)), max(1, round(h * k))
    return int(output_size[0]), int(output_size[1])


def with_chroma_of(luma: torch.Tensor, colour_lr: np.ndarray) -> torch.Tensor:
    """luma [N, N] in [0, 1] + chroma of the MATLAB-bicubic upscale of colour_lr (uint8 [n, n, 3]) -> RGB [3, N, N]
    in [0, 1]. ITU-R 601 YCbCr: Y from `luma`, Cb and Cr from the upscale (R, G, B = Y + the upscale's R, G, B
    minus its own Y, which keeps its Cb and Cr exactly)."""
    up = torch.from_numpy(colour_lr).permute(2, 0, 1).double() / 255
    up = imresize(up, size=tuple(luma.shape))
    up_luma = torch.tensor(LUMA_601, dtype=up.dtype) @ up.reshape(3, -1)
    return (luma.double().reshape(1, -1) + up.reshape(3, -1) - up_luma).reshape(3, *luma.shape).clamp(0, 1).float()


def _is_gray(img: Image.Image) -> bool:
    a = np.asarray(img)
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())
