"""The official-checkpoint converter: key-for-key agreement with the four released manifests,
shape-based config inference, strict failures that name the tensors, and safe unpickling."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from conftest import tiny_config, tiny_model
from official import MANIFESTS, manifest, meta_state_dict, save_official_checkpoint
from safetensors import safe_open

from glean_hub import GLEAN, StyleGAN2Generator
from glean_hub.cli import main
from glean_hub.config import OFFICIAL_CONFIGS
from glean_hub.convert import convert_bank, convert_glean, infer_glean_config, read_checkpoint
from glean_hub.errors import CheckpointError


@pytest.mark.parametrize("name", MANIFESTS)
def test_model_keys_equal_the_released_manifest_key_for_key(name):
    m = manifest(name)
    with torch.device("meta"):
        model = GLEAN(OFFICIAL_CONFIGS[name])
    ours = [("generator." + k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(k, shape) for k, shape, _ in m["keys"]]  # same names, shapes and order
    assert sum(p.numel() for p in model.parameters()) == m["params"]
    assert sum(p.numel() for p in model.generator.parameters()) == m["bank_params"]
    assert (model.config.in_size, model.config.out_size, model.config.num_styles) == (m["in_size"], m["out_size"], m["num_styles"])


@pytest.mark.parametrize("name", MANIFESTS)
def test_config_is_inferred_from_shapes(name):
    network = {k[len("generator."):]: v for k, v in meta_state_dict(name).items()}
    config = infer_glean_config(network, category=OFFICIAL_CONFIGS[name].category, degradation=OFFICIAL_CONFIGS[name].degradation)
    assert config == OFFICIAL_CONFIGS[name]
    args = manifest(name)["constructor_args"]
    assert (config.rrdb_channels, config.num_rrdbs, config.bank.style_channels, config.bank.num_mlps, config.bank.channel_multiplier) == (
        args["rrdb_channels"], args["num_rrdbs"], args["style_channels"], args["num_mlps"], args["channel_multiplier"])


def official_tiny_checkpoint(tmp_path, model=None, extra=None, drop=(), reshape=None):
    model = model or tiny_model()
    state = {"generator." + k: v for k, v in model.state_dict().items() if k not in drop}
    if reshape:
        state["generator." + reshape] = torch.zeros(7)
    return save_official_checkpoint(state, tmp_path / "tiny.pth", extra=extra)


def test_tiny_round_trip_through_the_cli(tmp_path, capsys):
    model = tiny_model()
    ckpt = official_tiny_checkpoint(tmp_path, model, extra={"discriminator.final.weight": torch.zeros(2), "perceptual_loss.vgg.0.weight": torch.zeros(2)})
    assert main(["convert", str(ckpt), str(tmp_path / "out"), "--category", "faces", "--keep-discriminator"]) == 0
    summary = capsys.readouterr().out
    assert "dropped 1 tensors under 'perceptual_loss.'" in summary and "dropped 1 tensors under 'discriminator.'" in summary
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "config.json", "discriminator.safetensors", "model.safetensors"]
    with safe_open(tmp_path / "out" / "model.safetensors", "pt") as f:
        assert sorted(f.keys()) == sorted(model.state_dict())
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["category"] == "faces" and config["bank_id"] is None and config["scale"] == 4
    loaded = GLEAN.from_pretrained(str(tmp_path / "out"))
    lr = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(lr), model(lr))


def test_missing_unexpected_and_misshapen_tensors_are_named(tmp_path):
    ckpt = official_tiny_checkpoint(
        tmp_path, drop=("decoder.0.upsample_conv.bias",), extra={"generator.encoder.9.weight": torch.zeros(1)}, reshape="fusion_out.0.bias"
    )
    with pytest.raises(CheckpointError) as e:
        convert_glean(ckpt, tmp_path / "out")
    msg = str(e.value)
    assert "1 missing: decoder.0.upsample_conv.bias" in msg
    assert "1 unexpected: encoder.9.weight" in msg
    assert "fusion_out.0.bias: file [7] vs model [32]" in msg
    assert not (tmp_path / "out").exists()


def test_unknown_top_level_keys_are_rejected(tmp_path):
    ckpt = official_tiny_checkpoint(tmp_path, extra={"ema.generator.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unexpected top-level keys.*ema.generator.weight"):
        convert_glean(ckpt, tmp_path / "out")


def test_a_bank_checkpoint_is_not_a_glean_checkpoint(tmp_path):
    bank = tiny_model().generator
    path = tmp_path / "bank.pth"
    torch.save({"state_dict": {"generator_ema." + k: v for k, v in bank.state_dict().items()}}, path)
    with pytest.raises(CheckpointError, match="unexpected top-level keys"):
        convert_glean(path, tmp_path / "out")


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_never_run(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"meta": Evil(), "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="cannot read .* safely"):
        read_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", pickle.dumps([1, 2, 3])])
def test_corrupt_or_foreign_files_give_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_cli_prints_one_line_errors(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.pth"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("glean-hub convert: error: no checkpoint file") and err.count("\n") == 1


def test_official_stylegan2_checkpoint_converts_to_a_bank(tmp_path):
    bank = tiny_model().generator
    state = {"generator_ema." + k: v for k, v in bank.state_dict().items()}
    state |= {"generator." + k: torch.zeros_like(v) for k, v in bank.state_dict().items()}
    state |= {"discriminator.convs.0.0.weight": torch.ones(4, 3, 1, 1)}
    path = tmp_path / "stylegan2.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    report = convert_bank(path, tmp_path / "bank", category="faces")
    assert report.config == bank.config.__class__(**{**bank.config.__dict__, "category": "faces"})
    loaded = StyleGAN2Generator.from_pretrained(str(tmp_path / "bank"))
    w = torch.randn(2, loaded.config.num_styles, loaded.config.style_channels)
    with torch.no_grad():
        assert torch.equal(loaded.synthesis(w), bank.synthesis(w))  # the EMA weights were taken
    with safe_open(tmp_path / "bank" / "discriminator.safetensors", "pt") as f:
        assert list(f.keys()) == ["convs.0.0.weight"]


def test_tiny_config_inference_covers_non_official_widths():
    model = GLEAN(tiny_config(in_size=4, out_size=64))
    network = {k: v for k, v in model.state_dict().items()}
    assert infer_glean_config(network) == model.config
