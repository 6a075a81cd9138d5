"""StyleGAN2 generators in rosinality/stylegan2-pytorch layout convert to banks (rename table, same numerics),
through convert-bank, and by URL; nothing but tensors, containers and argparse.Namespace is unpickled."""

from __future__ import annotations

import argparse
import re

import pytest
import torch
from conftest import tiny_model

from glean_hub import StyleGAN2Generator
from glean_hub.cli import main
from glean_hub.convert import convert_bank, read_checkpoint
from glean_hub.errors import CheckpointError


def to_rosinality(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our (MMGeneration) generator keys -> rosinality's, written out independently of the converter's table."""
    out = {}
    for k, v in state.items():
        k = re.sub(r"^style_mapping\.(\d+)\.linear\.weight_orig$", r"style.\1.weight", k)
        k = re.sub(r"^style_mapping\.(\d+)\.bias$", r"style.\1.bias", k)
        k = re.sub(r"^injected_noise_(\d+)$", r"noises.noise_\1", k)
        k = k.replace("constant_input.input", "input.input").replace(".style_modulation.linear.weight_orig", ".modulation.weight")
        k = k.replace(".style_modulation.bias", ".modulation.bias").replace(".conv.weight_orig", ".conv.weight")
        k = k.replace(".noise_injector.weight", ".noise.weight")
        out[k] = v
    return out


def rosinality_checkpoint(path, bank, **extra):
    g_ema = to_rosinality(bank.state_dict())
    torch.save({"g": {k: torch.zeros_like(v) for k, v in g_ema.items()}, "d": {"convs.0.0.weight": torch.ones(2, 3, 1, 1)},
                "g_ema": g_ema, "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "params": [0]}]},
                "args": argparse.Namespace(size=bank.config.out_size, channel_multiplier=1), **extra}, path)
    return path


def test_a_rosinality_g_ema_converts_to_the_same_generator(tmp_path, capsys):
    bank = tiny_model(seed=2).generator
    ckpt = rosinality_checkpoint(tmp_path / "550000.pt", bank)
    assert main(["convert-bank", str(ckpt), str(tmp_path / "bank"), "--category", "faces"]) == 0
    loaded = StyleGAN2Generator.from_pretrained(str(tmp_path / "bank"))
    assert loaded.config.out_size == bank.config.out_size and loaded.config.channel_max == bank.config.channel_max
    w = torch.randn(2, bank.config.num_styles, bank.config.style_channels)
    with torch.no_grad():
        assert torch.equal(loaded.synthesis(w), bank.synthesis(w))
    assert sorted(p.name for p in (tmp_path / "bank").iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_rosinality_keys_outside_the_table_are_named(tmp_path):
    bank = tiny_model(seed=2).generator
    path = tmp_path / "odd.pt"
    g_ema = to_rosinality(bank.state_dict()) | {"extra.weight": torch.zeros(1)}
    torch.save({"g_ema": g_ema}, path)
    with pytest.raises(CheckpointError, match="no rename rule covers: extra.weight"):
        convert_bank(path, tmp_path / "out")


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_only_namespace_is_allowed_beyond_tensors(tmp_path, capsys):
    bank = tiny_model(seed=2).generator
    path = rosinality_checkpoint(tmp_path / "evil.pt", bank, args=Evil())
    with pytest.raises(CheckpointError, match="cannot read .* safely"):
        read_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out
