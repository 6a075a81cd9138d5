"""Official-layout GLEAN checkpoints built from the key manifests and the golden weight recipe.

`shared/reference/golden/README.md` gives the recipe: weights that anyone can rebuild with numpy,
for which the official code's outputs are stored in `tests/data/glean_*.npz`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).parent / "data"
MANIFESTS = sorted(p.stem for p in (DATA / "glean_keys").glob("*.json"))
GOLDEN = sorted(p.stem for p in DATA.glob("glean_*.npz"))
FIR = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64 * 4


def manifest(name: str) -> dict:
    return json.loads((DATA / "glean_keys" / f"{name}.json").read_text())


def golden_value(key: str, shape: list[int], t: int) -> np.ndarray:
    """The recipe's value for entry t; `key` is the network key (leading `generator.` stripped once)."""
    k = key
    if k.endswith(".kernel"):
        return FIR.astype(np.float32)
    z = np.random.default_rng(1000 + t).standard_normal(shape)
    if k.startswith("generator."):
        if k.endswith("style_modulation.bias"):
            v = 1 + 0.2 * z
        elif k.endswith("noise_injector.weight"):
            v = 0.2 + 0.1 * z
        elif "injected_noise_" in k or k.endswith("constant_input.input") or k.endswith("weight_orig") or k.startswith("generator.style_mapping."):
            v = z
        else:
            v = 0.2 * z
    elif k.endswith(".bias"):
        v = 0.05 * z
    else:
        fan_in = int(np.prod(shape[1:]))
        if ".body." in k:
            gain = 0.1 * math.sqrt(2)
        elif k.endswith("conv_body.weight"):
            gain = 0.01
        elif k.startswith("encoder.") or k.startswith("fusion_out."):
            gain = math.sqrt(2)
        elif k.startswith("decoder.") and k.endswith(".2.weight"):
            gain = 0.35
        else:
            gain = 1.0
        v = z * gain / math.sqrt(fan_in)
    return v.astype(np.float32)


def golden_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Full training-wrapper state dict (`generator.`-prefixed keys) with the recipe's weights."""
    out = {}
    for t, (key, shape, _kind) in enumerate(manifest(name)["keys"]):
        out[key] = torch.from_numpy(golden_value(key[len("generator."):], shape, t))
    return out


def meta_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Keys and shapes only (meta tensors), for checks that need no numbers."""
    return {k: torch.empty(shape, device="meta") for k, shape, _ in manifest(name)["keys"]}


def save_official_checkpoint(state_dict: dict[str, torch.Tensor], path: Path, extra: dict | None = None) -> Path:
    """Write `{'meta': ..., 'state_dict': ...}` as MMEditing does (discriminator keys optional)."""
    sd = dict(state_dict)
    sd.update(extra or {})
    torch.save({"meta": {"mmedit_version": "0.8.0", "iter": 300000, "epoch": 1}, "state_dict": sd}, path)
    return path


def golden(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(DATA / f"{name}.npz"))
