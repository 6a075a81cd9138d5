"""StyleGAN2 generators in the layouts people have, other than MMGeneration's: rename tables to our keys.

rosinality/stylegan2-pytorch checkpoints (`train.py`: {'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'};
`convert_weight.py`: {'g_ema', 'latent_avg'}) hold the generator under `g_ema` with the names MMGeneration's
were derived from; the numerics are the same (equalised lr, modulated convs, the same blur kernels and
noise), so a rename table is the whole conversion. `args` (an argparse.Namespace) is the one class allowed
beyond tensors and containers. The discriminator (`d`) has another layout and is dropped.
"""

from __future__ import annotations

import argparse
import re

import torch

# torch.load(weights_only=True) may build these (argparse.Namespace: attribute assignment only, no code).
SAFE_GLOBALS = [argparse.Namespace]

# rosinality key -> MMGeneration key (ours), first match wins; a key that matches no rule is an error
ROSINALITY_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^style\.(\d+)\.weight$", r"style_mapping.\1.linear.weight_orig"),
    (r"^style\.(\d+)\.bias$", r"style_mapping.\1.bias"),
    (r"^input\.input$", "constant_input.input"),
    (r"^noises\.noise_(\d+)$", r"injected_noise_\1"),
    (r"^(conv1|convs\.\d+|to_rgb1|to_rgbs\.\d+)\.conv\.weight$", r"\1.conv.weight_orig"),
    (r"^(conv1|convs\.\d+|to_rgb1|to_rgbs\.\d+)\.conv\.modulation\.weight$", r"\1.conv.style_modulation.linear.weight_orig"),
    (r"^(conv1|convs\.\d+|to_rgb1|to_rgbs\.\d+)\.conv\.modulation\.bias$", r"\1.conv.style_modulation.bias"),
    (r"^(conv1|convs\.\d+)\.noise\.weight$", r"\1.noise_injector.weight"),
    (r"^(conv1|convs\.\d+)\.activate\.bias$", r"\1.activate.bias"),
    (r"^(convs\.\d+)\.conv\.blur\.kernel$", r"\1.conv.blur.kernel"),
    (r"^(to_rgb1|to_rgbs\.\d+)\.bias$", r"\1.bias"),
    (r"^(to_rgbs\.\d+)\.upsample\.kernel$", r"\1.upsample.kernel"),
)


def is_rosinality(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("g_ema"), dict) and "state_dict" not in obj


def rosinality_to_mmgen(obj: dict) -> dict[str, torch.Tensor]:
    """{'g_ema': {...}} -> {'generator_ema.<our key>': tensor}; unknown keys raise CheckpointError by name."""
    from .errors import CheckpointError

    out, unknown = {}, []
    for key, value in obj["g_ema"].items():
        for pattern, target in ROSINALITY_RENAMES:
            if re.match(pattern, key):
                out["generator_ema." + re.sub(pattern, target, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"rosinality checkpoint: g_ema keys that no rename rule covers: {', '.join(unknown[:10])}")
    if not all(isinstance(v, torch.Tensor) for v in out.values()):
        raise CheckpointError("rosinality checkpoint: g_ema holds something other than tensors")
    return out
