"""The CPU recipe of the bundled models: bicubic skip, decoder width, ICNR start, L1 + extra framings, the grid
measure, colour for grayscale banks is in test_pipeline.py, and the verdicts read from the installed metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import load_script, tiny_config

from glean_hub import GLEAN, registry
from glean_hub.config import GLEANConfig
from glean_hub.errors import ConfigError
from glean_hub.eval import grid_peaks, periodic_artifact_db
from glean_hub.fast import optimize
from glean_hub.imresize import imresize
from glean_hub.train.glean import init_decoder


def recipe_config(**changes) -> GLEANConfig:
    return tiny_config().replace(decoder_width=24, bicubic_skip=True, **changes)


def test_decoder_width_sets_the_pixel_shuffle_stages_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = GLEAN(recipe_config()).eval()
    convs = [b.upsample_conv for b in model.decoder[:-1]]
    assert [c.out_channels for c in convs] == [24 * 4] * len(convs)
    assert convs[1].in_channels == 24 + model.config.bank.channels(16)  # own feature + the bank's
    model.save_pretrained(tmp_path / "m")
    again = GLEAN.from_pretrained(str(tmp_path / "m"))
    assert again.config.decoder_width == 24 and again.config.bicubic_skip
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_bicubic_skip_adds_the_matlab_upscale_and_icnr_starts_at_bicubic():
    torch.manual_seed(0)
    model = GLEAN(recipe_config()).eval()
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    up = imresize(x, size=(32, 32))
    with torch.no_grad():
        residual = model(x) - up
        assert residual.abs().max() > 1e-3  # default init: the network adds something
        init_decoder(model)
        torch.testing.assert_close(model(x), up)  # the last conv starts at zero: exactly bicubic


def test_bank_dropout_trains_a_share_of_the_batch_as_the_bank_less_baseline():
    torch.manual_seed(0)
    model = GLEAN(recipe_config())
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        with_bank = model.eval()(x)
        without = model.add_skip(x, model.decode(model.encode(x)[1][-1], None))  # zeros for the bank features
        model.bank_dropout = 0.5
        torch.testing.assert_close(model(x), with_bank)  # evaluation: always the bank
        out = model.train()(x)
    dropped = [bool(torch.allclose(o, w)) for o, w in zip(out, without)]
    kept = [bool(torch.allclose(o, b)) for o, b in zip(out, with_bank)]
    assert all(d != k for d, k in zip(dropped, kept)) and 0 < sum(dropped) < 16, (dropped, kept)


def test_decoder_activation_makes_the_pixel_shuffle_stages_nonlinear():
    torch.manual_seed(0)
    linear, act = GLEAN(recipe_config()).eval(), GLEAN(recipe_config(decoder_activation=True)).eval()
    act.load_state_dict(linear.state_dict())  # no new weights
    x = torch.randn(1, act.decoder[0].upsample_conv.in_channels, 8, 8)
    with torch.no_grad():
        y, z = linear.decoder[0](x), act.decoder[0](x)
    torch.testing.assert_close(z, torch.where(y > 0, y, 0.2 * y))
    assert (y < 0).any()


@pytest.mark.parametrize("activate", [False, True])
def test_icnr_makes_every_pixel_shuffle_output_constant_over_its_sub_pixels(activate):
    torch.manual_seed(0)
    model = GLEAN(tiny_config(decoder_activation=activate))
    init_decoder(model)
    block = model.decoder[0]
    with torch.no_grad():
        y = block(torch.randn(1, block.upsample_conv.in_channels, 8, 8))  # [1, C, 16, 16]
    blocks = y.unfold(2, 2, 2).unfold(3, 2, 2)  # [1, C, 8, 8, 2, 2]
    torch.testing.assert_close(blocks, blocks[..., :1, :1].expand_as(blocks))


def test_dense_rank_adds_a_global_position_aware_residual_that_starts_as_identity(tmp_path):
    torch.manual_seed(0)
    plain, dense = GLEAN(recipe_config()).eval(), GLEAN(recipe_config(dense_rank=16)).eval()
    dense.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(dense(x), plain(x))  # `up` starts at zero
        layer = dense.encoder[0][-1]
        layer.up.weight.normal_(std=0.1)
        feat = torch.zeros(1, layer.up.out_features // 64, 8, 8)
        moved = feat.clone()
        moved[0, 0, 0, 0], feat[0, 0, 7, 7] = 1.0, 1.0  # the same pixel at two places: different answers
        assert (layer(moved)[0, :, 4, 4] - layer(feat)[0, :, 4, 4]).abs().max() > 1e-3  # a far pixel sees both
    dense.save_pretrained(tmp_path / "m")
    again = GLEAN.from_pretrained(str(tmp_path / "m"))
    assert again.config.dense_rank == 16
    with torch.no_grad():
        torch.testing.assert_close(again(x), dense(x))


def test_a_config_written_before_the_recipe_options_loads_with_them_off(tmp_path):
    model = GLEAN(tiny_config())
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    for key in ("decoder_width", "bicubic_skip", "dense_rank", "decoder_activation"):
        del config[key]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    again = GLEAN.from_pretrained(str(tmp_path / "m"))
    c = again.config
    assert (c.decoder_width, c.bicubic_skip, c.dense_rank, c.decoder_activation) == (None, False, None, False)
    del config["num_rrdbs"]  # any other key is still required
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"missing \['num_rrdbs'\]"):
        GLEAN.from_pretrained(str(tmp_path / "m"))


@pytest.mark.parametrize("use_bank", [True, False])
@pytest.mark.parametrize("dense_rank, decoder_activation", [(None, False), (8, True)])
def test_fast_path_equals_reference_with_the_recipe(use_bank, dense_rank, decoder_activation):
    torch.manual_seed(0)
    model = GLEAN(recipe_config(use_bank=use_bank, dense_rank=dense_rank, decoder_activation=decoder_activation)).eval()
    if dense_rank:
        torch.nn.init.normal_(model.encoder[0][-1].up.weight, std=0.05)
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(optimize(model)(x), model(x), atol=2e-5, rtol=0)


@pytest.mark.parametrize("field, value", [("decoder_width", 0), ("decoder_width", 2.5), ("decoder_width", True),
                                          ("bicubic_skip", "yes"), ("bicubic_skip", 1), ("dense_rank", 0),
                                          ("dense_rank", 1.5), ("dense_rank", "8"), ("decoder_activation", 1)])
def test_recipe_fields_are_checked(field, value):
    with pytest.raises(ConfigError, match=field):
        tiny_config().replace(**{field: value})


def test_grid_measure_sees_a_pixel_shuffle_pattern_and_not_smooth_images():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64] / 64
    smooth = np.stack([np.stack([np.sin(rng.uniform(2, 9) * x + rng.uniform(0, 6)) * np.cos(rng.uniform(2, 9) * y)] * 3)
                       for _ in range(8)]) * 100 + 128
    grid = smooth + 12 * np.tile(np.array([[1, -1], [-1, 1]]), (32, 32))  # a period-2 checkerboard, as pixel shuffle makes
    assert abs(grid_peaks(smooth, 8)) < 3
    assert periodic_artifact_db(grid, smooth, 8) > 10
    assert abs(periodic_artifact_db(smooth, smooth, 8)) < 1e-9


def test_verdicts_come_from_the_installed_metrics(monkeypatch, tmp_path):
    entry = registry.MODELS[0]
    rows = [{"model": entry.repo_id, "GLEAN": {"PSNR": 21.0}, "bicubic": {"PSNR": 19.0}, registry.NO_BANK: {"PSNR": 21.5},
             registry.PLAIN_CNN: {"PSNR": 20.75}}]
    (tmp_path / "metrics.json").write_text(json.dumps(rows))
    monkeypatch.setattr(registry, "METRICS_FILE", tmp_path / "metrics.json")
    assert entry.notes.endswith("validation PSNR +2.00 dB over bicubic, -0.50 dB over the same network without the bank, "
                                "+0.25 dB over a plain CNN")
    rows[0]["GLEAN"]["PSNR"] = 18.5
    (tmp_path / "metrics.json").write_text(json.dumps(rows))
    assert "undertrained: its validation PSNR is 0.50 dB below bicubic's" in entry.notes
    assert registry.METRICS_FILE.name == "metrics.json"
    assert (registry.WEIGHTS_DIR / "metrics.json").is_file()  # installed with the weights (package data)


def test_saved_weights_get_the_umask_mode_not_owner_only(tmp_path):
    """safetensors >= 0.7 writes owner-only files; saved folders are meant to be shared and served."""
    import os
    import stat

    from conftest import tiny_model

    old = os.umask(0o022)
    try:
        tiny_model().save_pretrained(tmp_path / "m")
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o644, name


def test_readme_models_table_is_rendered_from_the_installed_metrics():
    from pathlib import Path

    rows = json.loads(registry.METRICS_FILE.read_text())
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("<!-- models-table:start -->\n")[1].split("\n<!-- models-table:end -->")[0]
    assert table == load_script("package_bundled").models_table(rows)


def test_plain_cnn_yardstick_starts_at_bicubic_and_trains_end_to_end(tmp_path, monkeypatch):
    from PIL import Image

    plain = load_script("plain_cnn")
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(plain.PlainCNN(8, 64)(x), imresize(x, size=(64, 64)))
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        (tmp_path / "data" / "cats" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(tmp_path / "data" / "cats" / split / f"{i}.png")
    monkeypatch.setattr("sys.argv", ["plain_cnn.py", "--category", "cats", "--scale", "8", "--steps", "2",
                                     "--data", str(tmp_path / "data"), "--out", str(tmp_path / "plain-cats-8x-64")])
    plain.main()
    metrics = json.loads((tmp_path / "plain-cats-8x-64" / "metrics.json").read_text())
    assert metrics["images"] == 2 and set(metrics["plain"]) == {"psnr", "ssim", "lr_psnr", "grid_db"}
    assert abs(metrics["plain"]["psnr"] - metrics["bicubic"]["psnr"]) < 1.0  # two steps from exactly bicubic
    assert (tmp_path / "plain-cats-8x-64" / "model.pt").is_file()
    package = load_script("package_bundled")  # where the cards and the README table take the yardstick from
    assert package.plain_metrics(tmp_path, "cats", 8, 64, steps=2)["PSNR"] == metrics["plain"]["psnr"]
    assert package.plain_metrics(tmp_path, "cats", 8, 64, steps=3) is None  # not the GLEAN model's budget: not compared
    assert package.plain_metrics(tmp_path, "cats", 16, 64, steps=2) is None

    # stopped after its first step (--max-minutes 0), then rerun: it continues to exactly the same weights
    argv = ["plain_cnn.py", "--category", "cats", "--scale", "8", "--steps", "2", "--data", str(tmp_path / "data"),
            "--cache-dir", str(tmp_path / "plain-cats-8x-64" / "cache"), "--out", str(tmp_path / "resumed")]
    monkeypatch.setattr("sys.argv", [*argv, "--max-minutes", "0"])
    plain.main()
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["step"] == 1
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr("sys.argv", [*argv[:6], "3", *argv[7:]])  # other arguments: refused, not mixed
    with pytest.raises(SystemExit, match="a run with other arguments"):
        plain.main()
    monkeypatch.setattr("sys.argv", argv)
    plain.main()
    assert not (tmp_path / "resumed" / "checkpoint.pt").exists()
    whole, resumed = (torch.load(tmp_path / d / "model.pt") for d in ("plain-cats-8x-64", "resumed"))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_baselines_are_compared_only_at_the_same_steps_and_start(tmp_path, capsys):
    package = load_script("package_bundled")
    cats = "glean_hub/weights/glean-cats-8x-64"
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "training.json").write_text(json.dumps({"step": 3000, "args": {"init_from": cats}}))
    assert package.same_budget(tmp_path / "baseline", 3000, cats)
    assert not package.same_budget(tmp_path / "baseline", 3000)  # fine-tuned from cats vs from scratch
    assert not package.same_budget(tmp_path / "baseline", 1000, cats)
    assert "not compared: baseline trained 3000 steps from " + cats in capsys.readouterr().out
    assert not package.same_budget(tmp_path / "missing", 3000)
    assert not package.same_budget(tmp_path / "baseline", 3000, cats, runs=3)  # one run is not a soup of three
    (tmp_path / "soup").mkdir()
    (tmp_path / "soup" / "training.json").write_text(json.dumps({"step": 3000, "args": {"init_from": cats}, "soup": [{}] * 3}))
    assert package.same_budget(tmp_path / "soup", 3000, cats, runs=3) and not package.same_budget(tmp_path / "soup", 3000, cats)
    assert "not compared: soup trained 3 runs of 3000 steps from " + cats in capsys.readouterr().out
    assert package.started_from(cats) == "`glean-hub/glean-cats-8x-64`"  # cards name bundled models by repo id
    assert package.started_from("runs/init-e0c55cb/glean-cats-16x-64") == (  # INIT_FROM=REV:FOLDER: and the commit
        "`glean-hub/glean-cats-16x-64` as bundled at glean-hub commit e0c55cb")


def test_cards_print_the_command_that_repeats_a_run():
    package = load_script("package_bundled")
    args = {"bank": "glean_hub/weights/bank-towers-64", "data": "../shared/data/towers", "scale": 8, "out": "/runs/t8",
            "steps": 3000, "lr": 0.0003, "seed": 0, "decoder_activation": True, "bicubic_skip": False, "resume": True,
            "cache_dir": "/runs/cache", "init_from": "/runs/cats/glean-cats-8x-64", "extra_crops": "zoom-c,zoom65-c"}
    assert package.card_command(args, "towers") == (
        "glean-hub train --bank glean-hub/bank-towers-64 --data DATA/towers --scale 8 --steps 3000 --lr 0.0003 "
        "--decoder-activation --extra-crops zoom-c,zoom65-c --init-from glean-hub/glean-cats-8x-64")
