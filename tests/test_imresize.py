"""Tests of glean_hub.imresize, the MATLAB-compatible bicubic imresize.

Cubic kernel values used in the hand computations (Keys, a = -0.5):
    cubic(0.25) = 1.5*0.25^3 - 2.5*0.25^2 + 1        =  0.8671875 = 111/128
    cubic(0.75) = 1.5*0.75^3 - 2.5*0.75^2 + 1        =  0.2265625 =  29/128
    cubic(1.25) = -0.5*1.25^3 + 2.5*1.25^2 - 5 + 2   = -0.0703125 =  -9/128
    cubic(1.75) = -0.5*1.75^3 + 2.5*1.75^2 - 7 + 2   = -0.0234375 =  -3/128
    cubic(t >= 2) = 0
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from glean_hub.imresize import contributions, imresize, imresize_uint8

ROW = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]  # x1..x8 (1-based, as in MATLAB)


def _row(values) -> torch.Tensor:
    return torch.tensor([values], dtype=torch.float64)  # [1, W]


# --------------------------------------------------------------------------------------------
# An independent, deliberately plain re-implementation of MATLAB's imresize (loops, 1-based).
# --------------------------------------------------------------------------------------------


def _ref_cubic(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _ref_source(i: int, n: int, border: str) -> int:
    """1-based index i mapped into 1..n: MATLAB's aux = [1:n, n:-1:1] rule, or clamping."""
    if border == "clamp":
        return min(max(i, 1), n)
    aux = list(range(1, n + 1)) + list(range(n, 0, -1))
    return aux[(i - 1) % (2 * n)]


def _ref_resize_1d(v: list[float], out_len: int, scale: float, border: str = "mirror") -> list[float]:
    n = len(v)
    width = 4.0 / scale if scale < 1 else 4.0
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + p for p in range(math.ceil(width) + 2)]
        if scale < 1:
            w = [scale * _ref_cubic(scale * (u - i)) for i in taps]
        else:
            w = [_ref_cubic(u - i) for i in taps]
        total = sum(w)
        out.append(sum(wk / total * v[_ref_source(i, n, border) - 1] for wk, i in zip(w, taps)))
    return out


def _ref_round(v: float) -> float:
    return float(min(max(math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1), 0), 255))


def _ref_imresize(img: np.ndarray, scale=None, size=None, uint8=False, border="mirror") -> np.ndarray:
    """img [H, W] float64 -> [out_h, out_w]; uint8=True rounds after each pass like MATLAB's mex."""
    h, w = img.shape
    if size is not None:
        sh, sw = size[0] / h, size[1] / w
        oh, ow = size
    else:
        sh, sw = (scale, scale) if np.isscalar(scale) else scale
        oh, ow = math.ceil(sh * h), math.ceil(sw * w)
    a = [list(map(float, r)) for r in img]
    for dim in ([0, 1] if sh <= sw else [1, 0]):
        if dim == 0:  # resize every column
            cols = [_ref_resize_1d([a[r][c] for r in range(len(a))], oh, sh, border) for c in range(len(a[0]))]
            a = [[cols[c][r] for c in range(len(cols))] for r in range(oh)]
        else:  # resize every row
            a = [_ref_resize_1d(r, ow, sw, border) for r in a]
        if uint8:
            a = [[_ref_round(v) for v in r] for r in a]
    return np.array(a)


# --------------------------------------------------------------------------------------------
# Hand-computed outputs
# --------------------------------------------------------------------------------------------


