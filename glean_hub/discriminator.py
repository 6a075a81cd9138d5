"""StyleGAN2 discriminator (residual, minibatch-stddev), used to train banks and GLEAN models.

Attribute names are MMGeneration's `StyleGAN2Discriminator` keys (`convs.0.0.conv.weight_orig`,
`convs.i.conv1/conv2/skip`, `final_conv`, `final_linear`), so the discriminator of an official
StyleGAN2 checkpoint (kept by `glean-hub convert-bank`) initialises GLEAN training directly.
Its widths follow the bank's channel table.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import BankConfig
from .stylegan2 import Blur, EqualLinearAct, FusedBiasLeakyReLU, equalized_lr_scale, randn_init


class EqualConv2d(nn.Module):
    """Conv2d whose weight is `weight_orig * sqrt(1 / fan_in)` at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight_orig = nn.Parameter(randn_init(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = equalized_lr_scale(in_channels * kernel_size * kernel_size)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight_orig * self.scale, self.bias, stride=self.stride, padding=self.padding)


class _ConvHolder(nn.Module):
    """Holds the conv as `.conv` (MMCV's ConvModule naming, hence `*.conv.weight_orig` keys)."""

    def __init__(self, conv: EqualConv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def conv_down_layer(in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                    blur_kernel=(1, 3, 3, 1), activate: bool = True) -> nn.Sequential:
    """[blur] -> equalised conv (stride 2 when downsampling) -> [bias + leaky ReLU * sqrt(2)]."""
    layers: list[nn.Module] = []
    if downsample:
        p = (len(blur_kernel) - 2) + (kernel_size - 1)
        layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
        stride, padding = 2, 0
    else:
        stride, padding = 1, kernel_size // 2
    layers.append(_ConvHolder(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)))
    if activate:
        layers.append(FusedBiasLeakyReLU(out_channels))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv1 = conv_down_layer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = conv_down_layer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = conv_down_layer(in_channels, out_channels, 1, downsample=True, blur_kernel=blur_kernel, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, I, H, W] -> [N, O, H/2, W/2]
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Append one channel: the mean standard deviation over groups of samples. [N, C, H, W] -> [N, C+1, H, W]."""
    n, c, h, w = x.shape
    g = min(n, group_size)
    if n % g:
        raise ValueError(f"batch size {n} must be <= {group_size} or a multiple of it")
    y = x.reshape(g, -1, 1, c, h, w)
    y = torch.sqrt(y.var(dim=0, unbiased=False) + eps)
    y = y.mean(dim=(2, 3, 4), keepdim=True).squeeze(2)  # [N/g, 1, 1, 1]
    return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """[N, img_channels, S, S] in [-1, 1] -> logits [N, 1], with S = config.out_size."""

    def __init__(self, config: BankConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        size = config.out_size
        convs: list[nn.Module] = [conv_down_layer(config.img_channels, ch(size), 1)]
        for log_res in range(config.log_size, 2, -1):
            res = 2**log_res
            convs.append(ResBlock(ch(res), ch(res // 2), config.blur_kernel))
        self.convs = nn.Sequential(*convs)
        self.final_conv = conv_down_layer(ch(4) + 1, ch(4), 3)
        self.final_linear = nn.Sequential(
            EqualLinearAct(ch(4) * 16, ch(4), activate=True),
            EqualLinearAct(ch(4), 1),
        )

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Logits [N, 1]; with `return_features`, also the output of every block (for feature matching)."""
        features = []
        for block in self.convs:
            x = block(x)
            features.append(x)
        x = self.final_conv(minibatch_stddev(x))
        logits = self.final_linear(x.flatten(1))
        return (logits, features) if return_features else logits
