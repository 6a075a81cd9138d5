"""glean_hub.images: loading (EXIF, bad files, bombs), mode conversions, tensor mapping. All images synthesised."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from glean_hub.errors import InputImageError
from glean_hub.images import (
    MAX_PIXELS,
    MAX_PIXELS_ENV,
    default_max_pixels,
    load_image,
    pil_to_tensor,
    split_alpha,
    tensor_to_pil,
    to_rgb,
)


def gradient(w: int = 30, h: int = 20) -> np.ndarray:
    """uint8 [h, w, 3], every pixel distinct enough to check geometry."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1).astype(np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (an 8-bit RGB decompression bomb) with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# --- loading -----------------------------------------------------------------------------------


def test_load_path_pil_and_array_agree(tmp_path):
    a = gradient()
    Image.fromarray(a).save(tmp_path / "x.png")
    for source in (tmp_path / "x.png", str(tmp_path / "x.png"), Image.fromarray(a), a):
        np.testing.assert_array_equal(np.asarray(load_image(source)), a)


def test_exif_orientation_is_applied(tmp_path):
    a = gradient(30, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(a).save(tmp_path / "r.png", exif=exif)
    img = load_image(tmp_path / "r.png")
    assert img.size == (20, 30)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(Image.fromarray(a).transpose(Image.Transpose.ROTATE_270)))


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no such file"),
        (b"", r"empty file \(0 bytes\)"),
        (b"hello, I am text\n", "not an image"),
    ],
)
def test_bad_files(tmp_path, content, words):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputImageError, match=words) as e:
        load_image(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputImageError, match="a folder"):
        load_image(tmp_path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(tmp_path, fmt):
    rng = np.random.default_rng(0)
    path = tmp_path / f"t.{fmt.lower()}"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        load_image(path)


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(InputImageError) as e:
        load_image(path)
    msg = str(e.value)
    assert "100000x100000" in msg and f"{MAX_PIXELS:,}" in msg
    assert "--max-pixels" in msg and MAX_PIXELS_ENV in msg
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's own guard is restored


def test_pixel_limit_argument_and_environment(tmp_path, monkeypatch):
    Image.fromarray(gradient(30, 20)).save(tmp_path / "x.png")
    with pytest.raises(InputImageError, match="600 pixels, more than the limit of 599"):
        load_image(tmp_path / "x.png", max_pixels=599)
    assert load_image(tmp_path / "x.png", max_pixels=600).size == (30, 20)
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    assert default_max_pixels() == 100
    with pytest.raises(InputImageError, match="limit of 100"):
        load_image(gradient(30, 20))
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(InputImageError, match="not a positive integer"):
        default_max_pixels()


@pytest.mark.parametrize(
    "obj, words",
    [
        (np.zeros((3, 20, 30), np.uint8), "channels first"),
        (np.zeros((20, 30, 2), np.uint8), "expected"),
        (np.zeros((20, 30, 3), np.int64), "unsupported dtype"),
        (np.full((20, 30, 3), 2.0, np.float32), "must lie"),
        (torch.zeros(1, 3, 8, 8), "torch.Tensor"),
        (b"\x89PNG", "raw bytes"),
        (42, "cannot use"),
    ],
)
def test_bad_objects(obj, words):
    with pytest.raises(InputImageError, match=words):
        load_image(obj)


# --- modes -------------------------------------------------------------------------------------


def test_gray_and_palette_to_rgb():
    a = gradient()
    g = Image.fromarray(a[:, :, 0])
    rgb = np.asarray(to_rgb(g))
    assert rgb.shape == (20, 30, 3) and (rgb == a[:, :, :1]).all()
    p = Image.fromarray(a).quantize(16)
    np.testing.assert_array_equal(np.asarray(to_rgb(p)), np.asarray(p.convert("RGB")))
    assert to_rgb(Image.fromarray(a[:, :, 0] > 128)).mode == "RGB"  # mode "1"


def test_sixteen_bit_is_scaled_not_clipped():
    v = np.array([[0, 257, 128 * 257, 65535, 1000]], np.uint16)
    img = load_image(v)
    assert img.mode == "I;16"
    rgb = np.asarray(to_rgb(img))
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 128, 255, 4])  # round(v / 257); PIL's convert("L") clips
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    i32 = Image.fromarray(v.astype(np.int32))  # mode "I": read as 16-bit
    np.testing.assert_array_equal(np.asarray(to_rgb(i32))[0, :, 0], [0, 1, 128, 255, 4])
    rgb16 = np.stack([v, v, v], -1)  # [H, W, 3] uint16 arrays, same scaling
    np.testing.assert_array_equal(np.asarray(load_image(rgb16))[0, :, 0], [0, 1, 128, 255, 4])
    with pytest.raises(InputImageError, match="32-bit"):
        to_rgb(Image.fromarray(np.array([[70000]], np.int32)))


