"""`glean-hub upscale` on a tiny random-weight model folder: outputs, flags, and one-line errors for bad input.

Every bad input gets exactly one `<file>: error: ...` line (no traceback) while the good files of
the same run are still written; exit codes: 0 all done, 1 some files failed, 2 usage/setup error.
"""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_model
from glean_hub.cli import main


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    chans = [0.5 + 0.35 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xx + rng.uniform(1, 3) * yy)) for _ in range(3)]
    return np.round(np.stack(chans, -1) * 255).astype(np.uint8)


def bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "faces-4x"
    tiny_model(category="faces").save_pretrained(path)  # 8 -> 32, scale 4
    return path


def truncated(path, fmt: str):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_FILES = {  # name -> (maker, words expected in its error line)
    "empty.png": (lambda p: p.write_bytes(b""), r"empty file \(0 bytes\)"),
    "cut_png.png": (lambda p: truncated(p, "PNG"), "truncated or corrupt"),
    "cut_jpeg.jpg": (lambda p: truncated(p, "JPEG"), "truncated or corrupt"),
    "notes.png": (lambda p: p.write_text("just some text\n"), "not an image"),
    "bomb.png": (lambda p: p.write_bytes(bomb_png(50_000, 50_000)), r"more than the limit .*--max-pixels"),
    "lab.tif": (lambda p: Image.fromarray(photo(16, 16)).convert("LAB").save(p), "unsupported image mode 'LAB'"),
    "tiny.png": (lambda p: Image.fromarray(photo(3, 3)).save(p), "too small"),
}


