"""GLEAN demo: upload a small image, pick a category and a scale, get the upscaled result.

    glean-hub demo [--host 127.0.0.1] [--port 7860] [--share] [--model DIR_OR_REPO ...]
    python -m glean_hub.demo ...        (the same)
    python demo/app.py ...              (the same, from a source checkout: the Space entry point)

The app ships inside the package (a wheel has it); demo/app.py is the Hugging Face Space's thin entry
point that imports `build_demo` from here (demo/README.md has the Space header).
It serves the registry's installed models (`glean_hub.registry.available()`) and the released OpenMMLab
models already converted in the cache (`glean-hub models` shows which; each under its own Category entry,
e.g. "cats · OpenMMLab 256 px"), or the folders and Hub repos given with --model; with none at all it still
starts and says that no weights are installed. With the registry's models it also lists the released models not
in the cache yet, with their approximate download size; a user fetches one with a button (never at start-up),
after which it is served like a cached one. Runs on the GPU when torch sees one (under `spaces.GPU` when
the `spaces` package is importable), else on the CPU; each model is loaded once per device and dtype, and kept.

Layout of this file: plain functions first (model table, cache, one upscale request), then
`build_demo()` -> gr.Blocks, then `main()`. Nothing is launched on import.
"""

from __future__ import annotations

import argparse
import html
import re
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Offline by default: no usage analytics or version check from Gradio (set before importing it).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Lazily cached example results go to a folder of this process, not ./.gradio: a cache left by an
# earlier run with other weights would otherwise be shown as if these models had made it.
os.environ.setdefault(
    "GRADIO_EXAMPLES_CACHE", os.path.join(tempfile.gettempdir(), f"glean-hub-demo-examples-{os.getpid()}-{time.time_ns()}")
)

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from .config import CONFIG_NAME, GLEANConfig  # noqa: E402
from .errors import ConfigError, GleanError, InputImageError, ModelNotFoundError  # noqa: E402
from .hub import HubOptions, fetch  # noqa: E402
from .images import load_image, to_rgb  # noqa: E402
from .imresize import imresize_uint8  # noqa: E402
from .pipeline import GLEANPipeline  # noqa: E402
from .pipeline import resolve_dtype as pipeline_dtype  # noqa: E402
from .registry import ModelEntry, ReleasedEntry, available, released_entry, released_models  # noqa: E402
from .released import resolve as fetch_converted, url_of  # noqa: E402

try:  # ZeroGPU Spaces: a GPU is attached only while a `spaces.GPU` function runs; elsewhere a no-op
    import spaces

    gpu_function = spaces.GPU(duration=60)
except ImportError:

    def gpu_function(fn):
        return fn


EXAMPLES_DIR = Path(__file__).resolve().parent / "demo_examples"  # package data (see pyproject.toml)
OUTPUT_DIR = Path(tempfile.gettempdir()) / "glean-hub-demo"  # result PNGs; files older than an hour are pruned
MAX_FILE_SIZE = "20mb"  # uploads larger than this are refused by Gradio before they reach us
QUEUE_SIZE = 64  # requests waiting at most; more get "queue full" (20 concurrent clients all fit: issue 14)
DEFAULT_SCALE = 8  # preselected when the category has it (the easier factor makes the first impression), else the smallest
GPU_CONCURRENCY = 1  # upscales running at once on the one device; a second would only compete for it

MODES = [
    ("crop: centre square, then downscale", "crop"),
    ("pad: letterbox to a square, then downscale", "pad"),
    ("resize: squash to a square", "resize"),
]
# Gradio 6 takes CSS at launch(): every launch of this app passes LAUNCH_OPTIONS.
CSS = """
#lr-image img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#status { font-size: 0.9em; opacity: 0.85; }
"""
LAUNCH_OPTIONS = {"css": CSS, "max_file_size": MAX_FILE_SIZE}

DTYPES = ["auto", "float32", "bfloat16", "float16"]  # auto: float16 on a GPU, float32 on the CPU
GPU_ONLY_DTYPES = ("float16",)  # offered only when the demo runs on a GPU
SHARE_HINT_GRADIO = "* To create a public link, set `share=True` in `launch()`."
SHARE_HINT = "* To create a public link, start it with --share (glean-hub demo --share)."