def test_hand_downscale_half_8px():
    # scale 1/2: kernel h(t) = 0.5*cubic(t/2), width 8; u = 2x - 0.5; taps at u-i = +-0.5, +-1.5, +-2.5, +-3.5
    # weights 0.5*cubic(0.25, 0.75, 1.25, 1.75) = (111, 29, -9, -3)/256, summing to 1 over both sides.
    # x=1: u=1.5, taps i=-2..5 with weights (-3,-9,29,111,111,29,-9,-3)/256; mirror -2->3, -1->2, 0->1:
    #      (140*x1 + 102*x2 + 26*x3 - 9*x4 - 3*x5)/256 = (420 + 102 + 104 - 9 - 15)/256 = 602/256
    # x=2: u=3.5, taps i=0..7, 0->1: (-12*x1 + 29*x2 + 111*x3 + 111*x4 + 29*x5 - 9*x6 - 3*x7)/256
    #      = (-36 + 29 + 444 + 111 + 145 - 81 - 6)/256 = 606/256
    # x=3: u=5.5, taps i=2..9, 9->8: (-3*x2 - 9*x3 + 29*x4 + 111*x5 + 111*x6 + 29*x7 - 12*x8)/256
    #      = (-3 - 36 + 29 + 555 + 999 + 58 - 72)/256 = 1530/256
    # x=4: u=7.5, taps i=4..11, 9->8, 10->7, 11->6: (-3*x4 - 9*x5 + 26*x6 + 102*x7 + 140*x8)/256
    #      = (-3 - 45 + 234 + 204 + 840)/256 = 1230/256
    expected = [602 / 256, 606 / 256, 1530 / 256, 1230 / 256]
    out = imresize(_row(ROW), scale=(1.0, 0.5))
    assert out.shape == (1, 4)
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=0, atol=1e-12)


def test_hand_downscale_quarter_8px():
    # scale 1/4: h(t) = 0.25*cubic(t/4), width 16; u = 4x - 1.5; taps at u-i = +-0.5 ... +-7.5, i.e.
    # cubic(0.125, 0.375, ..., 1.875) = (1974, 1490, 798, 186, -98, -150, -90, -14)/2048, sum 2 per side,
    # so normalised weights are those numbers / 8192.
    # x=1: u=2.5, taps i=-5..10; mirror 0->1, -1->2, -2->3, -3->4, -4->5, -5->6, 9->8, 10->7:
    #   x1: 1490+798=2288, x2: 1974+186=2160, x3: 1974-98=1876, x4: 1490-150=1340,
    #   x5: 798-90=708, x6: 186-14=172, x7: -98-14=-112, x8: -150-90=-240   (sum 8192)
    # x=2: u=6.5, the mirror image: coefficients reversed (x8: 2288, ..., x1: -240).
    c = np.array([2288, 2160, 1876, 1340, 708, 172, -112, -240]) / 8192
    x = np.array(ROW)
    expected = [c @ x, c[::-1] @ x]  # = 21292/8192, 42196/8192
    np.testing.assert_allclose(expected, [21292 / 8192, 42196 / 8192], rtol=0, atol=1e-15)
    out = imresize(_row(ROW), scale=(1.0, 0.25))
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=0, atol=1e-12)


def test_hand_upscale_2x_8px():
    # scale 2: plain cubic, u = x/2 + 0.25, 4 non-zero taps at distances (1.75, 0.75, -0.25, -1.25)
    # or (1.25, 0.25, -0.75, -1.75), weights (-3, 29, 111, -9)/128 or (-9, 111, 29, -3)/128.
    # x=1:  u=0.75, taps i=-1,0,1,2 -> mirrored 2,1,1,2: (-3*x2 + 29*x1 + 111*x1 - 9*x2)/128 = (140*3 - 12*1)/128
    # x=2:  u=1.25, taps i=0,1,2,3 -> 1,1,2,3: (-9*x1 + 111*x1 + 29*x2 - 3*x3)/128 = (306 + 29 - 12)/128
    # x=8:  u=4.25, taps i=3..6: (-9*x3 + 111*x4 + 29*x5 - 3*x6)/128 = (-36 + 111 + 145 - 27)/128
    # x=16: u=8.25, taps i=7,8,9,10 -> 7,8,8,7: (-12*x7 + 140*x8)/128 = (-24 + 840)/128
    out = imresize(_row(ROW), scale=(1.0, 2.0))[0].numpy()
    assert out.shape == (16,)
    np.testing.assert_allclose(out[[0, 1, 7, 15]], [408 / 128, 323 / 128, 193 / 128, 816 / 128], rtol=0, atol=1e-12)


