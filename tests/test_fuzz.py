"""Issue 14: generated bad inputs (a fixed seed; several hundred in all) through the Python API, config and
weights folders, `glean-hub convert` and `glean-hub upscale`.

Each input must give either a correct result or one line of the project's own exception types (`GleanError`
and subclasses; the CLI: `... error: ...` lines, no traceback), quickly. Inputs that happen to be valid (a bit
flip inside tensor data, a category that is allowed to be null) may load: the point is no crash, hang or raw
exception.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import random
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_model
from PIL import Image

from glean_hub import GLEAN, GLEANPipeline
from glean_hub.cli import main
from glean_hub.convert import convert_bank, convert_glean
from glean_hub.errors import GleanError

pytestmark = [pytest.mark.usefixtures("no_network"), pytest.mark.filterwarnings("ignore::glean_hub.errors.GleanWarning"),
              pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")]
SEED = 14


class Outcomes:
    """Runs cases; collects every case that raised something other than a one-line GleanError, or was slow."""

    def __init__(self) -> None:
        self.count, self.errors, self.problems = 0, 0, []

    def run(self, label: str, call, *, seconds: float = 10.0) -> None:
        self.count += 1
        start = time.perf_counter()
        try:
            call()
        except GleanError as e:
            self.errors += 1
            text = str(e)
            if "\n" in text or "\x1b" in text or not text.strip():
                self.problems.append(f"{label}: not one line: {text!r}")
        except Exception as e:  # noqa: BLE001 - what the test is looking for
            self.problems.append(f"{label}: raw {type(e).__name__}: {str(e)[:200]}")
        if time.perf_counter() - start > seconds:
            self.problems.append(f"{label}: took {time.perf_counter() - start:.1f} s")

    def check(self, at_least: int) -> None:
        assert not self.problems, "\n".join(self.problems)
        assert self.count >= at_least and self.errors >= at_least // 2, (self.count, self.errors)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_bytes(fmt: str, size=(24, 24), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def bad_image_files(rng: random.Random) -> dict[str, bytes]:
    """~90 broken or hostile image files."""
    files: dict[str, bytes] = {}
    formats = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tif": "TIFF", "webp": "WEBP", "ppm": "PPM"}
    for ext, fmt in formats.items():
        good = image_bytes(fmt, seed=rng.randrange(1000))
        for i in range(4):  # truncated at random points
            files[f"cut{i}.{ext}"] = good[: rng.randrange(1, len(good))]
        for i in range(3):  # random bytes after a valid header
            files[f"garbage{i}.{ext}"] = good[:16] + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        for i in range(3):  # bytes flipped anywhere
            data = bytearray(good)
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            files[f"flip{i}.{ext}"] = bytes(data)
    png = image_bytes("PNG")
    for i, (kind, payload) in enumerate([(b"zTXt", b"k\0\0" + zlib.compress(b"a" * (9 << 20))),
                                         (b"iCCP", b"p\0\0" + zlib.compress(b"a" * (9 << 20))),
                                         (b"iTXt", b"k\0\1\0\0\0" + zlib.compress(b"b" * (9 << 20)))]):
        files[f"chunk{i}.png"] = png[:33] + png_chunk(kind, payload) + png[33:]
    for w, h in [(0, 5), (5, 0), (2**31 - 1, 2**31 - 1), (100_000, 100_000), (1, 10**9)]:
        files[f"ihdr_{w}x{h}.png"] = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                                      + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))
    for i, head in enumerate([b"P6\n\x1b[31m\xff\xfe" + b"z" * 300 + b" 255\n", b"P6\n-5 -5\n255\n", b"P6\n99999999 99999999\n255\n",
                              b"P5\n4 4\n0\n", b"P6\n4 4\n70000\n", b"P1\n" + b"9" * 1000]):
        files[f"header{i}.ppm"] = head + b"\0" * 64
    files["empty.png"] = b""
    files["text.jpg"] = b"<html>not an image</html>"
    files["nul.png"] = b"\0" * 1000
    files["only_magic.png"] = b"\x89PNG\r\n\x1a\n"
    files["only_soi.jpg"] = b"\xff\xd8\xff"
    return files


def bad_arrays(rng: np.random.Generator) -> list[object]:
    return [
        np.array(5, np.uint8), np.zeros(7, np.uint8), np.zeros((2, 2, 2, 2), np.uint8), np.zeros((0, 5), np.uint8),
        np.zeros((5, 0, 3), np.uint8), np.zeros((16, 16, 2), np.uint8), np.zeros((3, 16, 16), np.uint8),
        np.zeros((16, 16, 5), np.uint8), np.zeros((16, 16), bool), np.zeros((16, 16), np.complex64),
        np.zeros((16, 16), object), np.zeros((16, 16), np.int64), np.full((16, 16, 3), np.nan, np.float32),
        np.full((16, 16, 3), np.inf, np.float64), -np.ones((16, 16, 3), np.float32), np.full((16, 16), 2.0, np.float16),
        np.broadcast_to(np.uint8(0), (100_000, 100_000, 3)), np.zeros((2, 2, 3), np.uint8),
        rng.integers(0, 256, (1, 4000, 3), dtype=np.uint8), np.array([["a", "b"], ["c", "d"]]),
        torch.zeros(1, 3, 8, 8), b"\x89PNG", bytearray(b"x"), 5, 3.5, None, object(), [], [None], {"a": 1},
    ]


@pytest.fixture(scope="module")
def pipe():
    return GLEANPipeline(tiny_model(category="faces"), device="cpu")


def test_fuzz_images_through_the_api(pipe, tmp_path):
    rng, nrng = random.Random(SEED), np.random.default_rng(SEED)
    runs = Outcomes()
    for name, data in bad_image_files(rng).items():
        path = tmp_path / name
        path.write_bytes(data)
        runs.run(f"file {name}", lambda: pipe(str(path)))
        runs.run(f"lazy PIL {name}", lambda: pipe(Image.open(io.BytesIO(data))) if _opens(data) else pipe(str(path)))
    for i, arr in enumerate(bad_arrays(nrng)):
        runs.run(f"array {i} {type(arr).__name__}", lambda: pipe(arr))
    closed = Image.open(io.BytesIO(image_bytes("PNG")))
    closed.close()
    runs.run("closed PIL", lambda: pipe(closed))
    good = np.zeros((16, 16, 3), np.uint8)
    for kwargs in [dict(mode="x"), dict(mode=None), dict(mode=["crop"]), dict(output_size=0), dict(output_size=-1),
                   dict(output_size=100_000), dict(output_size=(0, 5)), dict(output_size=(10**6, 10**6)), dict(output_size="a"),
                   dict(output_size=2.5), dict(output_size=True), dict(output_size=(1, 2, 3)), dict(batch_size=0),
                   dict(batch_size=-3), dict(batch_size=1.5), dict(batch_size="8"), dict(batch_size=True),
                   dict(output_type="tensor"), dict(output_type=None), dict(max_pixels=10), dict(max_pixels=-1)]:
        runs.run(f"kwargs {kwargs}", lambda: pipe(good, **kwargs))
    runs.run("empty list", lambda: pipe([]))
    runs.check(at_least=120)


def _opens(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data))
        return True
    except Exception:  # noqa: BLE001
        return False


BAD_VALUES = [None, "x", "", -1, 0, 3, 2**63, 1e308, math.nan, math.inf, -math.inf, True, [], {}, [1, "a"], "a" * 5000]


def test_fuzz_config_folders(tmp_path):
    rng = random.Random(SEED)
    runs = Outcomes()
    base = tiny_config().to_dict()
    fields = [(k, False) for k in base if k not in ("kind", "bank")] + [(k, True) for k in base["bank"] if k != "kind"]
    cases = [(f, bank, v) for f, bank in fields for v in BAD_VALUES]
    rng.shuffle(cases)
    for i, (field, in_bank, value) in enumerate(cases[:110]):
        data = json.loads(json.dumps(base))
        (data["bank"] if in_bank else data)[field] = value
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(data))
        runs.run(f"config {'bank.' if in_bank else ''}{field}={str(value)[:30]}", lambda: GLEAN.from_pretrained(str(folder)),
                 seconds=5)
    for i, raw in enumerate([b"", b"[]", b"null", b"5", b'"s"', b"\xff" * 10, b"{" * 50_000, b'{"kind": "glean"}',
                             b'{"kind": "stylegan2-bank"}', json.dumps({**base, "bank": base}).encode(),
                             json.dumps({**base, "scale": 3}).encode(), b'{"a": NaN}', b'{"a": Infinity}']):
        folder = tmp_path / f"raw{i}"
        folder.mkdir()
        (folder / "config.json").write_bytes(raw)
        runs.run(f"raw config {raw[:20]!r}", lambda: GLEAN.from_pretrained(str(folder)), seconds=5)
    runs.check(at_least=110)


def test_fuzz_weights_folders(tmp_path):
    rng = random.Random(SEED)
    runs = Outcomes()
    tiny_model().save_pretrained(tmp_path / "good")
    config = (tmp_path / "good" / "config.json").read_text()
    good = (tmp_path / "good" / "model.safetensors").read_bytes()
    header_len = int.from_bytes(good[:8], "little")
    variants = [good[: rng.randrange(len(good))] for _ in range(10)]
    variants += [rng.randrange(2**64).to_bytes(8, "little") + good[8:] for _ in range(5)]
    for _ in range(10):  # flips inside the JSON header
        data = bytearray(good)
        for _ in range(rng.randrange(1, 5)):
            data[8 + rng.randrange(header_len)] = rng.randrange(256)
        variants.append(bytes(data))
    variants += [b"", b"\0" * 8, bytes(rng.randrange(256) for _ in range(500)), (2**63).to_bytes(8, "little") + b"{}"]
    for i, data in enumerate(variants):
        folder = tmp_path / f"w{i}"
        folder.mkdir()
        (folder / "config.json").write_text(config)
        (folder / "model.safetensors").write_bytes(data)
        runs.run(f"weights variant {i}", lambda: GLEAN.from_pretrained(str(folder)))
    for name in [None, 123, 4.5, b"faces", "", " ", "a" * 300, "FACES", "faces/../../etc", "~nobody/x", "x" * 97 + "/y",
                 str(tmp_path / "good" / "model.safetensors"), "owner/repo/extra/parts", "\0", "fa\nces"]:
        runs.run(f"name {str(name)[:40]!r}", lambda: GLEAN.from_pretrained(name, scale=8))
    for kwargs in [dict(device="nonsense"), dict(device=-1), dict(device="cuda:99"), dict(torch_dtype=torch.int8),
                   dict(torch_dtype="int4"), dict(torch_dtype=3), dict(scale="8"), dict(scale=3), dict(scale=-8),
                   dict(category="dogs"), dict(category=5)]:
        runs.run(f"kwargs {kwargs}", lambda: GLEAN.from_pretrained("faces", **{"scale": 8, **kwargs}))
    runs.check(at_least=50)


def test_fuzz_convert(tmp_path):
    rng = random.Random(SEED)
    runs = Outcomes()

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    sources = {
        "random.pth": bytes(rng.randrange(256) for _ in range(2000)),
        "empty.pth": b"",
        "evil.pth": pickle.dumps({"state_dict": {"a": Evil()}}),
    }
    for i, obj in enumerate([[], {}, {"state_dict": {}}, {"state_dict": {"a": "b"}}, {"state_dict": {"a": torch.zeros(2)}},
                             {"generator.x": torch.zeros(3)}, torch.zeros(3), {"state_dict": [torch.zeros(1)]}]):
        buf = io.BytesIO()
        torch.save(obj, buf)
        sources[f"obj{i}.pth"] = buf.getvalue()
        sources[f"obj{i}_cut.pth"] = buf.getvalue()[: len(buf.getvalue()) // 2]
    (tmp_path / "afile").write_text("x")
    for name, data in sources.items():
        (tmp_path / name).write_bytes(data)
        for out in (tmp_path / "out", tmp_path / "afile"):
            runs.run(f"convert {name} -> {out.name}", lambda: convert_glean(tmp_path / name, out))
        runs.run(f"convert-bank {name}", lambda: convert_bank(tmp_path / name, tmp_path / "bank"))
    runs.run("missing", lambda: convert_glean(tmp_path / "nope.pth", tmp_path / "out"))
    runs.run("name too long", lambda: convert_glean(tmp_path / ("n" * 300 + ".pth"), tmp_path / "out"))
    runs.run("bank-out is a file", lambda: convert_glean(tmp_path / "random.pth", tmp_path / "o", bank_dir=tmp_path / "afile"))
    assert not (tmp_path / "out").exists()  # nothing half-written
    runs.check(at_least=55)


def test_fuzz_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save("ok.png")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.png").write_bytes(image_bytes("PNG")[:40])
    os.makedirs("taken/ok_glean8x.png")
    long = "l" * 300
    model = ["--category", "faces", "--scale", "8"]
    argvs = [
        ["upscale", "ok.png", "-o", "afile/sub", *model], ["upscale", "ok.png", "-o", "afile", *model],
        ["upscale", "ok.png", "-o", long, *model], ["upscale", long + ".png", "-o", "out", *model],
        ["upscale", "ok.png", "-o", "out", "--category", long, "--scale", "8"],
        ["upscale", "ok.png", "-o", "out", "--category", "", "--scale", "8"],
        ["upscale", "ok.png", "-o", "out", "--category", ".", "--scale", "8"],
        ["upscale", "ok.png", "-o", "out", "--category", "dogs", "--scale", "8"],
        ["upscale", "ok.png", "-o", "out", "--category", "faces", "--scale", "3"],
        ["upscale", "ok.png", "-o", "out", "--model", "afile"], ["upscale", "ok.png", "-o", "out", "--model", long],
        ["upscale", "ok.png", "-o", "out", *model, "--output-size", "100000"],
        ["upscale", "ok.png", "-o", "taken", *model, "--overwrite"], ["upscale", "ok.png", "-o", "taken", *model],
        ["upscale", "bad.png", "nothing.png", "'*.nope'", "-o", "out2", *model],
        ["upscale", "ok.png", "-o", "out3", *model, "--device", "nonsense"],
        ["upscale", "ok.png", "-o", "out3", *model, "--dtype", "fp16", "--device", "cpu"],
        ["upscale", "ok.png", "-o", "out4", *model, "--max-pixels", "10"],
        ["convert", "afile", "out5"], ["convert", "ok.png", "afile"], ["convert", long, "out5"],
        ["convert-bank", "afile", "afile"], ["upscale", "afile", "-o", "out6", *model],
    ]
    runs = 0
    for argv in argvs:
        code = main(argv)
        captured = capsys.readouterr()
        runs += 1
        assert code in (0, 1, 2), (argv, code, captured.err)
        assert "Traceback" not in captured.err and "\x1b" not in captured.err, (argv, captured.err)
        lines = [line for line in captured.err.splitlines() if line.strip() and "upscale:" not in line[:8]]
        assert all(": error: " in line or ": warning: " in line for line in lines), (argv, captured.err)
        if code == 2:
            assert captured.err.startswith(f"glean-hub {argv[0]}: error: ") or ": error: " in captured.err, (argv, captured.err)
    assert runs == len(argvs)