def test_float_modes():
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    np.testing.assert_array_equal(np.asarray(to_rgb(f))[0, :, 1], [0, 128, 255])
    with pytest.raises(InputImageError, match=r"\[0, 1\]"):
        to_rgb(Image.fromarray(np.array([[0.0, 200.0]], np.float32)))
    np.testing.assert_array_equal(np.asarray(load_image(np.array([[0.0, 1.0]], np.float64)))[0], [0, 255])


def test_cmyk_and_ycbcr():
    a = gradient()
    for mode in ("CMYK", "YCbCr"):
        img = Image.fromarray(a).convert(mode)
        rgb = np.asarray(to_rgb(img)).astype(int)
        assert rgb.shape == a.shape and np.abs(rgb - a).max() <= 3


def test_unsupported_mode_is_explained():
    lab = Image.fromarray(gradient()).convert("LAB")
    with pytest.raises(InputImageError, match="unsupported image mode 'LAB'"):
        to_rgb(lab)


def test_split_alpha_modes():
    a = gradient()
    alpha = np.tile(np.arange(30, dtype=np.uint8) * 8, (20, 1))
    rgba = Image.fromarray(np.dstack([a, alpha]))
    rgb, al = split_alpha(rgba)
    assert rgb.mode == "RGB" and al.mode == "L"
    np.testing.assert_array_equal(np.asarray(al), alpha)
    np.testing.assert_array_equal(np.asarray(rgb), a)
    la = Image.merge("LA", (Image.fromarray(a[:, :, 0]), Image.fromarray(alpha)))
    rgb, al = split_alpha(la)
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(al), alpha)
    p = Image.fromarray(a).quantize(8)
    p.info["transparency"] = 0
    rgb, al = split_alpha(p)
    assert al is not None and set(np.unique(np.asarray(al))) <= {0, 255} and (np.asarray(al) == 0).any()
    assert split_alpha(Image.fromarray(a)) == (split_alpha(Image.fromarray(a))[0], None)
    premult = rgba.convert("RGBa")
    rgb, al = split_alpha(premult)
    np.testing.assert_array_equal(np.asarray(al), alpha)


# --- tensors -----------------------------------------------------------------------------------


def test_tensor_mapping_and_round_trip():
    a = gradient()
    t = pil_to_tensor(Image.fromarray(a))
    assert t.shape == (1, 3, 20, 30) and t.dtype == torch.float32
    assert t.min() == -1 and t.max() == 1
    torch.testing.assert_close(t[0, :, 3, 4], (torch.tensor(a[3, 4], dtype=torch.float32) / 255 - 0.5) / 0.5)
    np.testing.assert_array_equal(np.asarray(tensor_to_pil(t)), a)
    out = tensor_to_pil(torch.tensor([-2.0, 0.0, 2.0]).view(3, 1, 1).expand(3, 2, 2))  # clamped, rounded
    np.testing.assert_array_equal(np.asarray(out)[0, 0], [0, 128, 255])
    with pytest.raises(InputImageError, match="RGB"):
        pil_to_tensor(Image.fromarray(a[:, :, 0]))