# (example file, category it shows, size policy, align faces); rows whose category is not served are left out.
# Each runs at the category's default scale; the labels say scale, policy and face alignment.
EXAMPLES = [
    ("astronaut_face.png", "faces", "crop", False),
    ("astronaut.png", "faces", "crop", True),
    ("chelsea.png", "cats", "crop", False),
]

NO_MODELS = (
    "No GLEAN weights are installed, so this demo cannot upscale yet. Install a release that bundles "
    "weights, or start it on a converted model: `glean-hub demo --model DIR_OR_HUB_REPO` "
    "(make one with `glean-hub convert CHECKPOINT.pth DIR`)."
)

DETERMINISM_NOTE = """\
**No seed needed.** GLEAN is deterministic: its latent bank uses the noise maps stored with the weights,
so the same image, model and size policy always give the same result. Results differ only in the last
bits between CPU and GPU and between dtypes: `float32` is the reference; `float16`/`bfloat16` halve the
memory and are faster on GPUs, with small colour differences; `float16` needs a GPU. `auto` is `float16`
on a GPU, `float32` on the CPU.
"""


# ---------------------------------------------------------------------------------------------
# The model table: (category, scale) -> where the weights are
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """One servable model: where its weights are and what to show about it."""

    category: str
    scale: int
    location: str  # local folder or Hub repo id, as GLEAN.from_pretrained takes it
    revision: str | None  # Hub revision (None: default branch, or a local folder)
    in_size: int  # side of the model's input
    out_size: int  # side of its output
    label: str  # repo id (with revision) or folder, for the status line
    notes: str = ""
    choice: str = ""  # the Category dropdown entry it is listed under, when not its category (released models)

    @property
    def group(self) -> str:
        """The Category dropdown entry: the category, or `choice` for models listed apart from it."""
        return self.choice or self.category

    @property
    def choice_label(self) -> str:
        return f"{self.scale}× ({self.in_size}→{self.out_size})"


def source_from_entry(entry: ModelEntry) -> ModelSource:
    """A registry entry: its bundled folder when installed, else its Hub repo at its pinned revision."""
    local = entry.local_dir
    location = str(local) if local is not None else entry.repo_id
    revision = None if local is not None else entry.revision
    label = f"{entry.repo_id}@{entry.revision or 'main'}" + (" (bundled copy)" if local is not None else "")
    return ModelSource(entry.category, entry.scale, location, revision, entry.in_size, entry.out_size, label, entry.notes)


def source_from_location(location: str | os.PathLike, revision: str | None = None) -> ModelSource:
    """A local model folder or Hub repo: category and scale are read from its config.json."""
    config = GLEANConfig.load(fetch(location, CONFIG_NAME, HubOptions(revision=revision)))
    local = Path(location).expanduser().is_dir()
    label = str(location) if local else f"{location}@{revision or 'main'}"
    # an uncategorised model (config.json category null) is listed under its folder or repo name
    category = config.category or (Path(location).expanduser().resolve().name if local else str(location).split("/")[-1])
    return ModelSource(category, config.scale, str(location), revision, config.in_size, config.out_size, label)


def source_from_released(entry: ReleasedEntry, folder: Path) -> ModelSource:
    """A released OpenMMLab GLEAN converted in the cache (`released.py`). Its sizes are read from the converted
    config.json (the real ones, e.g. 32 -> 256); it is listed under its own Category entry ("cats · OpenMMLab
    256 px"), since a bundled model may have the same category and scale."""
    config = GLEANConfig.load(folder / CONFIG_NAME)
    psnr = f"published PSNR {entry.psnr:.2f} dB" if entry.psnr else ""
    notes = " · ".join(part for part in (entry.notes, psnr) if part)
    return ModelSource(entry.category, config.scale, str(folder), None, config.in_size, config.out_size,
                       f"{entry.name} (converted copy in the cache)", notes,
                       choice=f"{entry.category} · OpenMMLab {config.out_size} px")


def cached_released_sources() -> list[ModelSource]:
    """The released GLEAN models already downloaded and converted (no network is used to find them)."""
    return [source_from_released(r, r.local_dir) for r in released_models()
            if r.unsupported is None and r.local_dir is not None]


def downloadable_released() -> list[ReleasedEntry]:
    """The released GLEAN models not in the cache yet (found without network): what the demo offers to download."""
    return [r for r in released_models() if r.unsupported is None and r.local_dir is None]


