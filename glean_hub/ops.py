"""Pure-PyTorch reference ops of StyleGAN2: FIR kernels, upfirdn2d, fused bias + leaky ReLU.

These run on any device and are the reference that every faster path is tested against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def make_kernel(taps: tuple[int, ...] | list[int], gain: float = 1.0) -> torch.Tensor:
    """2-D FIR kernel from 1-D taps: outer(taps, taps) / sum, times `gain`. Returns [K, K] float32."""
    outer = [[a * b for b in taps] for a in taps]  # plain Python: no tensor ops when built on the meta device
    total = sum(map(sum, outer))
    return torch.tensor([[v / total * gain for v in row] for row in outer], dtype=torch.float32)


def upfirdn2d(
    x: torch.Tensor,  # [N, C, H, W]
    kernel: torch.Tensor,  # [K, K]
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),  # (before, after), applied on both axes after upsampling
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with `kernel` (a true convolution), downsample.

    Matches the reference `upfirdn2d` of mmcv / rosinality for non-negative pads.
    Output side: (H * up + pad0 + pad1 - K) // down + 1.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = torch.flip(kernel, (0, 1)).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def bias_leaky_relu(
    x: torch.Tensor,  # [N, C, ...]
    bias: torch.Tensor,  # [C]
    negative_slope: float = 0.2,
    scale: float = SQRT2,
) -> torch.Tensor:
    """StyleGAN2's fused activation: leaky_relu(x + bias, 0.2) * sqrt(2)."""
    x = x + bias.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    return F.leaky_relu(x, negative_slope) * scale


def pixel_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / (||x||_2 / sqrt(C) + eps) over dim 1 (the mapping MLP's input normalisation)."""
    norm = torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True)
    norm = norm / torch.sqrt(torch.tensor(x.shape[1]).to(x))
    return x / (norm + eps)
