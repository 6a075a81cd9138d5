"""glean_hub.faces: crop geometry, warp, feathered paste-back, and the pipeline's face path.

Haar cascades do not fire on synthetic drawings, so the geometry is tested directly and the
pipeline's face path runs with `detect_faces` replaced by a known face; the real detector is run
on a face-free image (the no-face warning path).
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest

from conftest import tiny_model
from glean_hub import faces
from glean_hub.errors import GleanError, GleanWarning
from glean_hub.faces import AlignedCrop, Face, face_crop, feather_mask, index_matrix, paste_back, paste_matrix
from glean_hub.imresize import imresize_uint8
from glean_hub.pipeline import GLEANPipeline

cv2 = pytest.importorskip("cv2", reason='face alignment needs pip install "glean-hub[faces]"')


def smooth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth RGB function of continuous coordinates, float32 [..., 3] in [0, 1]."""
    return np.stack([0.5 + 0.4 * np.sin(x / 9.0 + 0.3 * y / 7.0), 0.5 + 0.4 * np.cos(y / 11.0), 0.5 + 0.2 * np.sin((x + y) / 13.0)], -1).astype(np.float32)


def sample(width: int, height: int, to_source: np.ndarray) -> np.ndarray:
    """Image [height, width, 3] whose pixel centres map through `to_source` (3x3, continuous) onto `smooth`."""
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    pts = to_source @ np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)])
    return smooth(pts[0], pts[1]).reshape(height, width, 3)


def test_crop_matrix_levels_the_eyes():
    crop = AlignedCrop(center=(50.0, 40.0), side=60, angle=math.radians(20))
    m = crop.matrix()
    np.testing.assert_allclose(m @ [50, 40, 1], [30, 30, 1])  # centre -> crop centre
    eye = np.array([50 + 10 * math.cos(crop.angle), 40 + 10 * math.sin(crop.angle), 1])  # along the eye line
    np.testing.assert_allclose(m @ eye, [40, 30, 1], atol=1e-12)  # -> horizontal in the crop
    np.testing.assert_allclose(index_matrix(np.eye(3)), np.eye(3))


def test_face_crop_constants():
    face = Face(box=(100, 80, 100, 100), eyes=((130.0, 120.0), (170.0, 130.0)), eyes_detected=True)
    crop = face_crop(face)
    assert crop.side == round(faces.FACE_BOX_SCALE * 100)
    assert math.degrees(crop.angle) == pytest.approx(math.degrees(math.atan2(10, 40)))
    # centre: FACE_CENTER_BELOW_EYES face widths below the eye midpoint, perpendicular to the eye line
    cx, cy = crop.center
    d = faces.FACE_CENTER_BELOW_EYES * 100
    assert math.hypot(cx - 150, cy - 125) == pytest.approx(d)
    assert (cx - 150) * 40 + (cy - 125) * 10 == pytest.approx(0, abs=1e-9) and cy > 125
    level = face_crop(Face(box=(0, 0, 100, 100), eyes=((30.0, 39.0), (70.0, 39.0)), eyes_detected=False))
    assert level.angle == 0 and level.center == (50.0, 39 + d)


def test_warp_crop_without_rotation_is_an_exact_crop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    crop = AlignedCrop(center=(40.0, 30.0), side=20, angle=0.0)
    np.testing.assert_array_equal(faces.warp_crop(img, crop), img[20:40, 30:50])
    edge = faces.warp_crop(img, AlignedCrop(center=(2.0, 30.0), side=8, angle=0.0))  # mirrored outside
    np.testing.assert_array_equal(edge[:, 2:], img[26:34, 0:6])


def test_warp_crop_with_rotation_follows_the_matrix():
    crop = AlignedCrop(center=(64.0, 60.0), side=48, angle=math.radians(25))
    img = (sample(128, 120, np.eye(3)) * 255).round().astype(np.uint8)
    got = faces.warp_crop(img, crop).astype(np.float32) / 255
    want = sample(48, 48, np.linalg.inv(crop.matrix()))
    assert np.abs(got - want).max() < 0.02


def test_feather_mask():
    m = feather_mask(40, 0.1)
    assert m.shape == (40, 40) and m.dtype == np.float32
    assert m[20, 20] == 1 and m[0, 0] < 0.05 and m[0, 20] < 0.05
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(m, m[::-1, ::-1])
    assert (np.diff(m[20, :20]) >= 0).all()