def test_hand_2d_4x4_half():
    # 4 -> 2 at scale 1/2 (both axes): as in the 8-px case, taps (-3,-9,29,111,111,29,-9,-3)/256, and
    # mirroring in a length-4 axis folds them onto A = [[140, 102, 26, -12], [-12, 26, 102, 140]]/256.
    # The 2-D result is A @ X @ A.T. For X = delta at (row 1, col 2) (1-based): out[i, j] = A[i, 0]*A[j, 1].
    x = torch.zeros(4, 4, dtype=torch.float64)
    x[0, 1] = 1.0
    expected = np.array([[140 * 102, 140 * 26], [-12 * 102, -12 * 26]]) / 65536
    np.testing.assert_allclose(imresize(x, scale=0.5).numpy(), expected, rtol=0, atol=1e-12)
    a = np.array([[140, 102, 26, -12], [-12, 26, 102, 140]]) / 256
    y = torch.rand(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(imresize(y, scale=0.5).numpy(), a @ y.numpy() @ a.T, rtol=0, atol=1e-12)


def test_contributions_match_hand_weights():
    w, idx = contributions(8, 4, 0.5)
    np.testing.assert_allclose(w * 256, np.tile([-3, -9, 29, 111, 111, 29, -9, -3], (4, 1)), rtol=0, atol=1e-12)
    assert idx[0].tolist() == [2, 1, 0, 0, 1, 2, 3, 4]  # 0-based; i=-2,-1,0 mirrored to 3,2,1 (1-based)
    assert idx[3].tolist() == [3, 4, 5, 6, 7, 7, 6, 5]


# --------------------------------------------------------------------------------------------
# Published MATLAB output
# --------------------------------------------------------------------------------------------


def test_published_matlab_output_stackoverflow_17380407():
    # https://stackoverflow.com/questions/17380407 (2013): M = [0 0 1 1 0]; imresize(M, [1, 10]) gives
    #   0 -0.0234 -0.0703 0.2031 0.7969 1.0938 1.0938 0.7969 0.2031 -0.0703   (printed to 4 decimals)
    published = [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031, -0.0703]
    m = np.array([[0, 0, 1, 1, 0]], dtype=np.float64)
    ours = imresize(torch.from_numpy(m), size=(1, 10))[0].numpy()
    # Nine of ten agree. The last output (u = 5.25) reads tap i = 7: current MATLAB mirrors it to x4 = 1
    # (-0.0703 - 0.0234 = -0.0938); the 2013 release clamped out-of-range taps to x5 = 0 (-0.0703).
    np.testing.assert_allclose(ours[:9], published[:9], rtol=0, atol=5.1e-5)  # printed to 4 decimals
    assert ours[9] == pytest.approx(-0.09375, abs=1e-12)
    # The loop reference with the old clamping rule reproduces all ten published numbers.
    old = _ref_imresize(m, size=(1, 10), border="clamp")[0]
    np.testing.assert_allclose(old, published, rtol=0, atol=5.1e-5)  # printed to 4 decimals


# --------------------------------------------------------------------------------------------
# Agreement with the loop reference
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, scale",
    [
        ((22, 17), 1 / 2),
        ((21, 30), 1 / 3),
        ((24, 13), 1 / 4),
        ((40, 27), 1 / 8),
        ((48, 35), 1 / 16),
        ((23, 31), 0.3),
        ((9, 14), 2.0),
        ((7, 5), 4.0),
        ((12, 18), (0.5, 2.0)),  # height shrinks first
        ((12, 18), (3.0, 1 / 3)),  # width first (smaller scale)
    ],
)
def test_matches_loop_reference(shape, scale):
    x = torch.rand(2, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(sum(shape)))
    out = imresize(x, scale=scale)
    for c in range(2):
        ref = _ref_imresize(x[c].numpy(), scale=scale)
        assert out[c].shape == ref.shape
        np.testing.assert_allclose(out[c].numpy(), ref, rtol=0, atol=1e-10)


