"""The Gradio demo (glean_hub/demo.py) driven through gradio_client on a loopback server, with tiny models.

The app is loaded the way `glean-hub demo` loads it (the packaged module), launched once per module on a free
127.0.0.1 port, and called at its stable `/upscale` endpoint like any gradio_client user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import numpy as np
import torch
from demo_helpers import EXAMPLE, TINY, free_port, load_app, png_size, serving, tiny_folders
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from glean_hub.cli import build_parser
from glean_hub.imresize import imresize_uint8


@pytest.fixture(scope="module")
def app():
    return load_app()


@pytest.fixture(scope="module")
def client(app, tmp_path_factory):
    folders = tiny_folders(tmp_path_factory.mktemp("demo-models"))
    demo = app.build_demo(folders)
    with serving(app, demo) as url:
        yield Client(url, verbose=False, analytics_enabled=False, download_files=tmp_path_factory.mktemp("downloads"))


def upscale(client, image, category, scale, mode="crop", align_faces=False, dtype="float32"):
    return client.predict(handle_file(str(image)), category, scale, mode, align_faces, dtype, api_name="/upscale")


@pytest.mark.parametrize("category, scale", list(TINY))
def test_upscale_endpoint_returns_pngs_of_the_right_sizes(client, category, scale):
    in_size, out_size = TINY[(category, scale)]
    start = time.perf_counter()
    (before, after), lr, lr_note, download, status = upscale(client, EXAMPLE, category, scale)
    latency = time.perf_counter() - start

    assert png_size(after) == (out_size, out_size)  # chelsea.png is 192x128; "crop" keeps its centre square
    assert png_size(before) == png_size(after)  # before/after slider: same size
    assert png_size(lr) == (in_size, in_size)  # exactly what the network saw
    assert png_size(download) == (out_size, out_size)
    with Image.open(download) as d, Image.open(after) as a:
        assert d.tobytes() == a.tobytes()  # the download is the full-resolution result, losslessly
    with Image.open(before) as b, Image.open(lr) as small:  # "before" is the MATLAB-bicubic upscale of the same LR
        bicubic = imresize_uint8(np.asarray(small.convert("RGB")), size=(out_size, out_size))
        assert np.array_equal(np.asarray(b.convert("RGB")), bicubic)
    assert "192×128" in lr_note and "crop" in lr_note
    assert f"Output: {out_size}×{out_size} px" in lr_note  # the output size, next to the result, and why
    assert f"always makes {out_size}×{out_size}" in lr_note
    assert "CPU" in status or "GPU" in status or "NVIDIA" in status
    assert "float32" in status and f"{category}-{scale}x" in status and "s" in status
    print(f"/upscale {category} {scale}x: {latency:.2f} s round trip ({status})")


def test_size_policies_keep_before_and_after_the_same_size(client):
    for mode, size in (("pad", (32, 21)), ("resize", (32, 32))):  # 192x128 -> pad keeps the aspect
        (before, after), *_ = upscale(client, EXAMPLE, "cats", 4, mode=mode)
        assert png_size(after) == size and png_size(before) == size


def test_bad_inputs_are_errors_and_the_app_keeps_serving(client, tmp_path):
    corrupt = tmp_path / "holiday.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(AppError, match="holiday.png"):  # named as uploaded, not by Gradio's cache path
        upscale(client, corrupt, "faces", 4)

    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (2, 2), (200, 100, 50)).save(tiny)
    with pytest.raises(AppError, match=r"tiny\.png\b.*2x2.*too small"):  # the pipeline's message
        upscale(client, tiny, "cats", 8)

    with pytest.raises(AppError, match=r"no 'cats' model for scale 16; available scales: \[4, 8\]"):
        upscale(client, EXAMPLE, "cats", 16)
    if not torch.cuda.is_available():
        with pytest.raises(AppError, match="precision 'float16' is not available on CPU.*choose one of auto, float32, bfloat16"):
            upscale(client, EXAMPLE, "cats", 8, dtype="float16")  # named as the radio buttons name it

    (_, after), *_ = upscale(client, EXAMPLE, "cats", 8)  # the next request still works
    assert png_size(after) == (32, 32)


def test_every_event_has_an_api_name(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/upscale", "/scales_for_category", "/model_notes"} <= set(endpoints)


def test_without_models_the_app_starts_and_says_so(app, no_network):
    demo = app.build_demo({})
    assert app.NO_MODELS in str(demo.config)  # the banner on the page
    with serving(app, demo) as url:  # and launching reaches nothing beyond loopback (no_network)
        client = Client(url, verbose=False, analytics_enabled=False)
        with pytest.raises(AppError, match="No GLEAN weights are installed"):
            client.predict(handle_file(str(EXAMPLE)), None, None, "crop", False, "auto", api_name="/upscale")
    assert no_network.attempts == []


def test_model_table_reads_folders_and_rejects_mislabelled_ones(app, tmp_path):
    folders = tiny_folders(tmp_path)
    table = app.model_table(list(folders.values()))
    assert list(table) == [("faces", 4), ("faces", 8), ("cats", 4), ("cats", 8)]
    assert table[("cats", 8)].in_size == 4 and table[("cats", 8)].out_size == 32
    with pytest.raises(Exception, match="is a 'cats' 4x model, but it was given as"):
        app.model_table({("faces", 4): folders[("cats", 4)]})


def test_cli_demo_command_defaults_to_loopback_without_share():
    args = build_parser().parse_args(["demo"])
    assert args.share is False and args.host is None and args.port is None and args.run.__name__ == "run_demo"
    args = build_parser().parse_args(["demo", "--share", "--port", "8080", "--model", "a", "--model", "b"])
    assert args.share and args.port == 8080 and args.model == ["a", "b"]



def test_cli_demo_starts_the_app_and_prints_its_address(tmp_path):
    folders = tiny_folders(tmp_path)
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "glean_hub.cli", "demo", "--port", str(port), "--model", str(folders[("cats", 8)])]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "public link" in line:  # printed right after "Running on local URL"
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output, output
        assert "gradio.live" not in output  # --share is off by default
        assert "--share" in output and "share=True" not in output  # the hint speaks the CLI's language
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False, download_files=str(tmp_path))
        (_, after), *_ = upscale(client, EXAMPLE, "cats", 8)
        assert png_size(after) == (32, 32)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_dtype_choices_follow_the_device_and_uncategorised_models_use_their_folder_name(app, tmp_path):
    assert app.dtype_choices(torch.device("cpu")) == ["auto", "float32", "bfloat16"]  # float16 only on a GPU
    assert app.dtype_choices(torch.device("cuda")) == ["auto", "float32", "bfloat16", "float16"]
    from conftest import tiny_model

    tiny_model(category=None).save_pretrained(tmp_path / "my-upscaler")
    table = app.model_table([tmp_path / "my-upscaler"])
    assert list(table) == [("my-upscaler", 4)]
    assert "GLEAN generic 4x" in app.model_card(table[("my-upscaler", 4)])  # the card, without its YAML header
