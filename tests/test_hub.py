"""save/from_pretrained/push_to_hub: strict safetensors folders, the shared bank with its sha256,
the registry shortcut, and real round trips through the loopback Hub (tests/hub_server.py)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_model
from huggingface_hub import HfApi, ModelCard
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from glean_hub import GLEAN, StyleGAN2Generator
from glean_hub.errors import BankMismatchError, CheckpointError, ConfigError, ModelNotFoundError

pytestmark = pytest.mark.usefixtures("no_network")
LR = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)


def out(model: GLEAN, lr=LR) -> torch.Tensor:
    with torch.no_grad():
        return model(lr)


def with_bank(model: GLEAN, bank_dir, bank_id=None) -> GLEAN:
    """Save the model's bank to `bank_dir` and make the model reference it."""
    sha = model.generator.save_pretrained(bank_dir)
    model.config = model.config.replace(bank_id=str(bank_id or bank_dir), bank_sha256=sha)
    return model


def test_self_contained_folder(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    with safe_open(tmp_path / "m" / "model.safetensors", "pt") as f:
        assert set(f.keys()) == set(model.state_dict()) and f.metadata() == {"format": "pt"}
    loaded = GLEAN.from_pretrained(str(tmp_path / "m"))
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(out(loaded), out(model))
    assert not any(p.requires_grad for p in loaded.generator.parameters())


def test_referenced_bank_is_stored_once_and_checked(tmp_path):
    model = with_bank(tiny_model(), tmp_path / "bank")
    model.save_pretrained(tmp_path / "m")
    with safe_open(tmp_path / "m" / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert keys == {k for k in model.state_dict() if not k.startswith("generator.")}
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["bank_id"] == str(tmp_path / "bank") and len(config["bank_sha256"]) == 64
    a = GLEAN.from_pretrained(str(tmp_path / "m"))
    assert torch.equal(out(a), out(model))
    b = GLEAN.from_pretrained(str(tmp_path / "m"))
    assert a.generator is not b.generator  # each model has its own bank module ...
    assert a.generator.constant_input.input.data_ptr() == b.generator.constant_input.input.data_ptr()  # ... over one copy
    c = GLEAN.from_pretrained(str(tmp_path / "m"), torch_dtype=torch.bfloat16)
    assert c.generator is not a.generator and c.generator.constant_input.input.dtype == torch.bfloat16


def test_a_changed_bank_is_refused(tmp_path):
    model = with_bank(tiny_model(), tmp_path / "bank")
    model.save_pretrained(tmp_path / "m")
    state = load_file(tmp_path / "bank" / "model.safetensors")
    state["constant_input.input"] += 1
    save_file(state, tmp_path / "bank" / "model.safetensors")
    with pytest.raises(BankMismatchError, match="sha256"):
        GLEAN.from_pretrained(str(tmp_path / "m"))


def test_bank_path_relative_to_the_model_folder(tmp_path):
    model = with_bank(tiny_model(), tmp_path / "bank", bank_id="../bank")
    model.save_pretrained(tmp_path / "m")
    assert torch.equal(out(GLEAN.from_pretrained(str(tmp_path / "m"))), out(model))


def test_missing_and_extra_tensors_are_named(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    state.pop("decoder.0.upsample_conv.weight")
    state["decoder.9.weight"] = torch.zeros(1)
    save_file(state, tmp_path / "m" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"1 missing: decoder.0.upsample_conv.weight; 1 unexpected: decoder.9.weight"):
        GLEAN.from_pretrained(str(tmp_path / "m"))


def test_scale_and_category_must_agree_with_the_checkpoint(tmp_path):
    tiny_model(category="cats").save_pretrained(tmp_path / "m")
    with pytest.raises(ConfigError, match="is a 4x model \\(8->32\\), but scale=8 was requested"):
        GLEAN.from_pretrained(str(tmp_path / "m"), scale=8)
    with pytest.raises(ConfigError, match="is a 'cats' model, but category='faces'"):
        GLEAN.from_pretrained(str(tmp_path / "m"), category="faces")
    assert GLEAN.from_pretrained(str(tmp_path / "m"), scale=4, category="cats").config.scale == 4


def test_dtype_options(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    assert GLEAN.from_pretrained(str(tmp_path / "m"), torch_dtype="bf16").decoder[0].upsample_conv.weight.dtype == torch.bfloat16
    assert GLEAN.from_pretrained(str(tmp_path / "m"), torch_dtype="auto").decoder[0].upsample_conv.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="torch_dtype must be"):
        GLEAN.from_pretrained(str(tmp_path / "m"), torch_dtype="fp8")


def test_not_a_model_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        GLEAN.from_pretrained(str(tmp_path / "empty"))
    (tmp_path / "x.pth").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="glean-hub convert"):
        GLEAN.from_pretrained(str(tmp_path / "x.pth"))
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        GLEAN.from_pretrained(str(tmp_path / "nowhere"))


def test_unknown_category_lists_the_valid_ones():
    with pytest.raises(ModelNotFoundError, match="unknown category 'dogs'; available:"):
        GLEAN.from_pretrained("dogs", scale=8)


# --- through the loopback Hub ------------------------------------------------------------------


def test_push_twice_and_load_each_revision(hub_server, go_offline):
    v1, v2 = tiny_model(seed=1, category="faces"), tiny_model(seed=2, category="faces")
    info1 = v1.push_to_hub("glean-hub/test-faces")
    info2 = v2.push_to_hub("glean-hub/test-faces")
    assert info1.oid != info2.oid
    files = HfApi().list_repo_files("glean-hub/test-faces")
    assert sorted(files) == [".gitattributes", "README.md", "config.json", "model.safetensors"]

    assert torch.equal(out(GLEAN.from_pretrained("glean-hub/test-faces", revision=info1.oid)), out(v1))
    latest = GLEAN.from_pretrained("glean-hub/test-faces")
    assert torch.equal(out(latest), out(v2))

    card = ModelCard.load("glean-hub/test-faces")
    assert card.data.library_name == "glean-hub" and card.data.pipeline_tag == "image-to-image"
    assert card.data.license == "other" and "super-resolution" in card.data.tags and "faces" in card.data.tags

    hub_server.stop()
    go_offline()
    assert torch.equal(out(GLEAN.from_pretrained("glean-hub/test-faces")), out(v2))  # from the cache
    assert torch.equal(out(GLEAN.from_pretrained("glean-hub/test-faces", revision=info1.oid)), out(v1))


def test_the_bank_is_downloaded_once_for_two_scales(hub_server, tmp_path):
    bank_owner = tiny_model(in_size=8)
    bank_owner.generator.push_to_hub("glean-hub/bank-faces-32")
    sha = bank_owner.generator.save_pretrained(tmp_path / "bank")  # the same bytes as pushed
    models = {}
    for in_size in (8, 4):
        m = tiny_model(seed=in_size, in_size=in_size)
        m.generator.load_state_dict(bank_owner.generator.state_dict())
        m.config = m.config.replace(bank_id="glean-hub/bank-faces-32", bank_sha256=sha)
        m.push_to_hub(f"glean-hub/faces-{32 // in_size}x")
        models[in_size] = m
    (tmp_path / "head.safetensors").write_bytes(hub_server.file_bytes("glean-hub/faces-4x", "model.safetensors"))
    with safe_open(tmp_path / "head.safetensors", "pt") as f:
        assert not any(k.startswith("generator.") for k in f.keys())  # GLEAN repos hold no bank
    hub_server.clear_log()
    a = GLEAN.from_pretrained("glean-hub/faces-4x")
    b = GLEAN.from_pretrained("glean-hub/faces-8x")
    assert a.generator.constant_input.input.data_ptr() == b.generator.constant_input.input.data_ptr()
    assert hub_server.downloads_of("glean-hub/bank-faces-32", "model.safetensors") == 1
    assert torch.equal(out(a), out(models[8]))
    assert torch.equal(out(b, LR[:, :, :4, :4]), out(models[4], LR[:, :, :4, :4]))


def test_hub_errors_are_clear(hub_server):
    with pytest.raises(ModelNotFoundError, match="Hub repo 'glean-hub/nothing' was not found"):
        GLEAN.from_pretrained("glean-hub/nothing")
    HfApi().create_repo("glean-hub/empty")
    with pytest.raises(ModelNotFoundError, match="glean-hub/empty has no file config.json"):
        GLEAN.from_pretrained("glean-hub/empty")
    tiny_model().push_to_hub("glean-hub/real")
    with pytest.raises(ModelNotFoundError, match="has no revision 'v9'"):
        GLEAN.from_pretrained("glean-hub/real", revision="v9")
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        GLEAN.from_pretrained("glean-hub/real", local_files_only=True)


def test_a_bank_pushed_and_loaded_back(hub_server):
    bank = tiny_model().generator
    bank.push_to_hub("glean-hub/bank")
    loaded = StyleGAN2Generator.from_pretrained("glean-hub/bank")
    w = torch.randn(2, bank.config.num_styles, bank.config.style_channels)
    with torch.no_grad():
        assert torch.equal(loaded.synthesis(w), bank.synthesis(w))
    assert ModelCard.load("glean-hub/bank").data.library_name == "glean-hub"


def test_saving_is_deterministic(tmp_path):
    """The bank is pinned by the sha256 of its file: saving the same tensors twice must give the same bytes."""
    bank = tiny_model().generator
    assert len({bank.save_pretrained(tmp_path / str(i)) for i in range(8)}) == 1


def test_saving_in_fp16_leaves_the_model_alone_and_loads_back_in_fp32(tmp_path):
    model = with_bank(tiny_model(), tmp_path / "bank")
    model.generator.save_pretrained(tmp_path / "bank16", dtype=torch.float16)
    model.save_pretrained(tmp_path / "m", dtype=torch.float16)
    assert model.decoder[0].upsample_conv.weight.dtype == torch.float32  # not cast in place
    with safe_open(tmp_path / "m" / "model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    loaded = GLEAN.from_pretrained(str(tmp_path / "m"))
    assert loaded.decoder[0].upsample_conv.weight.dtype == torch.float32
    torch.testing.assert_close(out(loaded), out(model), atol=2e-2, rtol=0)


def test_a_shared_bank_cast_in_place_is_not_handed_out_again(tmp_path):
    model = with_bank(tiny_model(), tmp_path / "bank")
    model.save_pretrained(tmp_path / "m")
    a = GLEAN.from_pretrained(str(tmp_path / "m"))
    a.half()  # casts a's own bank module, not the shared tensors
    b = GLEAN.from_pretrained(str(tmp_path / "m"))
    assert b.generator is not a.generator and b.generator.constant_input.input.dtype == torch.float32
    assert torch.equal(out(b), out(model))
