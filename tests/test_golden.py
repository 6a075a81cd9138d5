"""Exactness: official-layout checkpoints with the golden recipe's weights, converted and loaded the
way a user would, reproduce the official implementation's outputs to < 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from official import GOLDEN, golden, golden_state_dict, save_official_checkpoint

from glean_hub import GLEAN
from glean_hub.cli import main


def check_output(model: GLEAN, name: str) -> None:
    ref = golden(name)
    with torch.no_grad():
        out = model(torch.from_numpy(ref["input"]))
    stride = int(ref.get("stride", 1))
    assert out.shape[-1] == ref["output"].shape[-1] * stride
    diff = np.abs(out[:, :, ::stride, ::stride].numpy() - ref["output"]).max()
    assert diff < 1e-4, f"{name}: max abs difference {diff}"
    # subsampled files still check every pixel in aggregate
    assert abs(out.double().mean().item() - float(ref["output_mean"])) < 1e-5
    assert abs(out.double().abs().mean().item() - float(ref["output_abs_mean"])) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", GOLDEN)
def test_converted_official_checkpoint_matches_golden_output(name, tmp_path):
    state = golden_state_dict(name)
    disc = {"discriminator.convs.0.0.weight": torch.zeros(8, 3, 1, 1)}  # wrapper parts are dropped
    ckpt = save_official_checkpoint(state, tmp_path / f"{name}.pth", extra=disc)
    del state
    assert main(["convert", str(ckpt), str(tmp_path / "model")]) == 0
    ckpt.unlink()
    check_output(GLEAN.from_pretrained(str(tmp_path / "model")), name)


@pytest.mark.slow
def test_split_bank_conversion_matches_golden_output(tmp_path):
    name = "glean_cat_16x"
    ckpt = save_official_checkpoint(golden_state_dict(name), tmp_path / "cat.pth")
    assert main(["convert", str(ckpt), str(tmp_path / "cat-16x"), "--bank-out", str(tmp_path / "bank-cat-256"), "--category", "cats"]) == 0
    model = GLEAN.from_pretrained(str(tmp_path / "cat-16x"), scale=16, category="cats")
    assert model.config.bank_id == "../bank-cat-256" and len(model.config.bank_sha256) == 64
    check_output(model, name)


@pytest.mark.slow
def test_realworld_checkpoint_round_trips_tensor_for_tensor(tmp_path):
    """The fourth release (FFHQ 128->1024, real-world degradation) has no golden output: its conversion
    is checked tensor for tensor and for the recorded degradation."""
    name = "glean_in128out1024_4x2_300k_ffhq_celebahq"
    state = golden_state_dict(name)
    ckpt = save_official_checkpoint(state, tmp_path / "ffhq8x.pth")
    assert main(["convert", str(ckpt), str(tmp_path / "model"), "--category", "faces", "--degradation", "realworld"]) == 0
    ckpt.unlink()
    model = GLEAN.from_pretrained(str(tmp_path / "model"), scale=8, category="faces")
    assert model.config.degradation == "realworld" and (model.config.in_size, model.config.out_size) == (128, 1024)
    loaded = model.state_dict()
    assert [f"generator.{k}" for k in loaded] == list(state)
    assert all(torch.equal(loaded[k[len("generator."):]], v) for k, v in state.items())
