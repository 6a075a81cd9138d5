"""Face detection, alignment crop and feathered paste-back, for `GLEANPipeline(..., align_faces=True)`.

Detection uses OpenCV's Haar cascades (frontal face + eyes), which ship inside the
`opencv-python-headless` wheel (`cv2.data.haarcascades`): nothing is downloaded at run time.
OpenCV 5 dropped the cascades, so the `faces` extra pins `opencv-python-headless<5`.

Geometry, in continuous pixel coordinates (pixel i covers [i, i + 1), its centre is i + 0.5):

    crop  c = R(-angle) (p - center) + side / 2         original image -> square crop [0, side)^2
    face  q = (out_size / side) c                         crop -> GLEAN output [0, out_size)^2
    paste p_up = diag(fx, fy) p                           original -> bicubic-upscaled full image

The crop imitates the training crop of the faces models (CelebA aligned crops, see
`FACE_BOX_SCALE`): rotated so the eyes are level, a square of `FACE_BOX_SCALE` face widths,
centred `FACE_CENTER_BELOW_EYES` face widths below the eye midpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import GleanError

# Square crop side / width of the Haar face box. On CelebA aligned crops (178x218) the Haar box is
# ~105 px wide with the eyes at y ~111; 1.45 gives a ~152 px box centred near (89, 120), the crop the
# data README prescribes for the faces models (140-160 px centred near (89, 120)). Keep in step with it.
FACE_BOX_SCALE = 1.45
# Crop centre below the eye midpoint, in Haar face widths (CelebA: ~9 px for a 105 px face).
FACE_CENTER_BELOW_EYES = 0.08
# Where the eyes sit in a Haar face box when the eye cascade finds no pair (measured on CelebA):
EYE_LINE = 0.39  # eye height, fraction of the box height from its top
EYE_DISTANCE = 0.375  # distance between the eye centres, fraction of the box width
MAX_ROLL_DEG = 30.0  # an eye pair tilted more than this (in the searched frame) is a false detection
RETRY_ROLLS_DEG = (-15.0, 15.0, -30.0, 30.0)  # image rotations tried, in order, when no upright face is found
# Paste-back: the mask ramps from 0 at the crop border to 1 over this fraction of the crop side.
FEATHER = 0.1
# Detection runs on a copy resized so that its longer side is at most / shorter side at least:
DETECT_MAX_SIDE = 800
DETECT_MIN_SIDE = 160
MIN_FACE_PX = 24  # smallest Haar window, in pixels of the detection copy

INSTALL_HINT = 'face alignment needs OpenCV with its Haar cascades: pip install "glean-hub[faces]" (opencv-python-headless<5)'


def _cv2():
    try:
        import cv2
    except ImportError:
        raise GleanError(f"{INSTALL_HINT}; or run without --align-faces / align_faces=False") from None
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise GleanError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 removed them); {INSTALL_HINT}")
    return cv2


_CASCADES: dict[str, object] = {}


def _cascade(name: str):
    cv2 = _cv2()
    if name not in _CASCADES:
        c = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        if c.empty():
            raise GleanError(f"OpenCV could not load {name} from {cv2.data.haarcascades}; reinstall: {INSTALL_HINT}")
        _CASCADES[name] = c
    return _CASCADES[name]


@dataclass(frozen=True)
class Face:
    """A detected face in original image pixels: Haar box (x, y, w, h) and eye centres (left, right)."""

    box: tuple[float, float, float, float]
    eyes: tuple[tuple[float, float], tuple[float, float]]
    eyes_detected: bool  # False: eyes estimated from the box (EYE_LINE, EYE_DISTANCE)


@dataclass(frozen=True)
class AlignedCrop:
    """A square of `side` pixels centred at `center` (original pixels), rotated by `angle` (radians)."""

    center: tuple[float, float]
    side: int
    angle: float

    def matrix(self) -> np.ndarray:
        """3x3 map, continuous original coordinates -> continuous crop coordinates."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])  # R(-angle)
        return _translate(self.side / 2, self.side / 2) @ rot @ _translate(-self.center[0], -self.center[1])


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)


def _scale(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def index_matrix(m: np.ndarray) -> np.ndarray:
    """A continuous-coordinate map -> the same map on pixel indices (OpenCV's convention: centres at integers)."""
    return _translate(-0.5, -0.5) @ m @ _translate(0.5, 0.5)


def detect_faces(rgb: np.ndarray) -> list[Face]:
    """uint8 RGB [H, W, 3] -> faces, largest first (empty when none is found).

    The Haar cascade only finds faces within ~10 deg of upright; when it finds none, the image is
    searched again rotated by each of RETRY_ROLLS_DEG and the result mapped back.
    """
    cv2 = _cv2()
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    k = 1.0
    if max(h, w) > DETECT_MAX_SIDE:
        k = DETECT_MAX_SIDE / max(h, w)
    elif min(h, w) < DETECT_MIN_SIDE:  # Haar's smallest window is 24 px: enlarge small images
        k = min(DETECT_MIN_SIDE / min(h, w), DETECT_MAX_SIDE / max(h, w), 4.0)
    if k != 1.0:
        gray = cv2.resize(gray, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    gray = cv2.equalizeHist(gray)
    for roll in (0.0, *RETRY_ROLLS_DEG):
        g, to_gray = _rotated(gray, roll)  # to_gray: 3x3, index coords of g -> index coords of gray
        boxes = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(g, 1.1, 5, minSize=(MIN_FACE_PX, MIN_FACE_PX))
        if len(boxes):
            break
    else:
        return []
    to_image = np.diag([1 / k, 1 / k, 1.0]) @ to_gray

    def back(x: float, y: float) -> tuple[float, float]:
        p = to_image @ [x, y, 1.0]
        return float(p[0]), float(p[1])

    found = []
    for x, y, bw, bh in sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3]):
        eyes = _detect_eyes(g, x, y, bw, bh)
        detected = eyes is not None
        eyes = eyes if detected else _estimated_eyes(x, y, bw, bh)
        cx, cy = back(x + bw / 2, y + bh / 2)
        found.append(Face(box=(cx - bw / k / 2, cy - bh / k / 2, bw / k, bh / k), eyes=(back(*eyes[0]), back(*eyes[1])),
                          eyes_detected=detected))
    return found


