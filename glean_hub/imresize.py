"""MATLAB-compatible bicubic ``imresize`` in PyTorch (batched, CPU/GPU), plus a uint8 numpy helper.

GLEAN's released models were trained on LR images made by MATLAB ``imresize(hr, 1/s, 'bicubic')``.
Neither PIL nor ``torch.nn.functional.interpolate`` reproduce it, so this module re-implements the
algorithm of MATLAB's ``imresize.m`` (Image Processing Toolbox; its ``contributions``,
``cubic``, ``deriveSizeFromScale`` and ``dimensionOrder`` functions), one axis at a time:

* kernel: Keys cubic convolution with a = -0.5 (Keys 1981), support |t| < 2;
* antialiasing when shrinking (scale < 1): ``h(t) = scale * cubic(scale * t)``, width ``4 / scale``;
* output pixel x (1-based) reads input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``;
  taps ``left + (0 : P-1)`` with ``left = floor(u - width / 2)``, ``P = ceil(width) + 2``;
  weights ``h(u - index)`` normalised to sum 1 per output pixel;
* out-of-range indices mirrored, ``aux = [1:in, in:-1:1]; index = aux(mod(index - 1, 2 * in) + 1)``
  (symmetric padding, current MATLAB; older releases, e.g. 2013, clamped to the border instead);
* all-zero weight columns dropped (no numerical effect here: we scatter the taps into a dense
  ``[out, in]`` matrix and resize each axis with one matrix product);
* output size ``ceil(scale * in)`` in double arithmetic; with an explicit output size,
  ``scale = out / in`` per axis;
* the axis with the smaller scale is resized first (MATLAB's stable ``sort(scale)``; ties: height).

For uint8 images MATLAB's ``imresizemex`` computes each pass in double and returns the input's
class, so the intermediate image after the first axis is already rounded (half away from zero)
and saturated to [0, 255]; :func:`imresize_uint8` does the same by default.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache

import numpy as np
import torch

__all__ = ["imresize", "imresize_uint8", "contributions"]


def _cubic(t: np.ndarray) -> np.ndarray:
    """MATLAB's ``cubic``: Keys kernel with a = -0.5 (float64 in, float64 out, same shape)."""
    a = np.abs(t)
    a2, a3 = a**2, a**3
    return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((1 < a) & (a <= 2))