def upscale(capsys, *args):
    code = main(["upscale", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


def test_good_files_folder_and_glob(tmp_path, model_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(40, 24)).save(src / "a.png")
    Image.fromarray(photo(8, 8, 1)).save(src / "b.jpg", quality=98)
    Image.fromarray(photo(20, 20, 2)).save(tmp_path / "c.png")
    code, out, err = upscale(capsys, src, tmp_path / "*.png", "-o", tmp_path / "out", "--model", model_dir, "--save-lr")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a_glean4x.png", "a_lr.png", "b_glean4x.png", "b_lr.png", "c_glean4x.png", "c_lr.png"]
    assert Image.open(tmp_path / "out" / "a_glean4x.png").size == (32, 32)
    assert Image.open(tmp_path / "out" / "a_lr.png").size == (8, 8)
    assert "upscaled 3 of 3 images" in out and "s/image" in out
    assert "upscale" in err and "3/3" in err  # the progress bar, on stderr


def test_every_bad_input_is_one_line_and_the_rest_still_runs(tmp_path, model_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name, (make, _) in BAD_FILES.items():
        make(src / name)
    Image.fromarray(photo(40, 24)).save(src / "good.png")
    (tmp_path / "nothing_here").mkdir()
    args = [*sorted(src.iterdir()), tmp_path / "missing.png", tmp_path / "nothing_here"]
    code, out, err = upscale(capsys, *args, "-o", tmp_path / "out", "--model", model_dir)
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == len(BAD_FILES) + 2, err
    for name, (_, words) in BAD_FILES.items():
        line = next(line for line in lines if line.startswith(str(src / name) + ": error: "))
        assert re.search(words, line), line
    assert any(line.startswith(f"{tmp_path / 'missing.png'}: error: no such file") for line in lines)
    assert any(line.startswith(f"{tmp_path / 'nothing_here'}: error: no images in this folder") for line in lines)
    assert (tmp_path / "out" / "good_glean4x.png").is_file()
    assert "upscaled 1 of 10 images" in out and "9 failed" in out


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_bad_file_alone_exits_1(tmp_path, model_dir, capsys, name):
    make, words = BAD_FILES[name]
    make(tmp_path / name)
    code, out, err = upscale(capsys, tmp_path / name, "-o", tmp_path / "out", "--model", model_dir)
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and re.search(words, lines[0]) and lines[0].startswith(f"{tmp_path / name}: error: ")


def test_bomb_limit_can_be_raised_and_lowered(tmp_path, model_dir, capsys):
    Image.fromarray(photo(40, 24)).save(tmp_path / "a.png")
    code, _, err = upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--model", model_dir, "--max-pixels", "500")
    assert code == 1 and "960 pixels, more than the limit of 500" in err and "--max-pixels 960" in err
    code, _, _ = upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--model", model_dir, "--max-pixels", "960")
    assert code == 0


@pytest.mark.parametrize(
    "inputs, words",
    [
        (["missing.png"], "no images found"),
        (["emptydir"], "no images found"),
        (["*.webp"], "no images found"),
    ],
)
def test_nothing_to_do_exits_2(tmp_path, model_dir, capsys, monkeypatch, inputs, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emptydir").mkdir()
    code, out, err = upscale(capsys, *inputs, "-o", tmp_path / "out", "--model", model_dir)
    assert code == 2 and f"glean-hub upscale: error: {words}" in err
    assert len(err.strip().splitlines()) == 2  # the input's own line, then the summary error


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--scale", "8"], "4x model .* but scale=8 was requested"),
        (["--category", "cats"], "'faces' model, but category='cats'"),
        (["--dtype", "fp16", "--device", "cpu"], "fp16 is not supported on CPU.*bf16"),
    ],
)
def test_model_setup_errors_exit_2(tmp_path, model_dir, capsys, flags, words):
    Image.fromarray(photo(16, 16)).save(tmp_path / "a.png")
    code, out, err = upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--model", model_dir, *flags)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search("glean-hub upscale: error: .*" + words, err)


def test_no_model_given_exits_2(tmp_path, capsys):
    Image.fromarray(photo(16, 16)).save(tmp_path / "a.png")
    code, _, err = upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out")
    assert code == 2 and "--category" in err and "--model" in err


def test_existing_outputs_are_kept_without_overwrite(tmp_path, model_dir, capsys):
    Image.fromarray(photo(16, 16)).save(tmp_path / "a.png")
    out_file = tmp_path / "out" / "a_glean4x.png"
    assert upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--model", model_dir)[0] == 0
    out_file.write_bytes(b"keep me")
    code, _, err = upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--model", model_dir)
    assert code == 1 and "already exists; pass --overwrite" in err and out_file.read_bytes() == b"keep me"
    assert upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--model", model_dir, "--overwrite")[0] == 0
    assert Image.open(out_file).size == (32, 32)


def test_same_stem_twice_is_reported_not_overwritten(tmp_path, model_dir, capsys):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        Image.fromarray(photo(16, 16)).save(tmp_path / d / "a.png")
    code, _, err = upscale(capsys, tmp_path / "x" / "a.png", tmp_path / "y" / "a.png", "-o", tmp_path / "out", "--model", model_dir)
    assert code == 1 and "same file stem" in err and len(error_lines(err)) == 1


def test_mode_output_size_and_warnings(tmp_path, model_dir, capsys):
    Image.fromarray(photo(40, 24)).save(tmp_path / "a.png")
    code, out, err = upscale(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--model", model_dir,
                             "--mode", "resize", "--output-size", "50", "--batch-size", "2", "--dtype", "bf16")
    assert code == 0
    assert Image.open(tmp_path / "out" / "a_glean4x_resized50.png").size == (50, 50)
    assert f"{tmp_path / 'a.png'}: warning: " in err and "squashed" in err
    assert "resize" in out


def test_help_teaches_the_rules(capsys):
    with pytest.raises(SystemExit) as e:
        main(["upscale", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for words in ("crop", "pad", "resize", "smaller than in_size", "MATLAB", "bicubic", "realworld",
                  "--align-faces", "--save-lr", "--overwrite", "exit codes", "examples:"):
        assert words in text, words