def _rotated(gray: np.ndarray, roll_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """gray rotated by roll_deg on an enlarged canvas, and the 3x3 map from its pixels back to gray's."""
    if roll_deg == 0:
        return gray, np.eye(3)
    cv2 = _cv2()
    h, w = gray.shape
    a = math.radians(roll_deg)
    nw, nh = int(math.ceil(abs(w * math.cos(a)) + abs(h * math.sin(a)))), int(math.ceil(abs(w * math.sin(a)) + abs(h * math.cos(a))))
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), roll_deg, 1.0)
    m[:, 2] += [(nw - w) / 2, (nh - h) / 2]
    rotated = cv2.warpAffine(gray, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return rotated, np.linalg.inv(np.vstack([m, [0, 0, 1]]))


def _estimated_eyes(x, y, w, h):
    ey = y + EYE_LINE * h
    return (x + (0.5 - EYE_DISTANCE / 2) * w, ey), (x + (0.5 + EYE_DISTANCE / 2) * w, ey)


def _detect_eyes(gray: np.ndarray, x: int, y: int, w: int, h: int):
    """The eye pair in the upper part of a face box (one eye in each half), or None."""
    roi = gray[y : y + int(0.6 * h), x : x + w]
    found = _cascade("haarcascade_eye.xml").detectMultiScale(roi, 1.1, 3, minSize=(max(6, w // 10),) * 2)
    centres = [(x + ex + ew / 2, y + ey + eh / 2, ew) for ex, ey, ew, eh in found]
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    if not left or not right:
        return None
    le, re_ = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
    if abs(math.degrees(math.atan2(re_[1] - le[1], re_[0] - le[0]))) > MAX_ROLL_DEG:
        return None
    return (le[0], le[1]), (re_[0], re_[1])


def face_crop(face: Face) -> AlignedCrop:
    """The training-like square crop of a face: eyes level, FACE_BOX_SCALE widths, centred below the eyes."""
    (lx, ly), (rx, ry) = face.eyes
    angle = math.atan2(ry - ly, rx - lx)
    width = face.box[2]
    mx, my = (lx + rx) / 2, (ly + ry) / 2
    down = FACE_CENTER_BELOW_EYES * width
    center = (mx - math.sin(angle) * down, my + math.cos(angle) * down)  # "down" in the rotated frame
    return AlignedCrop(center=center, side=max(1, round(FACE_BOX_SCALE * width)), angle=angle)


def warp_crop(rgb: np.ndarray, crop: AlignedCrop) -> np.ndarray:
    """uint8 [H, W, C] -> the crop, uint8 [side, side, C]; outside the image is mirrored (reflect-101)."""
    cv2 = _cv2()
    m = index_matrix(crop.matrix())[:2]
    if abs(crop.angle) < 1e-9 and np.allclose(m[:, 2], np.round(m[:, 2])):  # integer shift: exact copy
        flags = cv2.INTER_NEAREST
    else:
        flags = cv2.INTER_CUBIC
    return cv2.warpAffine(np.ascontiguousarray(rgb), m, (crop.side, crop.side), flags=flags, borderMode=cv2.BORDER_REFLECT_101)


def feather_mask(size: int, feather: float = FEATHER) -> np.ndarray:
    """float32 [size, size]: 1 inside, falling smoothly (smoothstep) to 0 at the border over feather * size pixels."""
    d = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5)  # distance of each centre to the border
    d = np.minimum(d[:, None], d[None, :])
    t = np.clip(d / max(feather * size, 1e-6), 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def paste_matrix(crop: AlignedCrop, face_size: int, background_scale: tuple[float, float]) -> np.ndarray:
    """3x3 map, continuous upscaled-image coordinates -> continuous GLEAN-output coordinates."""
    fx, fy = background_scale
    return _scale(face_size / crop.side, face_size / crop.side) @ crop.matrix() @ _scale(1 / fx, 1 / fy)


def paste_back(background: np.ndarray, face: np.ndarray, crop: AlignedCrop, background_scale: tuple[float, float],
               feather: float = FEATHER) -> np.ndarray:
    """Blend the upscaled face (float32 [S, S, 3]) into the upscaled image (float32 [H', W', 3]) with a feathered mask.

    `background_scale` = (W' / W, H' / H) of the upscaled image. Returns float32 [H', W', 3].
    """
    cv2 = _cv2()
    size = face.shape[0]
    m = index_matrix(paste_matrix(crop, size, background_scale))[:2]
    hw = (background.shape[1], background.shape[0])
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(np.ascontiguousarray(face, dtype=np.float32), m, hw, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(feather_mask(size, feather), m, hw, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = np.clip(mask, 0, 1)[:, :, None]
    return mask * warped + (1 - mask) * background