def download_choice(entry: ReleasedEntry) -> tuple[str, str]:
    """(dropdown label, name), e.g. 'cats 8× (32→256) · openmmlab/glean-cats-8x · ≈765 MB download (approximate)'."""
    label = f"{entry.category} {entry.scale}× ({entry.in_size}→{entry.out_size}) · {entry.name}"
    return f"{label} · ≈{entry.download_mb:,} MB download (approximate)", entry.name


def downloads_off() -> bool:
    """HF_HUB_OFFLINE=1: the demo downloads nothing (read at call time, as released.py does)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def offline_route(entry: ReleasedEntry) -> str:
    return (f"this demo runs offline (HF_HUB_OFFLINE=1), so it cannot download {entry.name}. By hand: download "
            f"{url_of(entry)}, run `glean-hub convert FILE DIR`, then start the demo with `glean-hub demo --model DIR`")


def download_note(name: str | None) -> str:
    """What fetching `name` costs and where it goes, or the manual route when the demo runs offline."""
    entry = released_entry(name) if name else None
    if entry is None:
        return ""
    if downloads_off():
        return f"⚠️ {offline_route(entry)}."
    psnr = f"published PSNR {entry.psnr:.2f} dB · " if entry.psnr else ""
    return (f"{entry.notes} · {psnr}≈{entry.download_mb:,} MB (approximate) from [{entry.filename}]({url_of(entry)}), "
            "checked and converted once into the glean-hub cache, then listed under Category.")


def fetch_released(name: str | None, progress=None) -> ModelSource:
    """Download, check, convert and cache one released GLEAN model (released.py's path), on request.
    Returns its ModelSource; raises released.py's one-line errors, or says why it cannot download."""
    entry = released_entry(name) if name else None
    if entry is None or entry.kind != "glean" or entry.unsupported:
        names = ", ".join(r.name for r in released_models() if r.unsupported is None)
        raise ModelNotFoundError(f"{name!r} is not a released GLEAN model this demo can download; choose one of {names}")
    if entry.local_dir is None and downloads_off():
        raise ModelNotFoundError(offline_route(entry))
    if progress is not None:
        progress(0, desc=f"downloading {entry.name} (≈{entry.download_mb:,} MB), then converting it (once)")
    return source_from_released(entry, fetch_converted(entry.name))


def model_table(models: Mapping | list | None = None) -> dict[tuple[str, int], ModelSource]:
    """Normalise what `build_demo` accepts into {(dropdown entry, scale): ModelSource}, ordered by entry then scale.

    `models`: None (the registry's installed models, then the released models found converted in the
    cache under their own dropdown entries), a list of folders / Hub repos (category and
    scale read from their config.json), or a mapping (category, scale) -> folder, Hub repo or ModelEntry.
    """
    if models is None:
        sources = [source_from_entry(m) for m in available()] + cached_released_sources()
    elif isinstance(models, Mapping):
        sources = []
        for (category, scale), where in models.items():
            if isinstance(where, (ModelEntry, ModelSource)):
                sources.append(source_from_entry(where) if isinstance(where, ModelEntry) else where)
                continue
            source = source_from_location(where)
            if (source.category, source.scale) != (category, int(scale)):
                raise ModelNotFoundError(
                    f"{where} is a {source.category!r} {source.scale}x model, but it was given as ({category!r}, {scale})"
                )
            sources.append(source)
    else:
        sources = [source_from_location(where) for where in models]
    order = list(dict.fromkeys(s.group for s in sources))
    return {(s.group, s.scale): s for s in sorted(sources, key=lambda s: (order.index(s.group), s.scale))}


def categories_of(table: Mapping[tuple[str, int], ModelSource]) -> list[str]:
    # list(table): a snapshot taken at once, as a download may add a model to the app's table meanwhile
    return list(dict.fromkeys(category for category, _ in list(table)))


def scales_of(table: Mapping[tuple[str, int], ModelSource], category: str) -> list[int]:
    return [scale for c, scale in list(table) if c == category]


def find_source(table: Mapping[tuple[str, int], ModelSource], category: str | None, scale) -> ModelSource:
    """The model for (category, scale); errors list the valid choices, as the registry's do."""
    if not table:
        raise ModelNotFoundError(NO_MODELS)
    valid = categories_of(table)
    if category not in valid:
        raise ModelNotFoundError(f"unknown category {category!r}; available: {', '.join(valid)}")
    options = scales_of(table, category)
    try:
        scale = int(scale)
    except (TypeError, ValueError):
        raise ModelNotFoundError(f"category {category!r} needs a scale, one of {options}; got {scale!r}") from None
    if (category, scale) not in table:
        raise ModelNotFoundError(f"no {category!r} model for scale {scale}; available scales: {options}")
    return table[(category, scale)]


# ---------------------------------------------------------------------------------------------
# Device, dtype, and the cache of loaded pipelines
# ---------------------------------------------------------------------------------------------


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def dtype_choices(device: torch.device) -> list[str]:
    """The precisions this device runs: float16 only on a GPU."""
    return [d for d in DTYPES if device.type == "cuda" or d not in GPU_ONLY_DTYPES]


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """"auto": float16 on a GPU, float32 on the CPU; others must be one of `dtype_choices(device)`."""
    if name in (None, "", "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    choices = dtype_choices(device)
    if name not in choices:
        raise ConfigError(f"precision {name!r} is not available on {device_name(device)}; choose one of {', '.join(choices)}")
    return pipeline_dtype(name, device)


class PipelineCache:
    """Loaded pipelines, one per (model folder or repo, scale, device, dtype), kept for the life of the app."""

    def __init__(self):
        self._pipes: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def __contains__(self, key) -> bool:
        return key in self._pipes

    @staticmethod
    def key(source: ModelSource, device: torch.device, dtype: torch.dtype) -> tuple:
        return (source.location, source.revision, source.scale, str(device), dtype)

    def get(self, source: ModelSource, device: torch.device, dtype: torch.dtype):
        key = self.key(source, device, dtype)
        with self._lock:
            if key not in self._pipes:
                self._pipes[key] = GLEANPipeline.from_pretrained(
                    source.location, scale=source.scale, category=source.category, revision=source.revision,
                    device=device, dtype=dtype,
                )
            return self._pipes[key]


# ---------------------------------------------------------------------------------------------
# One request
# ---------------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    before: Image.Image  # the network's input enlarged with MATLAB bicubic to the result's size (the baseline)
    after: Image.Image  # the GLEAN result, full resolution
    lr: Image.Image  # exactly what the network saw (uint8 RGB, in_size x in_size)
    lr_note: str  # one line: what was done to the input and why
    png_path: Path  # the result as a PNG file, for download
    status: str  # device, dtype, model, time taken
    warnings: list[str]  # the pipeline's warnings, with the file named as the user knows it


def input_image(image) -> tuple[str | Image.Image, str, str]:
    """What Gradio hands us (raw file payload, path or PIL image) -> (path or image, file stem, name to show)."""
    if image is None:
        raise InputImageError("no image given: upload, paste or take a photo first")
    if isinstance(image, Image.Image):
        return image, "image", "the image"
    if isinstance(image, Mapping):  # a FileData payload: the upscale event runs with preprocess=False
        path = image.get("path")
        if not path:
            raise InputImageError("the upload did not arrive as a file; try uploading it again")
        name = Path(str(image.get("orig_name") or path)).name
        return str(path), Path(name).stem or "image", name
    return str(image), Path(str(image)).stem or "image", Path(str(image)).name


def before_image(lr: Image.Image, after: Image.Image, info, original, scale: int) -> Image.Image:
    """The bicubic upscale of the same input, at exactly the result's size: the baseline GLEAN must beat.

    crop, resize, passthrough: the LR enlarged with MATLAB bicubic. pad: the LR enlarged to the network's
    output side, then cut like the pipeline cuts the padding from the result. face (align_faces): the LR
    is only the face, but the result is the whole image, so the whole image is brought to the face's LR
    resolution (MATLAB bicubic by 1/scale) and enlarged back.
    """
    w, h = after.size
    if info.policy == "face":
        rgb = np.array(to_rgb(load_image(original)), dtype=np.uint8)
        small = imresize_uint8(rgb, size=(max(1, round(h / scale)), max(1, round(w / scale))))
        return Image.fromarray(imresize_uint8(small, size=(h, w)))
    lr_rgb = np.array(lr.convert("RGB"), dtype=np.uint8)
    if info.policy == "pad":
        left, top, right, _ = info.box  # the padded square, in original pixels (left, top <= 0)
        out = lr.width * scale  # the network's output side, before the padding was cut
        k = out / (right - left)
        x0, y0 = round(-left * k), round(-top * k)
        return Image.fromarray(imresize_uint8(lr_rgb, size=(out, out))).crop((x0, y0, x0 + w, y0 + h))
    return Image.fromarray(imresize_uint8(lr_rgb, size=(h, w)))


def explain(info, in_size: int, out_size: int) -> str:
    """For users: what was done to the input, the output's size and why, and what the output covers."""
    w, h = info.original_size
    ow, oh = info.output_size
    text = (f"**Output: {ow}×{oh} px.** This model always makes {out_size}×{out_size} from a {in_size}×{in_size} "
            f"input ({out_size // in_size}×). Your {w}×{h} image → the {in_size}×{in_size} input: {info.reason}. "
            f"Effective factor over your image: {info.effective_factor:.2f}×.")
    if info.effective_factor < 1:
        text += (" ⚠️ The output is smaller than the part of your image it replaces: this model is for tiny images "
                 f"(about {in_size}×{in_size}); a larger photo is downscaled first and comes back at {out_size}×{out_size}.")
    return text


def png_file(image: Image.Image, beside: Path, tag: str) -> str:
    """Write `image` as `<beside stem>-<tag>.png` (temporary name, then renamed: never seen half-written)."""
    path = beside.with_name(f"{beside.stem}-{tag}.png")
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return str(path)


def prune_outputs(directory: Path, max_age_s: float = 3600) -> None:
    now = time.time()
    for old in directory.glob("*.png"):
        try:
            if now - old.stat().st_mtime > max_age_s:
                old.unlink()
        except OSError:
            pass


@gpu_function
def run_pipeline(pipe, image, mode: str, align_faces: bool):
    """The only step that needs the GPU (on ZeroGPU Spaces one is attached just for this call)."""
    return pipe(image, mode=mode, align_faces=align_faces)


def upscale_request(table, cache: PipelineCache, image, category, scale, mode="crop", align_faces=False, dtype="auto",
                    progress=None) -> DemoResult:
    """One upscale, start to end; raises GleanError subclasses with the library's messages."""
    start = time.perf_counter()
    tell = progress or (lambda *args, **kwargs: None)
    source = find_source(table, category, scale)
    if mode not in [value for _, value in MODES]:
        raise GleanError(f"unknown size policy {mode!r}; choose one of crop, pad, resize")
    where, stem, shown = input_image(image)
    pipeline_name = where if isinstance(where, str) else "image 0"  # how the pipeline names it in messages

    def mention(text: str) -> str:  # the file as the user knows it, not by Gradio's cache path
        return str(text).replace(pipeline_name, shown)

    device = pick_device()
    torch_dtype = resolve_dtype(dtype, device)
    if cache.key(source, device, torch_dtype) not in cache:
        tell(0.1, desc=f"loading the {source.category} {source.scale}× model (once)")
    pipe = cache.get(source, device, torch_dtype)
    load_done = time.perf_counter()

    tell(0.4, desc=f"upscaling {source.scale}× on {device.type.upper()}")
    try:
        out = run_pipeline(pipe, where, mode, bool(align_faces) and source.category == "faces")
    except GleanError as e:
        raise type(e)(mention(e)) from None
    after, lr, info = out.images[0], out.lr_images[0], out.info[0]

    tell(0.9, desc="writing the PNG")
    before = before_image(lr, after, info, where, source.scale)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    prune_outputs(OUTPUT_DIR)
    png_path = OUTPUT_DIR / f"{stem[:80]}-glean-{source.category}-{source.scale}x-{uuid.uuid4().hex[:8]}.png"  # 255-byte names
    tmp_path = png_path.with_name(f".{png_path.name}.tmp")
    after.save(tmp_path, format="PNG")
    os.replace(tmp_path, png_path)  # complete or absent, never half-written

    total = time.perf_counter() - start
    loading = f", of which {load_done - start:.1f} s loading the model" if load_done - start > 0.5 else ""
    status = (
        f"{device_name(device)} · {str(torch_dtype).removeprefix('torch.')} · {source.label} · "
        f"{lr.width}×{lr.height} → {after.width}×{after.height} in {total:.2f} s{loading}"
    )
    return DemoResult(before, after, lr, mention(explain(info, lr.width, source.out_size)), png_path, status,
                      [mention(w) for w in info.warnings])


def model_card(source: ModelSource) -> str:
    """The model's card as Markdown (README.md without its YAML header) for a folder; a link for a Hub repo."""
    local = Path(source.location).expanduser()
    card = local / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        return re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S).strip()
    if not local.exists():
        return f"The card is on the Hub: [{source.location}](https://huggingface.co/{source.location})."
    return f"{source.location} has no README.md (model card)."


def share_hint(stream):
    """A stdout that says the CLI's `--share` where Gradio's launch() hint says `share=True`."""

    class Rewrite:
        def write(self, text):
            return stream.write(text.replace(SHARE_HINT_GRADIO, SHARE_HINT))

        def __getattr__(self, name):
            return getattr(stream, name)

    return Rewrite()


def has_result(pair) -> bool:
    """Whether the before/after slider holds a result. Gradio 6.31's ImageSlider reports `[None, None]` (a change
    from its initial null) as soon as the page loads, which is no result."""
    return pair is not None and len(pair) == 2 and pair[1] is not None


def download_button_state(pair) -> gr.DownloadButton:
    """The Download button, enabled exactly when the slider holds a result."""
    return gr.DownloadButton(interactive=has_result(pair))


def user_error(error: Exception) -> gr.Error:
    """glean-hub's own errors keep their text (as the CLI prints it); anything else is named and logged."""
    if isinstance(error, GleanError):
        message = str(error)
    else:
        traceback.print_exception(error)
        message = f"unexpected error ({type(error).__name__}: {error}); this is a bug, please report it"
    return gr.Error(html.escape(message, quote=False), print_exception=False)


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


def build_demo(models: Mapping | list | None = None, *, examples: bool = True, downloads: bool | None = None) -> gr.Blocks:
    """The Gradio app. `models`: see `model_table` (default: the registry's installed models). `downloads`: offer
    the released models not in the cache yet, fetched on request (default: when `models` is None)."""
    table = model_table(models)
    offer_downloads = models is None if downloads is None else downloads
    cache = PipelineCache()
    categories = categories_of(table)
    first = categories[0] if categories else None

    def default_scale(category):
        options = scales_of(table, category)
        return DEFAULT_SCALE if DEFAULT_SCALE in options else (options[0] if options else None)

    def shows_faces(category) -> bool:  # face alignment applies (a dropdown entry of faces models)
        return any(table[(category, s)].category == "faces" for s in scales_of(table, category))

    def scale_choices(category):
        return [(table[(category, s)].choice_label, s) for s in scales_of(table, category)]

    def model_notes(category, scale) -> str:
        source = table.get((category, int(scale))) if category and scale is not None else None
        if source is None:
            return ""
        sizes = f"{source.in_size}×{source.in_size} → {source.out_size}×{source.out_size}"
        parts = (f"**{source.category} {source.scale}×**", sizes, source.notes, source.label, "model card: below the result")
        return " · ".join(part for part in parts if part)

    def card_of(category, scale) -> str:
        source = table.get((category, int(scale))) if category and scale is not None else None
        return model_card(source) if source is not None else ""

    # --- event functions -----------------------------------------------------------------------

    def on_category(category, scale):
        options = scales_of(table, category)
        keep = scale if scale in options else default_scale(category)
        return (
            gr.Radio(choices=scale_choices(category), value=keep),
            gr.Checkbox(visible=shows_faces(category)),
            model_notes(category, keep),
        )

    def on_scale(category, scale):
        return model_notes(category, scale)

    def upscale(image, category, scale, mode, align_faces, dtype, progress=gr.Progress()):
        try:
            result = upscale_request(table, cache, image, category, scale, mode, align_faces, dtype, progress)
        except Exception as error:  # noqa: BLE001 - every failure reaches the user as gr.Error
            raise user_error(error) from error
        for warning in result.warnings:
            gr.Warning(html.escape(warning, quote=False), duration=15)
        # plain values, not component updates: gradio_client users get two PNG paths, a PNG path, a path and text.
        # Files, not PIL images: Gradio writes a PIL output to a path named by its content hash, in place, so two
        # clients with the same result could download a half-written file; files it copies in atomically.
        return (
            (png_file(result.before, result.png_path, "before"), str(result.png_path)),
            png_file(result.lr, result.png_path, "lr"),
            result.lr_note,
            str(result.png_path),
            result.status,
        )

    def upscale_example(image, category, scale, mode, align_faces, progress=gr.Progress()):
        return upscale(image, category, scale, mode, align_faces, "auto", progress)

    def download_released(name, progress=gr.Progress(track_tqdm=True)):  # track_tqdm: released.py's byte progress
        try:
            source = fetch_released(name, progress)
        except Exception as error:  # noqa: BLE001 - every failure reaches the user as gr.Error
            raise user_error(error) from error
        table[(source.group, source.scale)] = source  # served from now on, by every session and the API
        left = [download_choice(r) for r in downloadable_released()]
        return (
            gr.Dropdown(choices=categories_of(table), value=source.group, interactive=True),
            gr.Dropdown(choices=left, value=left[0][1] if left else None),
            f"Added **{source.group}**, scale {source.choice_label}: {source.label}.",
            gr.Button(interactive=True),
        )

    def on_page_load():  # a page opened after a download lists the downloaded model too
        left = [download_choice(r) for r in downloadable_released()]
        return gr.Dropdown(choices=categories_of(table)), gr.Dropdown(choices=left, value=left[0][1] if left else None)

    # --- layout --------------------------------------------------------------------------------

    with gr.Blocks(title="GLEAN super-resolution", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# GLEAN: large-factor super-resolution\n"
            f"Upscale a tiny image {sizes_summary(table)} with a generative latent bank "
            "([Chan et al., CVPR 2021](https://arxiv.org/abs/2012.00739)). Each model takes exactly one input "
            "size, makes one output size and knows one kind of picture, so larger photos are first cropped, padded or "
            "resized to that input size (and come back at the model's output size): *what the network saw* shows the "
            "exact input, and *before* is its plain bicubic upscale. Details are invented by the model, not recovered."
        )
        if not table:
            gr.Markdown(f"> ⚠️ {NO_MODELS}", elem_id="no-models")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                image = gr.Image(
                    label="Input image", type="filepath", sources=["upload", "clipboard", "webcam"],
                    height=280, elem_id="input-image",
                )
                with gr.Row():
                    category = gr.Dropdown(
                        choices=categories, value=first, label="Category", interactive=bool(table),
                        info="the kind of picture the model was trained on", elem_id="category",
                    )
                    scale = gr.Radio(
                        choices=scale_choices(first) if first else [], value=default_scale(first),
                        label="Scale", elem_id="scale",
                    )
                notes = gr.Markdown(model_notes(first, default_scale(first)) if first else "")
                mode = gr.Radio(choices=MODES, value="crop", label="Size policy", elem_id="mode",
                                info="how an image of another size becomes the model's square input")
                align = gr.Checkbox(label="Align faces (eyes level and centred, as in training)", value=False,
                                    visible=shows_faces(first), elem_id="align")
                with gr.Accordion("Advanced", open=False):
                    dtype = gr.Radio(choices=dtype_choices(pick_device()), value="auto", label="Precision (dtype)",
                                     elem_id="dtype")
                    gr.Markdown(DETERMINISM_NOTE)
                run = gr.Button("Upscale", variant="primary", interactive=bool(table), elem_id="run")
                fetchable = [download_choice(r) for r in downloadable_released()] if offer_downloads else []
                with gr.Accordion("More models: the paper's released weights (download on request)", open=False,
                                  visible=bool(fetchable), elem_id="released-box"):
                    released = gr.Dropdown(choices=fetchable, value=fetchable[0][1] if fetchable else None,
                                           label="Released GLEAN model (not downloaded yet)", elem_id="released")
                    released_note = gr.Markdown(download_note(fetchable[0][1]) if fetchable else "",
                                                elem_id="released-note")
                    fetch = gr.Button("Download and add", elem_id="fetch")
                    fetch_status = gr.Markdown(elem_id="fetch-status")
            with gr.Column(scale=3, min_width=360):
                slider = gr.ImageSlider(
                    label="Before (bicubic upscale of the same input) / after (GLEAN)", format="png", type="pil",
                    max_height=640, elem_id="slider", interactive=False,
                )
                with gr.Row(equal_height=False):
                    lr_image = gr.Image(label="What the network saw", format="png", type="pil", interactive=False,
                                        height=160, min_width=160, scale=1, elem_id="lr-image",
                                        buttons=["download"])
                    with gr.Column(scale=3):
                        lr_note = gr.Markdown(elem_id="lr-note")
                        download = gr.DownloadButton("Download PNG (full resolution)", elem_id="download",
                                                     interactive=False)  # enabled once there is a result
                status = gr.Markdown(elem_id="status")
                with gr.Accordion("Model card", open=False, elem_id="model-card"):
                    card = gr.Markdown(card_of(first, default_scale(first)) if first else "", elem_id="card")

        if examples and table:
            rows = [
                [str(EXAMPLES_DIR / file), cat, default_scale(cat), policy, align_faces]
                for file, cat, policy, align_faces in EXAMPLES
                if cat in categories and (EXAMPLES_DIR / file).is_file()
            ]
            if rows:
                gr.Examples(
                    rows, inputs=[image, category, scale, mode, align], fn=upscale_example,
                    outputs=[slider, lr_image, lr_note, download, status],
                    cache_examples=True, cache_mode="lazy", preprocess=False,
                    example_labels=[f"{Path(r[0]).stem} · {r[1]} {r[2]}× · {r[3]}" + (" + face alignment" if r[4] else "")
                                    for r in rows],
                    api_name="example", api_visibility="undocumented",
                )

        # --- events ------------------------------------------------------------------------------
        category.change(on_category, [category, scale], [scale, align, notes], api_name="scales_for_category")
        scale.change(on_scale, [category, scale], notes, api_name="model_notes")
        for trigger in (category, scale):
            trigger.change(card_of, [category, scale], card, api_visibility="private")
        # the Download button is enabled by a result (also one from an example) and disabled without one; the
        # slider sends a change with [None, None] when the page loads, which must keep it disabled (has_result)
        slider.change(download_button_state, slider, download, api_visibility="private")
        # preprocess=False: the uploaded file reaches upscale_request unopened, so a corrupt file gets
        # glean-hub's InputImageError, and API calls (which skip the category event above) have their
        # (category, scale) checked against the model table with the registry's wording.
        run.click(
            upscale, [image, category, scale, mode, align, dtype], [slider, lr_image, lr_note, download, status],
            api_name="upscale", preprocess=False, concurrency_id="gpu", concurrency_limit=GPU_CONCURRENCY,
            show_progress="full",
        )
        if offer_downloads:
            released.change(download_note, released, released_note, api_visibility="private")
            fetch.click(download_released, released, [category, released, fetch_status, run], api_name="download_released",
                        concurrency_id="download", concurrency_limit=1, show_progress="full")
            demo.load(on_page_load, None, [category, released], api_visibility="private")
    demo.queue(max_size=QUEUE_SIZE)
    return demo


def sizes_summary(table: Mapping[tuple[str, int], ModelSource]) -> str:
    """"(8×8 or 4×4 px → 64×64 px, 8×/16×)" for the served models; "" when there are none."""
    if not table:
        return ""
    ins = sorted({s.in_size for s in table.values()}, reverse=True)
    outs = sorted({s.out_size for s in table.values()})
    scales = sorted({s.scale for s in table.values()})
    return (f"({' or '.join(f'{n}×{n}' for n in ins)} px → {' or '.join(f'{n}×{n}' for n in outs)} px, "
            f"{'/'.join(f'{s}×' for s in scales)})")


def launch(models=None, *, host: str | None = None, port: int | None = None, share: bool = False, **kwargs):
    """Build and launch (blocking unless prevent_thread_lock=True). Gradio prints the local address."""
    import contextlib

    table = model_table(models)
    if not table:
        print(f"glean-hub demo: {NO_MODELS}", file=sys.stderr)
    demo = build_demo(table, downloads=models is None)
    with contextlib.redirect_stdout(share_hint(sys.stdout)):  # Gradio's hint names launch(share=True)
        return demo.launch(server_name=host, server_port=port, share=share, **{**LAUNCH_OPTIONS, **kwargs})


def build_arg_parser(prog: str = "glean-hub demo") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="GLEAN super-resolution demo (Gradio).")
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The demo's options; `glean-hub demo` uses the same ones."""
    p.add_argument("--host", default=None, help="address to serve on (default: 127.0.0.1, or $GRADIO_SERVER_NAME)")
    p.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free one, or $GRADIO_SERVER_PORT)")
    p.add_argument("--share", action="store_true", help="also open a public *.gradio.live link (off by default)")
    p.add_argument("--model", action="append", metavar="DIR_OR_REPO", default=None,
                   help="serve this model folder or Hub repo (category and scale from its config.json) instead of "
                        "the installed registry models; repeat for several")


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        launch(args.model, host=args.host, port=args.port, share=args.share)
    except GleanError as e:
        print(f"glean-hub demo: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
