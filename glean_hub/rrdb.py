"""RRDB trunk (ESRGAN's Residual-in-Residual Dense Blocks), GLEAN's feature extractor.

Matches MMEditing's `RRDBFeatureExtractor` key for key: `conv_first`, `body.{i}.rdb{1,2,3}.conv{1..5}`,
`conv_body`. Output: `f + conv_body(body(f))` with `f = conv_first(x)`; no activation after
`conv_first` or `conv_body`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs; conv_i sees cat(x, x1, ..., x_{i-1}); LReLU(0.2) after conv1-4; out = x5 * 0.2 + x."""

    def __init__(self, channels: int = 64, growth: int = 32):
        super().__init__()
        for i in range(5):
            out_channels = channels if i == 4 else growth
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels + i * growth, out_channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> same
        features = [x]
        for i in range(1, 5):
            conv = getattr(self, f"conv{i}")
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return self.conv5(torch.cat(features, 1)) * 0.2 + x


class RRDB(nn.Module):
    """Three dense blocks in sequence, with residual scale 0.2 around them."""

    def __init__(self, channels: int, growth: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(channels, growth)
        self.rdb2 = ResidualDenseBlock(channels, growth)
        self.rdb3 = ResidualDenseBlock(channels, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBFeatureExtractor(nn.Module):
    """[N, in_channels, H, W] -> [N, channels, H, W]."""

    def __init__(self, in_channels: int = 3, channels: int = 64, num_blocks: int = 23, growth: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_channels, channels, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(channels, growth) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        return feat + self.conv_body(self.body(feat))
