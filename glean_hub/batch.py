"""Many files through one GLEANPipeline: what `glean-hub upscale` runs.

    expand_inputs (files, folders, globs) -> plan_outputs (names, no silent overwrite)
    -> upscale_files: batch_size files at a time: preprocess each -> one forward -> postprocess + save each

A file that fails (unreadable, too small, ...) is reported as one line `<file>: error: <message>`
and skipped; the others are still processed. PNGs are written to a temporary name and renamed,
so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import glob
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import GleanError, GleanWarning, OutputPathError, os_error_message, write_line
from .images import IMAGE_EXTENSIONS, pil_to_tensor

GLOB_CHARS = "*?["


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (their image files, not recursive) and globs -> (files in order, [(input, problem)]).

    Files named explicitly are always tried, whatever their suffix; folders and globs yield image suffixes only.
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for arg in inputs:
        path = Path(arg).expanduser()
        try:
            path.exists()
        except OSError as e:  # e.g. a name longer than the filesystem allows
            problems.append((arg[:100] + ("..." if len(arg) > 100 else ""), os_error_message(e, "cannot be read")))
            continue
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _is_image_name(p))
            if not found:
                problems.append((arg, f"no images in this folder (looked for {', '.join(IMAGE_EXTENSIONS)})"))
            files += found
        elif any(ch in arg for ch in GLOB_CHARS):
            found = sorted(Path(p) for p in glob.glob(os.path.expanduser(arg), recursive=True))
            found = [p for p in found if p.is_file() and _is_image_name(p)]
            if not found:
                problems.append((arg, "no image files match this pattern"))
            files += found
        else:
            problems.append((arg, "no such file or folder"))
    unique, seen = [], set()
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


def output_name(path: Path, scale: int, output_size: int | None) -> str:
    """`<stem>_glean<scale>x.png`, or `<stem>_glean<scale>x_resized<N>.png` after a post-resize."""
    return f"{path.stem}_glean{scale}x" + (f"_resized{output_size}" if output_size else "") + ".png"


def lr_name(path: Path) -> str:
    return f"{path.stem}_lr.png"


@dataclass
class Job:
    source: Path
    output: Path
    lr_output: Path | None


def plan_outputs(files: list[Path], output_dir: Path, *, scale: int, output_size: int | None, save_lr: bool,
                 overwrite: bool) -> tuple[list[Job], list[tuple[str, str]]]:
    """One Job per file; name collisions and existing outputs (without overwrite) become problems."""
    jobs, problems, claimed = [], [], {}
    for f in files:
        out = output_dir / output_name(f, scale, output_size)
        lr = output_dir / lr_name(f) if save_lr else None
        targets = [t for t in (out, lr) if t is not None]
        clash = next((claimed[t] for t in targets if t in claimed), None)
        if clash is not None:
            problems.append((str(f), f"its output {out.name} would overwrite the one of {clash} (same file stem); "
                                     "rename one of them or run them separately"))
            continue
        folders = [t for t in targets if t.is_dir()]
        if folders:
            problems.append((str(f), f"{folders[0]} is a folder; --overwrite replaces files only: move it away"))
            continue
        existing = [t for t in targets if t.exists()]
        if existing and not overwrite:
            problems.append((str(f), f"{existing[0]} already exists; pass --overwrite to replace it"))
            continue
        for t in targets:
            claimed[t] = f
        jobs.append(Job(f, out, lr))
    return jobs, problems


def _save_png(image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclass
class BatchReport:
    done: list[tuple[Path, Path]] = field(default_factory=list)  # (input, output)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, message)
    seconds: float = 0.0

    def summary(self, output_dir: Path) -> str:
        total = len(self.done) + len(self.failed)
        per = f", {self.seconds / len(self.done):.2f} s/image" if self.done else ""
        tail = f" ({len(self.failed)} failed)" if self.failed else ""
        return f"upscaled {len(self.done)} of {total} images into {output_dir}/ in {self.seconds:.1f} s{per}{tail}"


def ensure_output_dir(path: str | os.PathLike, flag: str = "--output-dir") -> Path:
    """Create the output folder (with parents) and check that it is writable; failures are one OutputPathError line."""
    path = Path(path).expanduser()
    try:
        if path.exists() and not path.is_dir():
            raise OutputPathError(f"{flag} {path} is a file; give a folder")
        path.mkdir(parents=True, exist_ok=True)
    except OutputPathError:
        raise
    except OSError as e:
        raise OutputPathError(f"{flag} {os_error_message(e, str(path))}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} {path}: no permission to write there; choose another folder")
    return path


def _message(e: Exception) -> str:
    if isinstance(e, GleanError):
        return str(e)
    if isinstance(e, OSError):
        return f"cannot write the result: {os_error_message(e)}"
    return f"unexpected {type(e).__name__}: {e} (rerun with --debug for a traceback)"


def upscale_files(pipe, jobs: list[Job], *, mode: str = "crop", align_faces: bool = False, output_size: int | None = None,
                  batch_size: int = 8, max_pixels: int | None = None, debug: bool = False, progress: bool | None = None,
                  report: BatchReport | None = None, stream=None) -> BatchReport:
    """Run `jobs` through `pipe`, batch_size files per forward. Messages go to `stream` (stderr), one line each."""
    stream = stream or sys.stderr
    report = report or BatchReport()
    show_bar = len(jobs) > 1 if progress is None else progress
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), unit="img", file=stream, disable=not show_bar, desc="upscale")

    def say(line: str, file=None) -> None:
        file = file or stream
        with tqdm.external_write_mode(file=file) if show_bar else contextlib.nullcontext():  # the bar steps aside
            write_line(line, file)

    def fail(job: Job, e: Exception) -> None:
        message = _message(e).removeprefix(f"{job.source}: ")  # the line starts with the file already
        report.failed.append((str(job.source), message))
        say(f"{job.source}: error: {message}")
        if debug:
            traceback.print_exc(file=stream)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GleanWarning)  # printed below from info.warnings, once per file
        for i in range(0, len(jobs), batch_size):
            chunk, prepared = jobs[i : i + batch_size], []
            for job in chunk:  # 1-3. load + LR, per file
                try:
                    prepared.append((job, pipe.preprocess(job.source, mode=mode, align_faces=align_faces,
                                                          max_pixels=max_pixels, name=str(job.source))))
                except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
                    fail(job, e)
                    bar.update(1)
            if not prepared:
                continue
            try:  # 4. one forward for the batch
                sr = pipe.forward(torch.cat([pil_to_tensor(p.lr) for _, p in prepared]), batch_size=batch_size)
            except Exception as e:  # noqa: BLE001
                for job, _ in prepared:
                    fail(job, e)
                    bar.update(1)
                continue
            for (job, p), y in zip(prepared, sr):  # 5-6. geometry, alpha, save, per file
                try:
                    image, info = pipe.postprocess(p, y, output_size=output_size)
                    _save_png(image, job.output)
                    if job.lr_output is not None:
                        _save_png(p.lr, job.lr_output)
                    report.done.append((job.source, job.output))
                    for w in info.warnings:
                        say(f"{job.source}: warning: {w}")
                    if not show_bar:
                        say(f"{job.source} -> {job.output} ({info.policy}, {info.original_size[0]}x{info.original_size[1]} -> "
                            f"{info.output_size[0]}x{info.output_size[1]}, {info.effective_factor:.2f}x)", file=sys.stdout)
                except Exception as e:  # noqa: BLE001
                    fail(job, e)
                bar.update(1)
    bar.close()
    report.seconds += time.perf_counter() - start
    return report