def test_paste_back_geometry_is_consistent():
    """A face cut from the same smooth scene pastes back invisibly: every matrix in the chain agrees."""
    crop = AlignedCrop(center=(50.0, 44.0), side=40, angle=math.radians(-15))
    w, h, size = 100, 90, 64
    k = size / crop.side
    bw, bh = round(w * k), round(h * k)
    background = sample(bw, bh, np.diag([w / bw, h / bh, 1.0]))  # the scene at the upscaled size
    face = sample(size, size, np.linalg.inv(crop.matrix()) @ np.diag([crop.side / size, crop.side / size, 1.0]))
    merged = paste_back(background, face, crop, (bw / w, bh / h))
    assert merged.shape == background.shape
    assert np.abs(merged - background).max() < 0.01
    # a white face on black lands where the crop is, feathered at its border
    marker = paste_back(np.zeros_like(background), np.ones_like(face), crop, (bw / w, bh / h))[..., 0]
    ys, xs = np.nonzero(marker > 0.5)
    assert abs(xs.mean() + 0.5 - 50 * bw / w) < 1 and abs(ys.mean() + 0.5 - 44 * bh / h) < 1
    inside = np.linalg.inv(paste_matrix(crop, size, (bw / w, bh / h))) @ [size / 2, size / 2, 1]
    assert marker[int(inside[1]), int(inside[0])] == pytest.approx(1)
    assert 0 < marker.max() and marker[0, 0] == 0


def test_pipeline_face_path_with_a_known_face(monkeypatch):
    pipe = GLEANPipeline(tiny_model(category="faces"), device="cpu")
    img = (sample(60, 50, np.eye(3)) * 255).round().astype(np.uint8)
    face = Face(box=(20.0, 12.0, 20.0, 20.0), eyes=((26.0, 20.0), (34.0, 22.0)), eyes_detected=True)
    monkeypatch.setattr(faces, "detect_faces", lambda rgb: [face, Face((0, 0, 8, 8), ((2, 3), (6, 3)), False)])
    alpha = np.full((50, 60, 1), 255, np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipe(np.dstack([img, alpha]), align_faces=True)
    info, crop = out.info[0], face_crop(face)
    assert info.policy == "face" and info.face_angle == pytest.approx(math.degrees(crop.angle))
    k = 32 / crop.side
    assert out.images[0].size == (round(60 * k), round(50 * k)) and out.images[0].mode == "RGBA"
    assert info.effective_factor == pytest.approx(round(60 * k) / 60)
    np.testing.assert_array_equal(np.asarray(out.lr_images[0]), imresize_uint8(faces.warp_crop(img, crop), size=(8, 8)))
    assert any("2 faces found" in str(w.message) for w in caught)
    # away from the face the result is the bicubic enlargement of the image
    background = imresize_uint8(img, size=(out.images[0].height, out.images[0].width))
    np.testing.assert_array_equal(np.asarray(out.images[0])[-3:, -3:, :3], background[-3:, -3:])


def test_no_face_found_falls_back_to_mode_with_a_warning():
    pipe = GLEANPipeline(tiny_model(category="faces"), device="cpu")
    img = (sample(48, 40, np.eye(3)) * 255).round().astype(np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipe(img, align_faces=True, mode="pad")
    info = out.info[0]
    assert info.policy == "pad" and out.images[0].size == (32, round(40 * 32 / 48))
    policy_warnings = [w for w in info.warnings if not w.startswith("the output (")]  # not the output-size note
    assert len(policy_warnings) == 1 and "no face found" in policy_warnings[0] and "mode='pad'" in policy_warnings[0]
    assert any(issubclass(w.category, GleanWarning) and "no face found" in str(w.message) for w in caught)


def test_missing_opencv_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    pipe = GLEANPipeline(tiny_model(), device="cpu")
    with pytest.raises(GleanError, match=r'pip install "glean-hub\[faces\]"'):
        pipe(np.zeros((16, 16, 3), np.uint8), align_faces=True)


def test_rotated_search_maps_back_to_the_image():
    """Faces found in a rotated copy (the retry for tilted heads) come back in original pixels."""
    gray = np.zeros((60, 90), np.uint8)
    gray[20, 70] = 255
    for roll in faces.RETRY_ROLLS_DEG:
        rotated, to_gray = faces._rotated(gray, roll)
        y, x = np.unravel_index(np.argmax(rotated), rotated.shape)
        back = to_gray @ [x, y, 1]
        assert abs(back[0] - 70) <= 1 and abs(back[1] - 20) <= 1, roll


def test_paste_back_size_is_limited(monkeypatch):
    pipe = GLEANPipeline(tiny_model(category="faces"), device="cpu")
    img = (sample(60, 50, np.eye(3)) * 255).round().astype(np.uint8)
    face = Face(box=(20.0, 12.0, 4.0, 4.0), eyes=((21.0, 13.0), (23.0, 13.0)), eyes_detected=False)  # 6 px crop
    monkeypatch.setattr(faces, "detect_faces", lambda rgb: [face])
    with pytest.raises(GleanError, match="crop the photo closer"):
        pipe(img, align_faces=True, max_pixels=10_000)  # 60x50 * (32/6)^2 ~ 85,000 px
