"""Losses: StyleGAN2's logistic GAN losses and lazy R1, and GLEAN's perceptual terms.

Pretrained VGG weights cannot be downloaded here, so the default perceptual term is feature
matching on the discriminator's block outputs (which the bank's discriminator has learnt on the
same category). A VGG19 perceptual loss (conv4_2, the layer MMEditing's GLEAN config uses) is used
when the user passes a local weight file (torchvision's `vgg19` state dict, .pth or .safetensors).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D at real images (real must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 distance between discriminator features of generated and real images, averaged over blocks."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake, real)) / len(fake)


_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


class VGGPerceptual(nn.Module):
    """L1 between VGG19 features (output of `features[layer]`, default 21 = conv4_2) of SR and HR."""

    def __init__(self, weights: str | Path, layer: int = 21):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU()]
                in_ch = v
        self.features = nn.Sequential(*layers[: layer + 1])
        state = _load_tensors(weights)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing = [k for k in self.features.state_dict() if k not in state]
        if missing:
            raise CheckpointError(f"{weights} is not a torchvision vgg19 state dict: missing features.{missing[0]} (and {len(missing) - 1} more)")
        self.features.load_state_dict({k: state[k] for k in self.features.state_dict()})
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        def feats(x):
            return self.features(((x + 1) / 2 - self.mean) / self.std)

        return F.l1_loss(feats(sr), feats(hr).detach())


def _load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return obj.get("state_dict", obj)
