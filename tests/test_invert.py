"""GAN inversion (glean_hub.invert) on a tiny random bank: it lowers its LR loss, is deterministic, leaves the
bank untouched, runs through the pipeline's input rules, and `glean-hub invert` writes its PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_model
from PIL import Image

from glean_hub.cli import main
from glean_hub.errors import ConfigError
from glean_hub.imresize import imresize
from glean_hub.invert import InversionPipeline, InversionSettings, invert, synthesize


@pytest.fixture(scope="module")
def bank():
    return tiny_model(category="faces").generator  # 32 px, frozen


def target_lr(bank, n: int = 2, seed: int = 5) -> torch.Tensor:
    """LRs of images the bank can make (8x8 from 32x32), so that the inversion has something to find."""
    torch.manual_seed(seed)
    with torch.no_grad():
        return imresize(bank(torch.randn(n, bank.config.style_channels)).clamp(-1, 1), size=(8, 8))


def test_synthesize_is_the_banks_synthesis(bank):
    w = bank.mapping(torch.randn(2, bank.config.style_channels))[:, None].expand(-1, bank.config.num_styles, -1)
    with torch.no_grad():
        torch.testing.assert_close(synthesize(bank, w, bank.stored_noise), bank.synthesis(w.contiguous()))


@pytest.mark.parametrize("kwargs", [{}, {"optimize_noise": True}, {"init": "random"}, {"generator_steps": 10}])
def test_inversion_lowers_its_lr_loss_and_leaves_the_bank_alone(bank, kwargs):
    before = {k: v.clone() for k, v in bank.state_dict().items()}
    fused = [m.fused for m in bank.modules() if hasattr(m, "fused")]
    lr = target_lr(bank)
    r = invert(bank, lr, InversionSettings(steps=40, mean_samples=256, **kwargs))
    assert r.images.shape == (2, 3, 32, 32) and r.latents.shape == (2, bank.config.num_styles, bank.config.style_channels)
    assert len(r.lr_mse) == 40 + kwargs.get("generator_steps", 0)
    assert r.lr_mse[-1] < 0.5 * r.lr_mse[0]
    final = float(((imresize(r.images, size=(8, 8)) - lr) ** 2).mean())
    assert final < r.lr_mse[0]
    for k, v in bank.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None and not p.requires_grad for p in bank.parameters())
    assert [m.fused for m in bank.modules() if hasattr(m, "fused")] == fused


def test_inversion_is_deterministic_and_per_image(bank):
    lr = target_lr(bank, n=3)
    s = InversionSettings(steps=15, mean_samples=256, seed=3, optimize_noise=True)
    a, b = invert(bank, lr, s), invert(bank, lr, s)
    assert torch.equal(a.images, b.images)
    alone = invert(bank, lr[1:2], s)  # a batch gives each image its own optimisation
    torch.testing.assert_close(alone.images, a.images[1:2], atol=2e-3, rtol=0)
    other = invert(bank, lr, InversionSettings(steps=15, mean_samples=256, seed=4, init="random"))
    assert not torch.equal(other.images, a.images)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"init": "zero"}, "init must be one of"),
    ({"latent_weight": -1}, "latent_weight must be a finite number >= 0"),
    ({"generator_steps": 1.5}, "generator_steps must be an integer"),
])
def test_bad_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        InversionSettings(**kwargs)


def test_bad_lr_and_scale(bank):
    with pytest.raises(ConfigError, match=r"lr must be \[N, 3, n, n\]"):
        invert(bank, torch.zeros(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="scale=3 does not fit the bank's 32x32 output"):
        InversionPipeline(bank, 3)
    with pytest.raises(ConfigError, match="StyleGAN2Generator"):
        InversionPipeline(tiny_model(), 4)


def test_pipeline_same_input_rules_and_outputs(bank):
    pipe = InversionPipeline(bank, 4, InversionSettings(steps=5, mean_samples=64), device="cpu", category="faces")
    assert (pipe.config.in_size, pipe.config.out_size, pipe.config.scale) == (8, 32, 4)
    yy, xx = np.mgrid[0:20, 0:30]
    wide = Image.fromarray(np.stack([xx * 8, yy * 12, xx + yy], -1).astype(np.uint8))
    out = pipe([wide, np.zeros((8, 8, 3), np.uint8)], mode="pad")
    assert out.images[0].size == (32, 21) and out.images[1].size == (32, 32)  # pad: aspect kept, padding cut
    assert out.lr_images[0].size == (8, 8) and out.info[0].policy == "pad" and out.info[1].policy == "passthrough"
    assert "InversionPipeline(faces bank, 8->32, steps=5" in repr(pipe)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "faces-4x"
    tiny_model(category="faces").save_pretrained(path)
    return path


def test_cli_invert_writes_pngs(tmp_path, model_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 40 + 80 * i, np.uint8)).save(src / f"img{i}.png")
    out = tmp_path / "out"
    rc = main(["invert", str(src), "-o", str(out), "--model", str(model_dir), "--steps", "3", "--save-lr", "--batch-size", "2"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["img0_invert4x.png", "img0_lr.png", "img1_invert4x.png", "img1_lr.png"]
    assert Image.open(out / "img0_invert4x.png").size == (32, 32)
    assert "inverted 2 of 2 images" in capsys.readouterr().out
    rc = main(["invert", str(src), "-o", str(out), "--model", str(model_dir), "--steps", "3"])  # no silent overwrite
    assert rc == 1 and "already exists; pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--steps", "3"], "say which bank"),
    (["--bank", "MODEL", "--model", "MODEL"], "give either --bank or --model"),
    (["--model", "MODEL", "--scale", "3"], "scale"),
])
def test_cli_invert_bad_arguments_are_one_line(tmp_path, model_dir, capsys, argv, message):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    argv = [str(model_dir) if a == "MODEL" else a for a in argv]
    rc = main(["invert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit) as e:
        main(["invert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--steps", "0"])
    assert e.value.code == 2
