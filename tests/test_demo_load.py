"""Issue 14: the demo under 20 concurrent gradio_client users loses nothing.

20 threads x 3 requests of the same small PNG (so every result is identical: the case where Gradio's
content-hash cache paths collided and clients got truncated or empty files). Every response must arrive
complete and correct, within a bounded time.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from demo_helpers import TINY, load_app, png_size, serving, tiny_folders
from gradio_client import Client, handle_file
from PIL import Image

CLIENTS, REQUESTS = 20, 3


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    app = load_app()
    folders = tiny_folders(tmp_path_factory.mktemp("demo-models"))
    with serving(app, app.build_demo(folders, examples=False)) as url:
        yield url


def test_twenty_concurrent_clients_get_every_result_complete(url, tmp_path):
    image = tmp_path / "same.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(image)
    in_size, out_size = TINY[("faces", 4)]
    barrier = threading.Barrier(CLIENTS)

    def one_client(i: int) -> list:
        client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / f"c{i}"))
        barrier.wait(timeout=60)  # all 20 start together
        return [client.predict(handle_file(str(image)), "faces", 4, "crop", False, "float32", api_name="/upscale")
                for _ in range(REQUESTS)]

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for rs in pool.map(one_client, range(CLIENTS)) for r in rs]
    seconds = time.perf_counter() - start
    assert len(results) == CLIENTS * REQUESTS
    reference = None
    for (before, after), lr, _note, download, status in results:
        assert png_size(after) == png_size(before) == png_size(download) == (out_size, out_size)
        assert png_size(lr) == (in_size, in_size)
        with Image.open(after) as a:
            pixels = a.convert("RGB").tobytes()
        reference = reference or pixels
        assert pixels == reference  # the same input gives the same, complete result for everyone
        assert "faces-4x" in status
    assert seconds < 240, f"{CLIENTS * REQUESTS} requests took {seconds:.0f} s"
    print(f"{CLIENTS} clients x {REQUESTS} requests: {seconds:.1f} s")
