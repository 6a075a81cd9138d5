"""GLEANPipeline on tiny random-weight models (in 8 -> out 32): size policies, exact LR, batching, dtypes,
modes and alpha, the degradation guard, post-resize. All images are synthesised here."""

from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config, tiny_model
from glean_hub import GLEAN
from glean_hub.degradation import blockiness, jpeg_quality, noise_sigma, luma
from glean_hub.errors import ConfigError, GleanWarning, InputImageError
from glean_hub.images import pil_to_tensor
from glean_hub.imresize import imresize_uint8
from glean_hub.pipeline import GLEANPipeline, min_side


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A clean, smooth 'photo' (low-frequency colour waves), uint8 [h, w, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(1, 3), rng.uniform(1, 3), rng.uniform(0, 6)
        chans.append(0.5 + 0.35 * np.sin(2 * np.pi * (fx * xx + fy * yy) + ph))
    return np.round(np.stack(chans, -1) * 255).astype(np.uint8)


def noisy(a: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).round().astype(np.uint8)


def jpeg(a: np.ndarray, quality: int) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


@pytest.fixture(scope="module")
def pipe() -> GLEANPipeline:
    return GLEANPipeline(tiny_model(category="faces"), device="cpu")


SMALLER = "is smaller than the"  # the warning when the output is smaller than the region it replaces


def run(pipe, image, **kwargs):
    """Call the pipeline and return (output, GleanWarning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipe(image, **kwargs)
    return out, [str(w.message) for w in caught if issubclass(w.category, GleanWarning)]


# --- size policies -----------------------------------------------------------------------------


def test_passthrough_uses_the_input_as_is(pipe):
    a = photo(8, 8)
    out, warned = run(pipe, a)
    assert out.info[0].policy == "passthrough" and not warned
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), a)
    assert out.images[0].size == (32, 32) and out.info[0].effective_factor == 4


def test_crop_is_the_centre_square_then_matlab_bicubic(pipe):
    a = photo(40, 24)
    out, warned = run(pipe, a, mode="crop")
    info = out.info[0]
    assert info.policy == "crop" and info.box == (8, 0, 32, 24) and not warned
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), imresize_uint8(a[:, 8:32], size=(8, 8)))
    assert out.images[0].size == (32, 32)
    assert info.effective_factor == pytest.approx(32 / 24) and info.original_size == (40, 24)
    assert "centre square" in info.reason and "MATLAB" in info.reason


def test_pad_reflects_and_output_keeps_the_aspect(pipe):
    a = photo(40, 24)
    out, warned = run(pipe, a, mode="pad")
    info = out.info[0]
    assert info.policy == "pad" and not [w for w in warned if SMALLER not in w]
    assert any(SMALLER in w for w in warned)  # 40x24 -> 32x19: said, see test_output_smaller_than_its_region_warns
    square = np.pad(a, ((8, 8), (0, 0), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), imresize_uint8(square, size=(8, 8)))
    assert info.box == (0, -8, 40, 32)
    w, h = out.images[0].size
    assert (w, h) == (32, round(24 * 32 / 40)) and abs(w / h - 40 / 24) < 0.05
    # the kept rows are the image's rows of the square output
    full = pipe.forward(pil_to_tensor(out.lr_images[0]))[0]
    rows = ((full[:, 6:6 + h] + 1) / 2).clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(out.images[0]), rows)


def test_resize_squashes_with_a_warning(pipe):
    a = photo(40, 24)
    out, warned = run(pipe, a, mode="resize")
    assert out.info[0].policy == "resize" and out.images[0].size == (32, 32)
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), imresize_uint8(a, size=(8, 8)))
    warned = [w for w in warned if SMALLER not in w]  # 40x24 -> 32x32 is also smaller (said separately)
    assert len(warned) == 1 and "squashed" in warned[0] and "distorted" in warned[0]
    assert warned[0].split(": ", 1)[1] in out.info[0].warnings
    _, warned = run(pipe, photo(24, 24), mode="resize")  # square: nothing is distorted
    assert not warned


def test_smaller_than_in_size_is_enlarged_with_a_warning(pipe):
    a = photo(6, 6)
    out, warned = run(pipe, a)
    info = out.info[0]
    assert info.upsampled_input and info.effective_factor == pytest.approx(32 / 6)
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), imresize_uint8(a, size=(8, 8)))
    assert len(warned) == 1 and "5.3x instead of 4x" in warned[0] and "adds no detail" in warned[0]


def test_too_small_is_an_error(pipe):
    assert min_side(pipe.config) == 4 and min_side(tiny_config(in_size=32, out_size=64)) == 8
    with pytest.raises(InputImageError, match=r"3x10 is too small .* at least 4 px"):
        pipe(photo(3, 10))


def test_lr_is_exactly_the_network_input(pipe):
    seen = []
    handle = pipe.network.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        images = [photo(40, 24), photo(8, 8, 1), photo(6, 9, 2), photo(17, 50, 3)]
        out = pipe(images, mode="pad", batch_size=3)
    finally:
        handle.remove()
    net_input = torch.cat(seen)
    expected = torch.cat([pil_to_tensor(lr) for lr in out.lr_images])
    assert torch.equal(net_input, expected)
    assert all(lr.mode == "RGB" and lr.size == (8, 8) for lr in out.lr_images)
    assert [x.shape[0] for x in seen] == [3, 1]  # batched


def test_batching_matches_one_by_one(pipe):
    images = [photo(40, 24), photo(8, 8, 1), photo(12, 20, 3), photo(64, 64, 4)]
    together = pipe(images, batch_size=8, output_type="np").images
    alone = [pipe(img, batch_size=1, output_type="np").images[0] for img in images]
    for a, b in zip(together, alone):
        assert a.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_np_output_matches_pil_output(pipe):
    out_np = pipe(photo(20, 20), output_type="np").images[0]
    out_pil = pipe(photo(20, 20)).images[0]
    assert 0 <= out_np.min() and out_np.max() <= 1
    np.testing.assert_array_equal(np.round(out_np * 255).astype(np.uint8), np.asarray(out_pil))


def test_arguments_are_checked(pipe):
    with pytest.raises(ValueError, match="mode='square'"):
        pipe(photo(8, 8), mode="square")
    with pytest.raises(ValueError, match="batch_size"):
        pipe(photo(8, 8), batch_size=0)
    with pytest.raises(ValueError, match="output_size"):
        pipe(photo(8, 8), output_size=-3)
    with pytest.raises(InputImageError, match="empty list"):
        pipe([])


# --- device and dtype --------------------------------------------------------------------------


def test_bf16_runs_on_cpu():
    p = GLEANPipeline(tiny_model(), device="cpu", dtype="bf16")
    assert next(p.model.parameters()).dtype == torch.bfloat16
    out = p(photo(20, 20))
    assert out.images[0].size == (32, 32)
    ref = GLEANPipeline(tiny_model(), device="cpu")(photo(20, 20), output_type="np").images[0]
    got = np.asarray(out.images[0]).astype(np.float32) / 255
    assert np.abs(got - ref).mean() < 0.05  # bf16 is close to fp32


def test_fp16_on_cpu_is_an_error_not_a_fallback():
    with pytest.raises(ConfigError, match="bf16"):
        GLEANPipeline(tiny_model(), device="cpu", dtype="fp16")
    with pytest.raises(ConfigError, match="fp32"):
        GLEANPipeline(tiny_model(), device="cpu", dtype="int8")


def test_default_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    p = GLEANPipeline(tiny_model())
    assert p.device.type == "cpu" and p.dtype == torch.float32


def test_from_pretrained_checks_scale_and_category(tmp_path):
    tiny_model(category="faces").save_pretrained(tmp_path / "m")
    p = GLEANPipeline.from_pretrained(tmp_path / "m", scale=4, category="faces", device="cpu")
    assert p.config.scale == 4
    with pytest.raises(ConfigError, match="4x model"):
        GLEANPipeline.from_pretrained(tmp_path / "m", scale=8, device="cpu")
    with pytest.raises(ConfigError, match="'faces' model"):
        GLEANPipeline.from_pretrained(tmp_path / "m", category="cats", device="cpu")


# --- modes and alpha ---------------------------------------------------------------------------


def test_gray_input_gives_rgb(pipe):
    out = pipe(Image.fromarray(photo(20, 20)[:, :, 0]))
    assert out.images[0].mode == "RGB"
    lr = np.asarray(out.lr_images[0])
    assert (lr[..., 0] == lr[..., 1]).all()


@pytest.mark.parametrize("mode, size", [("crop", (32, 32)), ("pad", (32, 19)), ("resize", (32, 32))])
def test_rgba_alpha_is_upscaled_and_reattached(pipe, mode, size):
    a = photo(40, 24)
    alpha = np.tile(np.linspace(0, 255, 40).round().astype(np.uint8), (24, 1))
    out = pipe(Image.fromarray(np.dstack([a, alpha])), mode=mode)
    img = out.images[0]
    assert img.mode == "RGBA" and img.size == size
    region = alpha[:, 8:32] if mode == "crop" else alpha
    np.testing.assert_array_equal(np.asarray(img.getchannel("A")), imresize_uint8(region, size=size[::-1]))
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), np.asarray(pipe(a, mode=mode).lr_images[0]))
    assert out.lr_images[0].mode == "RGB"


def test_la_and_palette_transparency_keep_alpha(pipe):
    a = photo(16, 16)
    la = Image.merge("LA", (Image.fromarray(a[:, :, 0]), Image.fromarray(np.full((16, 16), 200, np.uint8))))
    img = pipe(la).images[0]
    assert img.mode == "RGBA" and (np.asarray(img.getchannel("A")) == 200).all()
    p = Image.fromarray(a).quantize(8)
    p.info["transparency"] = 0
    assert pipe(p).images[0].mode == "RGBA"


def test_cmyk_and_16_bit_inputs(pipe):
    a = photo(16, 16)
    out = pipe(Image.fromarray(a).convert("CMYK"))
    assert np.abs(np.asarray(out.lr_images[0]).astype(int) - imresize_uint8(a, size=(8, 8))).max() <= 3
    g16 = a[:, :, 0].astype(np.uint16) * 257  # the same gray image at 16 bit
    lr16 = np.asarray(pipe(g16).lr_images[0])
    lr8 = np.asarray(pipe(a[:, :, 0]).lr_images[0])
    np.testing.assert_array_equal(lr16, lr8)


def test_exif_orientation_is_honoured(pipe, tmp_path):
    a = photo(40, 24)
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 CCW to display
    Image.fromarray(a).save(tmp_path / "o.png", exif=exif)
    out = pipe(tmp_path / "o.png", mode="pad")
    assert out.info[0].original_size == (24, 40) and out.images[0].size == (19, 32)
    upright = np.asarray(Image.fromarray(a).transpose(Image.Transpose.ROTATE_90))
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), np.asarray(pipe(upright, mode="pad").lr_images[0]))


def test_grayscale_bank_gives_gray_for_gray_and_colour_for_colour():
    cfg = tiny_config()
    model = GLEAN(cfg.replace(bank=dataclasses.replace(cfg.bank, grayscale=True))).eval()
    pipe = GLEANPipeline(model, device="cpu")
    colour = photo(16, 16)
    out, warned = run(pipe, colour)
    lr = np.asarray(out.lr_images[0])
    assert (lr[..., 0] == lr[..., 2]).all()  # the network sees the luma
    assert any("grayscale" in w and "luma" in w for w in warned)
    sr = np.asarray(out.images[0]).astype(float)
    with torch.no_grad():  # the network's own channels differ: the output's luma is their luma, not one channel
        y = ((model(pil_to_tensor(out.lr_images[0]))[0] + 1) / 2).clamp(0, 1).double()
    assert (y[0] - y[2]).abs().max() > 1 / 255
    luma = ((0.299 * y[0] + 0.587 * y[1] + 0.114 * y[2]) * 255).numpy()
    sr_luma = 0.299 * sr[..., 0] + 0.587 * sr[..., 1] + 0.114 * sr[..., 2]
    inside = (sr.min(-1) > 1) & (sr.max(-1) < 254)  # unclipped pixels
    assert np.abs(sr_luma - luma)[inside].max() <= 1.0
    # chroma: that of the MATLAB-bicubic upscale of the colour LR
    up = imresize_uint8(imresize_uint8(colour, size=(cfg.in_size, cfg.in_size)), size=(cfg.out_size, cfg.out_size)).astype(float)
    up_luma = 0.299 * up[..., 0] + 0.587 * up[..., 1] + 0.114 * up[..., 2]
    assert np.abs((sr - sr_luma[..., None]) - (up - up_luma[..., None]))[inside].max() <= 2.0
    assert np.abs(sr[..., 0] - sr[..., 2]).max() > 10  # colour in, colour out
    gray = np.repeat(colour.mean(-1, keepdims=True).astype(np.uint8), 3, axis=-1)
    out, warned = run(pipe, gray)
    g = np.asarray(out.images[0])
    assert not any("grayscale" in w for w in warned)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()  # gray stays gray


# --- degradation guard -------------------------------------------------------------------------


def test_guard_quiet_on_clean_inputs(pipe):
    lr = imresize_uint8(photo(64, 64), size=(8, 8))  # a clean MATLAB-bicubic LR, used as it is
    for image in (lr, photo(64, 64), photo(200, 120)):
        _, warned = run(pipe, image)
        assert not [w for w in warned if SMALLER not in w], warned  # (64 px -> the 32 px output is said, not the guard)


def test_output_smaller_than_its_region_warns(pipe):
    out, warned = run(pipe, photo(64, 48))  # crop: a 48x48 region comes back as 32x32
    assert len(warned) == 1 and "the output (32x32) is smaller than the 48x48 region" in warned[0]
    assert "always makes 32x32 from a 8x8 input" in warned[0] and out.info[0].effective_factor < 1
    _, warned = run(pipe, photo(24, 24))  # 24 -> 32: larger, nothing to say
    assert not warned
    _, warned = run(pipe, photo(64, 48), output_size=96)  # the caller chose the size: nothing to say
    assert not [w for w in warned if SMALLER in w]


def test_guard_fires_on_noise(pipe):
    _, warned = run(pipe, noisy(photo(16, 16), 30))
    assert len(warned) == 1 and "noise" in warned[0] and "realworld" in warned[0]
    _, warned = run(pipe, noisy(photo(64, 64), 25))  # shrunk 8x: sigma ~3 left in the LR, still worth saying
    assert any("noise" in w for w in warned)


def test_guard_fires_on_a_jpeg_blocky_small_image(pipe):
    img = jpeg(photo(16, 16), quality=10)
    assert jpeg_quality(img) <= 15
    _, warned = run(pipe, img)
    assert len(warned) == 1 and "JPEG" in warned[0]
    assert jpeg_quality(jpeg(photo(16, 16), quality=95)) >= 90


def test_guard_fires_on_nearest_neighbour_enlargement(pipe):
    big = np.repeat(np.repeat(imresize_uint8(photo(64, 64), size=(8, 8)), 4, 0), 4, 1)
    _, warned = run(pipe, big)
    assert any("nearest-neighbour" in w for w in warned)


def test_guard_is_off_for_realworld_models():
    p = GLEANPipeline(tiny_model(degradation="realworld"), device="cpu")
    _, warned = run(p, noisy(photo(16, 16), 30))
    assert not warned


def test_guard_measures():
    clean = luma(photo(64, 64))
    assert noise_sigma(clean) < 1 and noise_sigma(luma(noisy(photo(64, 64), 10))) > 5  # luma: 0.67 x channel noise
    assert blockiness(clean) < 1.5
    blocky = luma(np.asarray(jpeg(noisy(photo(128, 128), 8), quality=5).convert("RGB")))
    assert blockiness(blocky) > 2.2


# --- post-resize -------------------------------------------------------------------------------


def test_output_size_is_a_flagged_post_resize(pipe):
    out = pipe([photo(40, 24), photo(40, 24)], mode="pad", output_size=100)
    info = out.info[0]
    assert out.images[0].size == (100, 60) and info.post_resize and "post-resized" in info.reason
    assert info.effective_factor == pytest.approx(100 / 40)
    out = pipe(photo(40, 24), output_size=(60, 40))
    assert out.images[0].size == (60, 40) and out.info[0].post_resize
    assert not pipe(photo(40, 24)).info[0].post_resize