def test_size_argument_matches_loop_reference():
    x = torch.rand(1, 1, 19, 26, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    out = imresize(x, size=(7, 40))  # scale = (7/19, 40/26)
    ref = _ref_imresize(x[0, 0].numpy(), size=(7, 40))
    np.testing.assert_allclose(out[0, 0].numpy(), ref, rtol=0, atol=1e-10)


def test_uint8_matches_loop_reference_per_pass_rounding():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (20, 15, 3), dtype=np.uint8)
    out = imresize_uint8(img, 0.5)
    assert out.dtype == np.uint8 and out.shape == (10, 8, 3)
    for c in range(3):
        ref = _ref_imresize(img[..., c].astype(np.float64), scale=0.5, uint8=True)
        np.testing.assert_array_equal(out[..., c], ref.astype(np.uint8))
    # BasicSR-style single rounding differs: by <= 1 from the rounding, more where the intermediate
    # overshoot beyond [0, 255] was saturated (this random image has plenty).
    single = imresize_uint8(img, 0.5, round_each_pass=False)
    assert 1 <= np.abs(single.astype(int) - out.astype(int)).max() <= 3


def test_batch_and_dtypes():
    x = torch.rand(3, 2, 16, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = imresize(x, scale=0.25)
    assert y.shape == (3, 2, 4, 3) and y.dtype == torch.float64
    torch.testing.assert_close(imresize(x[1, 0], scale=0.25), y[1, 0], rtol=0, atol=1e-14)
    y32 = imresize(x.float(), scale=0.25)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y, rtol=0, atol=1e-5)
    assert imresize(x.half(), scale=0.25).dtype == torch.float16


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 16, 0.3, 0.77, 1.5, 2.0, 3.7, (0.4, 2.5)])
def test_constant_stays_constant(scale):
    x = torch.full((1, 2, 33, 21), 0.37, dtype=torch.float64)
    y = imresize(x, scale=scale)
    torch.testing.assert_close(y, torch.full_like(y, 0.37), rtol=0, atol=1e-13)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_ramp_downscale_is_ramp(factor):
    # Output pixel j (0-based) is centred at input coordinate c = (j + 0.5)*factor - 0.5 (MATLAB's u, 0-based).
    # For an integer factor the taps sit symmetrically around c and the weights sum to 1, so a ramp
    # v_i = a + b*i gives exactly a + b*c away from the borders (mirroring bends it near them).
    n = 48
    a, b = 10.0, 0.75
    x = torch.tensor([a + b * i for i in range(n)], dtype=torch.float64)[None]
    y = imresize(x, scale=(1.0, 1 / factor))[0].numpy()
    j = np.arange(len(y))
    c = (j + 0.5) * factor - 0.5
    interior = (c - 2 * factor >= 0) & (c + 2 * factor <= n - 1)  # kernel half-width is 2*factor
    assert interior.sum() >= 4
    np.testing.assert_allclose(y[interior], a + b * c[interior], rtol=0, atol=1e-12)
    if factor == 2:  # spelled out: c = 2j + 0.5
        np.testing.assert_allclose(y[3:9], [a + b * (2 * k + 0.5) for k in range(3, 9)], rtol=0, atol=1e-12)
    assert not np.allclose(y[0], a + b * c[0])  # the border is not linear (mirror)


@pytest.mark.parametrize("shape, kwargs", [((16, 12), {"scale": 0.5}), ((15, 9), {"size": (6, 4)}),
                                           ((15, 9), {"size": (31, 20)}), ((12, 12), {"scale": 4.0})])
