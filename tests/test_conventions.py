"""What a huggingface_hub / diffusers user expects from loading and saving (issue 15): argument names and
spellings, `.device`/`.dtype`, local folders before category names, bundled repo ids offline, cards that name
their repo, `save_pretrained(push_to_hub=)`, `push_to_hub(branch=, delete_patterns=)`, translated push errors,
category from released file names, and no import cycle between hub.py and the model modules."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model
from huggingface_hub import HfApi, ModelCard

from glean_hub import GLEAN, GLEANPipeline, StyleGAN2Generator
from glean_hub.cards import CardFacts, glean_card
from glean_hub.convert import category_from_filename
from glean_hub.errors import ConfigError, GleanError
from glean_hub.registry import BANKS, MODELS

LR = torch.rand(1, 3, 8, 8) * 2 - 1
FACES_8X = next(m for m in MODELS if m.category == "faces" and m.scale == 8)
FACES_BANK = next(b for b in BANKS if b.category == "faces")


def out(model, lr=LR):
    with torch.no_grad():
        return model(lr.to(model.dtype)).float()


def test_keyword_names_and_both_dtype_spellings(tmp_path):
    tiny_model(seed=3).save_pretrained(tmp_path / "m")
    a = GLEAN.from_pretrained(pretrained_model_name_or_path=str(tmp_path / "m"), torch_dtype=torch.bfloat16)
    b = GLEAN.from_pretrained(tmp_path / "m", dtype="bf16")
    assert a.dtype == b.dtype == torch.bfloat16 and a.device == torch.device("cpu")
    assert a.generator.dtype == torch.bfloat16 and a.generator.device.type == "cpu"
    with pytest.raises(ConfigError, match="disagree"):
        GLEAN.from_pretrained(tmp_path / "m", torch_dtype="fp32", dtype="bf16")

    pipe = GLEANPipeline.from_pretrained(pretrained_model_name_or_path=str(tmp_path / "m"), torch_dtype="bf16", device="cpu")
    assert pipe.dtype == torch.bfloat16 and pipe.model.dtype == torch.bfloat16
    assert GLEANPipeline.from_pretrained(tmp_path / "m", dtype="fp32", device="cpu").dtype == torch.float32


def test_auto_dtype_on_model_and_pipeline(tmp_path):
    tiny_model(seed=4).save_pretrained(tmp_path / "m", dtype=torch.float16)
    assert GLEAN.from_pretrained(tmp_path / "m", torch_dtype="auto").dtype == torch.float16  # as stored
    assert GLEAN.from_pretrained(tmp_path / "m", dtype="auto").dtype == torch.float16
    pipe = GLEANPipeline.from_pretrained(tmp_path / "m", dtype="auto", device="cpu")
    assert pipe.dtype == torch.float32  # float16 is not run on a CPU: "auto" gives float32 there
    pipe = GLEANPipeline.from_pretrained(tmp_path / "m", torch_dtype="auto", device="cpu")
    assert pipe.dtype == torch.float32
    bf = tiny_model(seed=4).to(torch.bfloat16)
    assert GLEANPipeline(bf, device="cpu", dtype="auto", fast=False).dtype == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_a_clean_error(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    with pytest.raises(ConfigError, match="device='cuda'.*use 'cpu'"):
        GLEAN.from_pretrained(tmp_path / "m", device="cuda")


def test_a_model_folder_wins_over_a_category_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tiny_model(seed=5, category="faces").eval()
    mine.save_pretrained("faces")  # ./faces is a model folder: it is loaded, not the bundled faces model
    loaded = GLEAN.from_pretrained("faces")
    assert loaded.config.in_size == 8 and torch.allclose(out(loaded), out(mine), atol=1e-6)
    (tmp_path / "faces" / "config.json").unlink()  # a folder of photos called faces does not shadow the category
    (tmp_path / "faces" / "model.safetensors").unlink()
    assert GLEAN.from_pretrained("faces", scale=8).config.in_size == FACES_8X.in_size


@pytest.mark.skipif(FACES_8X.local_dir is None, reason="bundled weights not installed")
def test_bundled_repo_ids_load_the_installed_copies_offline(no_network):
    by_repo = GLEAN.from_pretrained(FACES_8X.repo_id)
    by_category = GLEAN.from_pretrained("faces", scale=8)
    lr = torch.rand(1, 3, FACES_8X.in_size, FACES_8X.in_size) * 2 - 1
    assert torch.equal(out(by_repo, lr), out(by_category, lr))
    bank = StyleGAN2Generator.from_pretrained(FACES_BANK.repo_id, torch_dtype="auto")
    assert bank.dtype == torch.float16  # the bundled bank is stored in float16
    assert no_network.attempts == []


def test_save_pretrained_conventions(tmp_path, hub_server):
    model = tiny_model(seed=6, category="faces")
    with pytest.raises(ConfigError, match="safetensors only"):
        model.save_pretrained(tmp_path / "x", safe_serialization=False)
    with pytest.raises(TypeError, match="push_to_hub=True"):
        model.save_pretrained(tmp_path / "x", token="t")
    info = model.save_pretrained(tmp_path / "glean-test-faces", push_to_hub=True, repo_id="me/glean-test-faces")
    assert info.oid and sorted(HfApi().list_repo_files("me/glean-test-faces")) == [
        ".gitattributes", "README.md", "config.json", "model.safetensors"]
    card = ModelCard.load("me/glean-test-faces")
    assert 'from_pretrained("me/glean-test-faces")' in card.text and "path/to/this/folder" not in card.text
    assert 'from_pretrained("me/glean-test-faces")' in (tmp_path / "glean-test-faces" / "README.md").read_text()
    assert torch.allclose(out(GLEAN.from_pretrained("me/glean-test-faces", force_download=True)), out(model.eval()), atol=1e-6)


def test_push_to_hub_branch_delete_patterns_and_the_card_names_the_repo(hub_server):
    api = HfApi()
    model, other = tiny_model(seed=7, category="faces"), tiny_model(seed=8, category="faces")
    model.push_to_hub("me/faces")
    api.upload_file(path_or_fileobj=b"old pickle", path_in_repo="pytorch_model.bin", repo_id="me/faces")
    model.push_to_hub("me/faces", delete_patterns="*.bin")  # the old file goes in the same commit, ours stay
    assert sorted(api.list_repo_files("me/faces")) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    card = ModelCard.load("me/faces").text
    assert 'from_pretrained("me/faces")' in card and "path/to/this/folder" not in card
    main = hub_server.head("me/faces")

    api.create_branch("me/faces", branch="dev")
    info = other.push_to_hub("me/faces", branch="dev", commit_message="on dev")
    branches = {b.name: b.target_commit for b in api.list_repo_refs("me/faces").branches}
    assert branches == {"main": main, "dev": info.oid}  # the branch moved, main did not
    assert api.list_repo_commits("me/faces", revision="dev")[0].title == "on dev"
    lr = LR.expand(2, -1, -1, -1)  # a batch of 2: bitwise equal after reloading (batch 1 differs by ~1e-7)
    assert torch.equal(out(GLEAN.from_pretrained("me/faces", revision="dev"), lr), out(other, lr))
    assert torch.equal(out(GLEAN.from_pretrained("me/faces"), lr), out(model, lr))
    # branch= is push_to_hub's spelling of revision=; both at once must agree
    with pytest.raises(ConfigError, match="disagree"):
        model.push_to_hub("me/faces", branch="dev", revision="main")
    with pytest.raises(GleanError, match="no branch 'nope'"):
        model.push_to_hub("me/faces", branch="nope")
    assert hub_server.head("me/faces", "dev") == info.oid

    model.generator.push_to_hub("me/bank")
    assert 'from_pretrained("me/bank")' in ModelCard.load("me/bank").text


def test_push_errors_are_one_line(hub_server, monkeypatch):
    from glean_hub.hub import push_folder

    hub_server.stop()  # nothing listens there any more
    with pytest.raises(GleanError, match="could not reach the Hub"):
        tiny_model().push_to_hub("me/gone")

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(GleanError, match="offline mode is on"):
        push_folder(".", "me/gone")


def test_cards_have_license_link_and_model_index():
    facts = CardFacts(license_name="research-only-data", datasets=["celeba"],
                      metrics={"GLEAN": {"PSNR": 19.37, "SSIM": 0.473}, "bicubic": {"PSNR": 19.05}})
    card = ModelCard(glean_card(tiny_model(category="faces").config, facts, repo_id="me/faces"))
    assert card.data.license == "other" and card.data.license_name == "research-only-data"
    assert card.data.license_link == "README.md#licence" and "## Licence" in card.text
    results = {(r.metric_type, r.metric_value) for r in card.data.eval_results}
    assert results == {("psnr", 19.37), ("ssim", 0.473)}  # the model's own numbers, not the baseline's
    assert card.data.model_name == "me/faces" and card.data.eval_results[0].dataset_type == "celeba"
    assert card.data.to_dict()["model-index"][0]["name"] == "me/faces"  # the YAML the Hub reads


def test_category_from_released_file_names():
    assert category_from_filename("glean_cat_16x_20210527-68912543.pth") == "cats"
    assert category_from_filename("glean_cat_8x_20210614-d3ac8683.pth") == "cats"
    assert category_from_filename("glean_ffhq_16x_20210527-61a3afad.pth") == "faces"
    assert category_from_filename("glean_in128out1024_4x2x2_16x_ffhq_20210527-6b5bf5b4.pth") == "faces"
    assert category_from_filename("stylegan2_c2_lsun-church_256_b4x8_800k_20210205-b1dc8066.pth") == "towers"
    assert category_from_filename("model.pth") is None and category_from_filename("cat_vs_car.pth") is None


def test_hub_imports_no_model_module():
    """hub.py is given the classes (cls=): at import time it depends on no model module, so there is no cycle."""
    import ast

    import glean_hub.hub as hub

    top = ast.parse(open(hub.__file__).read()).body  # module-level statements (the TYPE_CHECKING block is an If)
    imported = {n.module for n in top if isinstance(n, ast.ImportFrom)}
    assert not imported & {"glean", "stylegan2", "glean_hub.glean", "glean_hub.stylegan2"}, imported
