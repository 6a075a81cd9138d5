"""The released OpenMMLab checkpoints (and any `.pth` URL): download, verify, convert once, cache, load.

`GLEAN.from_pretrained("openmmlab/glean-cats-8x")`, `StyleGAN2Generator.from_pretrained(
"openmmlab/stylegan2-church-256")`, `glean-hub train --bank openmmlab/stylegan2-church-256` and
`GLEAN.from_pretrained("https://.../file.pth")` all go through `resolve()`, which returns a converted
folder (config.json + model.safetensors + README.md + source.json) that hub.py loads as any other.

1. The URL is the registry path (registry.RELEASED) on the host GLEAN_HUB_OPENMMLAB_ENDPOINT
   (default https://download.openmmlab.com), or the URL given.
2. A cached folder under `$HF_HOME/glean-hub/converted/` is used as it is: no network.
3. Otherwise (unless offline: HF_HUB_OFFLINE=1 or local_files_only=True), under a file lock (a second
   process waits, then finds the folder): stream the file with a progress bar into a temporary folder
   next to the cache, check the published sha256 prefix (registry entry, or a `-xxxxxxxx.pth` file name),
   convert it with the strict converter (torch.load(weights_only=True): no code runs), write the card,
   and rename the folder into place. Any failure removes the temporary folder: the cache holds complete
   folders or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from . import registry
from .errors import CheckpointError, GleanError, ModelNotFoundError
from .registry import ReleasedEntry

ENDPOINT_ENV = "GLEAN_HUB_OPENMMLAB_ENDPOINT"
DEFAULT_ENDPOINT = "https://download.openmmlab.com"
SOURCE_NAME = "source.json"
TIMEOUT_S = 60  # per socket operation, not for the whole file
CHUNK = 1 << 20
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8})\.pth$")
_RELEASED_PREFIXES = ("openmmlab/glean-", "openmmlab/stylegan2-")


def endpoint() -> str:
    return os.environ.get(ENDPOINT_ENV, DEFAULT_ENDPOINT).rstrip("/")


def url_of(entry: ReleasedEntry) -> str:
    return endpoint() + entry.path


def cache_root() -> Path:
    """`$HF_HOME/glean-hub/converted` (read at call time, so moving HF_HOME moves the cache)."""
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "glean-hub" / "converted"


def is_url(name: str) -> bool:
    return name.startswith(("http://", "https://"))


def expected_prefix(url: str) -> str | None:
    """The sha256 prefix a published file name carries (`name-xxxxxxxx.pth`), or None."""
    m = _HASH_SUFFIX.search(urlsplit(url).path)
    return m.group(1) if m else None


def _entry_for_url(url: str) -> ReleasedEntry | None:
    path = urlsplit(url).path
    return next((r for r in registry.RELEASED if r.path == path), None)


def _cache_key(entry: ReleasedEntry | None, url: str) -> str:
    if entry is not None:
        return f"{entry.name.replace('/', '--')}--{entry.sha256}"
    parts = urlsplit(url)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(parts.path).stem)[:80]
    return f"url--{parts.hostname or 'host'}--{stem}--{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def cached_folder(entry: ReleasedEntry) -> Path | None:
    folder = cache_root() / _cache_key(entry, url_of(entry))
    return folder if (folder / "config.json").is_file() else None


def _offline(local_files_only: bool) -> bool:
    from huggingface_hub import constants

    return local_files_only or bool(constants.HF_HUB_OFFLINE)


def resolve(name_or_path, local_files_only: bool = False):
    """A released name or a .pth URL -> its converted folder (downloaded and converted on first use);
    anything else is returned unchanged."""
    name = str(name_or_path)
    entry = registry.released_entry(name)
    if entry is None:
        if name.startswith(_RELEASED_PREFIXES):
            names = ", ".join(r.name for r in registry.RELEASED)
            raise ModelNotFoundError(f"unknown released model {name!r}; released names: {names}")
        if not (is_url(name) and urlsplit(name).path.endswith((".pth", ".pt"))):
            return name_or_path
        url = name
        entry = _entry_for_url(url)
    else:
        url = url_of(entry)
    if entry is not None and entry.unsupported:
        raise ModelNotFoundError(
            f"{entry.name} is not supported: {entry.unsupported}. To try it anyway: download {url} "
            "and run `glean-hub convert-bank FILE DIR`."
        )
    return ensure_converted(url, entry, local_files_only=local_files_only)


def ensure_converted(url: str, entry: ReleasedEntry | None = None, *, local_files_only: bool = False) -> Path:
    """The converted cache folder of `url`, made on first use (see the module docstring)."""
    from filelock import FileLock, Timeout

    root = cache_root()
    folder = root / _cache_key(entry, url)
    if (folder / "config.json").is_file():
        return folder
    label = entry.name if entry else url
    if _offline(local_files_only):
        raise ModelNotFoundError(
            f"{label} is not in the glean-hub cache ({folder}) and downloads are off (HF_HUB_OFFLINE=1 or "
            f"local_files_only=True). Run once online, or by hand: download {url}, then "
            f"`glean-hub {'convert-bank' if entry and entry.kind == 'bank' else 'convert'} FILE DIR` and load DIR."
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GleanError(f"cannot create the glean-hub cache {root}: {e.strerror or e}") from None
    lock = FileLock(str(root / f"{folder.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"glean-hub: waiting for another process that is converting {label} ...", file=sys.stderr)
        lock.acquire()
    try:
        if (folder / "config.json").is_file():  # the other process finished it
            return folder
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name[:40]}-", dir=root))
        try:
            checkpoint = tmp / urlsplit(url).path.rsplit("/", 1)[-1]
            info = download(url, checkpoint, entry.sha256 if entry else expected_prefix(url))
            _convert(checkpoint, tmp / "out", entry, info)
            checkpoint.unlink()
            if folder.exists():  # a folder without config.json is not ours to keep (made by hand, or damaged)
                shutil.rmtree(folder)
            os.replace(tmp / "out", folder)
        except OSError as e:
            raise GleanError(f"writing the converted {label} into {root} failed ({e.strerror or e}); nothing was cached") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()
    return folder


def download(url: str, dest: Path, sha256_prefix: str | None = None) -> dict:
    """Stream `url` into `dest` with a progress bar; check the length and the sha256 prefix.
    Returns {'url', 'sha256', 'bytes'}. On any failure `dest` may be partial: the caller removes it."""
    from huggingface_hub.utils import tqdm

    from . import __version__

    manual = "download it by hand and run `glean-hub convert FILE DIR`"
    request = urllib.request.Request(url, headers={"User-Agent": f"glean-hub/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise ModelNotFoundError(f"{url} was not found (HTTP 404); check the URL (or {ENDPOINT_ENV} for a mirror)") from None
        raise GleanError(f"the download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise GleanError(f"cannot reach {url} ({reason}); check the network or {ENDPOINT_ENV}, or {manual}") from None
    total = response.headers.get("Content-Length")
    total = int(total) if total and total.isdigit() else None
    digest, received = hashlib.sha256(), 0
    try:
        with response, open(dest, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                   desc=dest.name, disable=None) as bar:
            while block := response.read(CHUNK):
                f.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
    except (http.client.IncompleteRead, http.client.HTTPException, TimeoutError, ConnectionError) as e:
        got = received + len(getattr(e, "partial", b""))
        raise GleanError(f"the download of {url} was interrupted after {got:,} of {total or '?'} bytes "
                         f"({type(e).__name__}); nothing was cached, run again") from None
    if total is not None and received != total:
        raise GleanError(f"the download of {url} was interrupted after {received:,} of {total:,} bytes; nothing was cached, run again")
    sha = digest.hexdigest()
    if sha256_prefix and not sha.startswith(sha256_prefix):
        raise CheckpointError(
            f"{url}: sha256 starts with {sha[:8]}, expected {sha256_prefix} (a corrupt, truncated or different file; "
            f"{received:,} bytes); nothing was cached"
        )
    return {"url": url, "sha256": sha, "bytes": received}


def _kind(checkpoint: Path) -> str:
    from .convert import read_checkpoint

    state = read_checkpoint(checkpoint)
    return "bank" if any(k.startswith("generator_ema.") for k in state) else "glean"


def _convert(checkpoint: Path, out: Path, entry: ReleasedEntry | None, info: dict) -> None:
    """Strict conversion into `out`, with a card that names the source and the published numbers."""
    from . import __version__
    from .cards import CardFacts, bank_card, glean_card
    from .convert import convert_bank, convert_glean
    from .hub import CARD_NAME

    kind = entry.kind if entry else _kind(checkpoint)
    category = entry.category if entry else None
    source = (f"Released by OpenMMLab: <{info['url']}> (sha256 `{info['sha256']}`, {info['bytes']:,} bytes), "
              f"converted by glean-hub {__version__} with its strict converter (every tensor checked).")
    facts = CardFacts(training=source, data=(entry.notes + "; " if entry and entry.notes else "") + (
        "see the MMEditing/MMagic model zoo for data and licence terms" if entry else "see the source of the file"))
    if kind == "bank":
        report = convert_bank(checkpoint, out, category=category)
        card = bank_card(report.config, report.bank_sha256, facts)
    else:
        report = convert_glean(checkpoint, out, category=category, degradation=entry.degradation if entry else "bicubic")
        if entry is not None and entry.psnr is not None:
            facts.metrics = {"GLEAN (published by OpenMMLab)": {"PSNR (dB)": entry.psnr}}
        card = glean_card(report.config, facts, repo_id=entry.name if entry else info["url"])
    (out / CARD_NAME).write_text(card)
    (out / SOURCE_NAME).write_text(json.dumps({**info, "name": entry.name if entry else None, "kind": kind}, indent=2) + "\n")


@contextlib.contextmanager
def downloaded(url: str):
    """A `.pth` URL downloaded (and its `-xxxxxxxx.pth` sha256 prefix checked) into a temporary file, for
    `glean-hub convert URL OUT`; removed afterwards."""
    entry = _entry_for_url(url)
    with tempfile.TemporaryDirectory(prefix="glean-hub-") as tmp:
        path = Path(tmp) / (urlsplit(url).path.rsplit("/", 1)[-1] or "checkpoint.pth")
        download(url, path, entry.sha256 if entry else expected_prefix(url))
        yield path


def cache_state(entry: ReleasedEntry) -> str:
    """'cached (N MB)' or 'download ~N MB', for `glean-hub models`."""
    folder = cached_folder(entry)
    if folder is None:
        return f"download ~{entry.download_mb} MB"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return f"cached ({size / 1e6:,.0f} MB)"


@contextlib.contextmanager
def local_checkpoint(name: str):
    """A local path as it is; a URL downloaded into a temporary file (see `downloaded`)."""
    if is_url(str(name)):
        with downloaded(str(name)) as path:
            yield path
    else:
        yield name


def released_lines() -> list[str]:
    """One line per released name: kind, category, sizes, published PSNR, cache state or download size."""
    lines = []
    for r in registry.RELEASED:
        sizes = f"{r.in_size:>3} -> {r.out_size:<4}" if r.in_size else f"bank {r.out_size:<6}"
        psnr = f"PSNR {r.psnr:.2f} dB" if r.psnr else ""
        state = "not supported (not square)" if r.unsupported else cache_state(r)
        lines.append(f"{r.category:<9} {f'{r.scale}x' if r.scale else '':>3}  {sizes} {r.name:<36} {state:<22} {psnr}".rstrip())
    return lines