def test_flip_symmetry(shape, kwargs):
    # Holds whenever out/scale == in, i.e. for integer in*scale or an explicit output size.
    x = torch.rand(2, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    for dims in ([-1], [-2]):
        torch.testing.assert_close(imresize(x.flip(dims), **kwargs), imresize(x, **kwargs).flip(dims),
                                   rtol=0, atol=1e-12)


def test_flip_asymmetry_when_in_times_scale_not_integer():
    # MATLAB quirk kept on purpose: 7 px * 0.5 -> ceil(3.5) = 4 px, but u = 2x - 0.5 keeps the 2 px
    # spacing, so the output grid covers 8 input px and is not centred; flipping does not commute.
    x = torch.rand(1, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    assert not torch.allclose(imresize(x.flip(-1), scale=(1, 0.5)), imresize(x, scale=(1, 0.5)).flip(-1))


@pytest.mark.parametrize("h, w, scale, out", [(7, 9, 0.5, (4, 5)), (9, 7, 1 / 3, (3, 3)), (13, 11, 0.3, (4, 4)),
                                              (5, 3, 2.5, (13, 8)), (17, 33, 1 / 16, (2, 3)),
                                              (50, 7, 1.1, (56, 8))])  # 50*1.1 = 55.00000000000001 in double
def test_output_size_is_ceil(h, w, scale, out):
    assert imresize(torch.zeros(h, w, dtype=torch.float64), scale=scale).shape == out
    assert imresize_uint8(np.zeros((h, w), np.uint8), scale=scale).shape == out


@pytest.mark.parametrize("n_in, n_out, scale", [(8, 4, 0.5), (7, 4, 0.5), (5, 1, 1 / 16), (9, 3, 1 / 3),
                                                (13, 4, 0.3), (6, 15, 2.5), (3, 12, 4.0)])
def test_weights_sum_to_one(n_in, n_out, scale):
    w, idx = contributions(n_in, n_out, scale)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    assert idx.min() >= 0 and idx.max() < n_in
    assert np.all(np.any(w != 0, axis=0))  # all-zero columns were trimmed


def test_uint8_rounding_and_clamping():
    # A 0/255 step overshoots on both sides with bicubic; MATLAB saturates to [0, 255].
    img = np.zeros((8, 8), np.uint8)
    img[:, 4:] = 255
    up = imresize_uint8(img, 2.0)
    exact = _ref_imresize(img.astype(np.float64), scale=2.0)
    assert exact.min() < -5 and exact.max() > 260  # the real-valued result over/undershoots
    assert up.dtype == np.uint8 and up.min() == 0 and up.max() == 255
    np.testing.assert_array_equal(up, np.clip(np.floor(exact + 0.5), 0, 255).astype(np.uint8))


def test_uint8_round_half_away_from_zero():
    # Row [a, b] upscaled to 4 px (scale 2; mirroring in a 2-px axis, aux = [1 2 2 1]):
    #   x=1: u=0.75, taps i=-1,0,1,2 -> b,a,a,b with (-3, 29, 111, -9)/128: (140a - 12b)/128
    #   x=2: u=1.25, taps i=0,1,2,3  -> a,a,b,b with (-9, 111, 29, -3)/128: (102a + 26b)/128
    #   x=3, x=4 mirror these: (26a + 102b)/128, (-12a + 140b)/128.
    # [0, 32]  -> (-3, 6.5, 25.5, 35)        -> MATLAB uint8 (0, 7, 26, 35); half-to-even would give 6
    # [255, 223] -> 255 - the above = (258, 248.5, 229.5, 220) -> (255, 249, 230, 220); half-to-even: 248
    for row, exact, rounded in [([0, 32], [-3, 6.5, 25.5, 35], [0, 7, 26, 35]),
                                ([255, 223], [258, 248.5, 229.5, 220], [255, 249, 230, 220])]:
        f = imresize(torch.tensor([row], dtype=torch.float64), size=(1, 4))[0].numpy()
        np.testing.assert_allclose(f, exact, rtol=0, atol=1e-12)
        assert imresize_uint8(np.array([row], np.uint8), size=(1, 4))[0].tolist() == rounded
    # The rounding helper on its own, including a value just below a half.
    from glean_hub.imresize import _round_uint8

    v = torch.tensor([-0.5, 0.49999999999999994, 0.5, 1.5, 2.5, 254.5, 255.4, 300.0], dtype=torch.float64)
    assert _round_uint8(v).tolist() == [0, 0, 1, 2, 3, 255, 255, 255]


# --------------------------------------------------------------------------------------------
# Why not PIL or torch.nn.functional.interpolate
# --------------------------------------------------------------------------------------------


def _test_image() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    img = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 30 * np.sin((xx + yy) / 3.0) + rng.normal(0, 8, (64, 64))
    return img, np.clip(np.round(img), 0, 255).astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_pil_bicubic_is_close_but_not_equal():
    # PIL's BICUBIC is antialiased with a = -0.5 and the same pixel-centre mapping, so it agrees away from
    # the borders, but it truncates+renormalises the kernel at the borders instead of mirroring.
    img, img8 = _test_image()
    ours = imresize_uint8(img8, 0.25)
    pil = np.asarray(Image.fromarray(img8).resize((16, 16), Image.BICUBIC))
    diff = np.abs(ours.astype(int) - pil.astype(int))
    assert 40 < _psnr(ours, pil) < 55
    assert 2 <= diff.max() <= 10  # a few grey levels, at the borders
    assert diff[5:-5, 5:-5].max() <= 1  # interior: only PIL's fixed-point rounding
    # In float ('F') mode the interior matches to float32 precision; the border does not.
    ours_f = imresize(torch.from_numpy(img)[None], scale=0.25)[0].numpy()
    pil_f = np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((16, 16), Image.BICUBIC))
    assert np.abs(ours_f - pil_f)[5:-5, 5:-5].max() < 1e-4
    assert np.abs(ours_f - pil_f).max() > 1.0


def test_torch_interpolate_bicubic_is_far_off():
    # F.interpolate(mode='bicubic', antialias=False) uses a = -0.75 and no antialiasing: at 1/4 it
    # point-samples and aliases the texture.
    img, img8 = _test_image()
    ours = imresize_uint8(img8, 0.25)
    t = F.interpolate(torch.from_numpy(img)[None, None], size=(16, 16), mode="bicubic", align_corners=False,
                      antialias=False)[0, 0].numpy()
    t8 = np.clip(np.round(t), 0, 255)
    pil = np.asarray(Image.fromarray(img8).resize((16, 16), Image.BICUBIC))
    assert _psnr(ours, t8) < 36
    assert _psnr(ours, t8) < _psnr(ours, pil) - 8
    assert np.abs(ours - t8).max() > 10


# --------------------------------------------------------------------------------------------
# Argument errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, kwargs, match",
    [
        (torch.zeros(5), {"scale": 0.5}, "at least 2 dims"),
        (torch.zeros(0, 5), {"scale": 0.5}, "positive"),
        (torch.zeros(4, 4, dtype=torch.uint8), {"scale": 0.5}, "float"),
        (np.zeros((4, 4)), {"scale": 0.5}, "float"),
        (torch.zeros(4, 4), {}, "exactly one"),
        (torch.zeros(4, 4), {"scale": 0.5, "size": (2, 2)}, "exactly one"),
        (torch.zeros(4, 4), {"scale": 0.0}, "scale"),
        (torch.zeros(4, 4), {"scale": -2.0}, "scale"),
        (torch.zeros(4, 4), {"scale": (0.5, float("nan"))}, "scale"),
        (torch.zeros(4, 4), {"size": (0, 2)}, "size"),
        (torch.zeros(4, 4), {"size": (2, -1)}, "size"),
        (torch.zeros(4, 4), {"size": (2.5, 2)}, "size"),
        (torch.zeros(4, 4), {"size": 2}, "size"),
    ],
)
def test_errors(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        imresize(x, **kwargs)


def test_uint8_errors():
    with pytest.raises(ValueError, match="uint8"):
        imresize_uint8(np.zeros((4, 4), np.float32), 0.5)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        imresize_uint8(np.zeros((1, 4, 4, 3), np.uint8), 0.5)
    with pytest.raises(ValueError, match="exactly one"):
        imresize_uint8(np.zeros((4, 4), np.uint8))