def contributions(
    in_len: int, out_len: int, scale: float, antialias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``contributions()`` for the bicubic kernel.

    Returns ``(weights, indices)``, both ``[out_len, P]``: float64 weights (each row sums to 1) and
    int64 **0-based** input indices (already mirrored into ``[0, in_len)``); all-zero columns dropped.
    """
    width = 4.0
    if scale < 1 and antialias:
        kernel = lambda t: scale * _cubic(scale * t)  # noqa: E731
        width = width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left + np.arange(taps, dtype=np.float64)  # 1-based, may be out of range
    w = kernel(u - idx)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # 0-based [1:in, in:-1:1]
    idx = aux[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx[:, keep]


@lru_cache(maxsize=64)
def _matrix64(in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """Dense float64 CPU resize matrix ``[out_len, in_len]``: ``out = M @ in`` along one axis."""
    w, idx = contributions(in_len, out_len, scale, antialias)
    m = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(out_len), w.shape[1]), idx.ravel()), w.ravel())  # mirrored taps may repeat
    return torch.from_numpy(m)


@lru_cache(maxsize=64)
def _matrix(in_len: int, out_len: int, scale: float, antialias: bool, dtype: torch.dtype, device: torch.device):
    return _matrix64(in_len, out_len, scale, antialias).to(device=device, dtype=dtype)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _plan(shape: tuple[int, int], scale, size) -> tuple[tuple[float, float], tuple[int, int]]:
    """Validate arguments; return per-axis ``(scale_h, scale_w)`` and ``(out_h, out_w)`` as MATLAB does."""
    h, w = shape
    if h < 1 or w < 1:
        raise ValueError(f"imresize: input height and width must be positive, got {h}x{w}")
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of `scale` or `size`")
    if scale is not None:
        s = tuple(scale) if isinstance(scale, (tuple, list)) else (scale, scale)
        if len(s) != 2 or not all(_is_real(v) and math.isfinite(v) and v > 0 for v in s):
            raise ValueError(f"imresize: `scale` must be a positive float or a pair of them, got {scale!r}")
        s = (float(s[0]), float(s[1]))
        return s, (math.ceil(s[0] * h), math.ceil(s[1] * w))
    if not (isinstance(size, (tuple, list)) and len(size) == 2):
        raise ValueError(f"imresize: `size` must be a pair (out_h, out_w), got {size!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size):
        raise ValueError(f"imresize: `size` must hold positive integers, got {size!r}")
    oh, ow = int(size[0]), int(size[1])
    return (oh / h, ow / w), (oh, ow)


def _resize(x: torch.Tensor, scales, sizes, antialias: bool, after_pass=None) -> torch.Tensor:
    """Resize the last two axes of ``x`` (``[..., H, W]``, float) axis by axis, smaller scale first."""
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        in_len = x.shape[-2 + axis]
        if in_len == sizes[axis] and scales[axis] == 1.0:
            continue  # MATLAB's weights are the identity here
        m = _matrix(in_len, sizes[axis], scales[axis], antialias, x.dtype, x.device)
        x = torch.matmul(m, x) if axis == 0 else torch.matmul(x, m.T)
        if after_pass is not None:
            x = after_pass(x)
    return x


def imresize(
    x: torch.Tensor,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """MATLAB ``imresize(x, scale_or_size, 'bicubic')`` on the last two axes of a float tensor.

    Args:
        x: float tensor ``[..., H, W]`` (e.g. ``[N, C, H, W]`` or ``[C, H, W]``), any device.
        scale: a positive float, or a pair ``(scale_h, scale_w)``; output size ``ceil(scale * in)``.
        size: ``(out_h, out_w)``; the per-axis scale is then ``out / in`` (as MATLAB derives it).
        antialias: MATLAB's ``'Antialiasing'`` option (widen the kernel when shrinking).

    Returns:
        Tensor ``[..., out_h, out_w]`` with the dtype and device of ``x``. float32/float64 are computed
        in their own precision; float16/bfloat16 are computed in float32 and cast back. No clamping.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"imresize: expected a float torch.Tensor, got {getattr(x, 'dtype', type(x))}")
    if x.ndim < 2:
        raise ValueError(f"imresize: expected a tensor [..., H, W] with at least 2 dims, got shape {tuple(x.shape)}")
    scales, sizes = _plan(tuple(x.shape[-2:]), scale, size)
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    return _resize(work, scales, sizes, antialias).to(x.dtype)


def _round_uint8(v: torch.Tensor) -> torch.Tensor:
    """MATLAB's double -> uint8: round half away from zero, saturate to [0, 255] (stays float64)."""
    r = torch.floor(v)
    r = r + (v - r >= 0.5).to(v.dtype)  # exact, unlike floor(v + 0.5) for v just below .5
    return r.clamp_(0, 255)


def imresize_uint8(
    img: np.ndarray,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    round_each_pass: bool = True,
) -> np.ndarray:
    """MATLAB ``imresize(img, scale_or_size, 'bicubic')`` for a uint8 image, bit-exact in intent.

    Args:
        img: uint8 array ``[H, W]`` or ``[H, W, C]``.
        scale, size: as in :func:`imresize`.
        round_each_pass: MATLAB rounds and saturates to uint8 after *each* axis (its mex returns the
            input class). ``False`` rounds only once at the end, like BasicSR's/MMEditing's ports.

    Returns:
        uint8 array ``[out_h, out_w]`` or ``[out_h, out_w, C]``. Computed in float64, as MATLAB does
        (float32 would move results that sit near a .5 rounding boundary by one grey level).
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise ValueError(f"imresize_uint8: expected a uint8 numpy array, got {getattr(img, 'dtype', type(img))}")
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize_uint8: expected [H, W] or [H, W, C], got shape {img.shape}")
    scales, sizes = _plan(img.shape[:2], scale, size)
    x = torch.from_numpy(img.astype(np.float64))  # a fresh, writable float64 copy
    x = x.permute(2, 0, 1) if img.ndim == 3 else x
    y = _resize(x, scales, sizes, True, _round_uint8 if round_each_pass else None)
    y = _round_uint8(y).to(torch.uint8)
    y = y.permute(1, 2, 0) if img.ndim == 3 else y
    return np.ascontiguousarray(y.numpy())
