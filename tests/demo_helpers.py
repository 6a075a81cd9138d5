"""Helpers for the demo tests: load the demo app (glean_hub/demo.py) as the CLI does, tiny model folders, a loopback server."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported anywhere

from conftest import tiny_model  # noqa: E402

from glean_hub.cli import load_demo_app  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "glean_hub" / "demo_examples" / "chelsea.png"  # 192x128, CC0
# (category, scale) -> (in_size, out_size) of the tiny models the demo tests serve
TINY = {("faces", 4): (8, 32), ("faces", 8): (4, 32), ("cats", 4): (8, 32), ("cats", 8): (4, 32)}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_app():
    return load_demo_app()


def tiny_folders(root: Path) -> dict[tuple[str, int], Path]:
    """Save a tiny random-weight model for each entry of TINY; returns the mapping build_demo takes."""
    folders = {}
    for i, ((category, scale), (in_size, out_size)) in enumerate(TINY.items()):
        folder = root / f"{category}-{scale}x"
        tiny_model(seed=i, in_size=in_size, out_size=out_size, category=category).save_pretrained(folder)
        folders[(category, scale)] = folder
    return folders


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app, demo):
    """Launch `demo` on a free loopback port without blocking; yields its URL; closes it afterwards."""
    try:
        demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                    share=False, **app.LAUNCH_OPTIONS)
        yield demo.local_url
    finally:
        demo.close()


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG file; fails unless the file really is a PNG."""
    from PIL import Image

    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG (first bytes {data[:8]!r})"
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size
