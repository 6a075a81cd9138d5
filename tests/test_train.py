"""Training on synthetic images (CPU, seconds): losses fall, folders load, resume is exact, push works."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from glean_hub import GLEAN, StyleGAN2Generator
from glean_hub.cli import _to_dataclass, build_parser, main
from glean_hub.discriminator import StyleGAN2Discriminator
from glean_hub.errors import GleanError
from glean_hub.train.bank import BankTrainArgs, train_bank
from glean_hub.train.data import PackedImages, batch_indices, is_zoom_crop, split_files, square_crop, to_float
from glean_hub.train.common import args_dict
from glean_hub.train.glean import RUN_CONTROL, GLEANTrainArgs, train_command, train_glean

TINY_BANK = dict(resolution=16, channel_max=16, channel_multiplier=0.0625, style_channels=16, num_mlps=2, batch_size=4)
TINY_GLEAN = dict(rrdb_channels=8, num_rrdbs=1, rrdb_growth=8, decoder_channels=8, batch_size=4, progress=False)


def synthetic_images(folder, n: int, size=(24, 20), seed=0, mode="RGB"):
    """Smooth colour waves with a disc: structure a small model can learn quickly."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    for i in range(n):
        img = np.stack([0.5 + 0.5 * np.sin(rng.uniform(2, 6) * x + rng.uniform(0, 6)) * np.cos(rng.uniform(2, 6) * y) for _ in range(3)], -1)
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
        Image.fromarray((img * 255).astype(np.uint8)).convert(mode).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    synthetic_images(root / "train", 16, seed=1)
    synthetic_images(root / "val", 4, seed=2)
    return root


@pytest.fixture(scope="module")
def bank_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("bank")
    train_bank(BankTrainArgs(data=data, out=out, steps=48, log_every=1, sample_every=24, checkpoint_every=24, progress=False, **TINY_BANK))
    return out


def log_rows(run) -> list[dict]:
    """Every logged row without the wall-clock throughput (the only field allowed to differ between runs)."""
    return [{k: v for k, v in json.loads(line).items() if k != "img_per_s"} for line in (run / "log.jsonl").read_text().splitlines()]


def losses(run, key):
    return [json.loads(l)[key] for l in (run / "log.jsonl").read_text().splitlines()]


def image_stats(x: torch.Tensor) -> torch.Tensor:
    """Per-channel mean, standard deviation and mean horizontal gradient of a batch [N, 3, H, W]."""
    x = x.double()
    return torch.cat([x.mean((0, 2, 3)), x.std((0, 2, 3)), (x[..., 1:] - x[..., :-1]).abs().mean((0, 2, 3))])


def test_bank_training_learns_and_writes_a_bank_folder(bank_run, data):
    """GAN losses oscillate, so 'learning' is checked on the samples: their colour and texture statistics
    move towards the training images' from those of the generator the run started from."""
    bank = StyleGAN2Generator.from_pretrained(str(bank_run / "bank"))
    assert bank.config.out_size == 16 and bank.config.channel_max == 16 and not bank.config.grayscale
    real = to_float(torch.from_numpy(PackedImages.from_files(split_files(data)[0], 16, "center", progress=False).hr))
    torch.manual_seed(0)  # the run's seed: the generator it started from
    start = StyleGAN2Generator(bank.config)
    z = torch.randn(64, 16)
    with torch.no_grad():
        before = (image_stats(start(z, noise="random")) - image_stats(real)).abs().sum()
        after = (image_stats(bank(z, noise="random")) - image_stats(real)).abs().sum()
    assert after < 0.8 * before, (before, after)
    D = StyleGAN2Discriminator(bank.config)
    D.load_state_dict(load_file(bank_run / "bank" / "discriminator.safetensors"))  # strict: the same keys
    assert sorted(p.name for p in (bank_run / "samples").iterdir()) == ["step0000024.png", "step0000048.png"]
    assert json.loads((bank_run / "training.json").read_text())["step"] == 48
    assert len(losses(bank_run, "d_loss")) == 48


def test_glean_training_lowers_the_pixel_loss_and_writes_a_loadable_model(bank_run, data, tmp_path):
    folder = train_glean(GLEANTrainArgs(bank=str(bank_run / "bank"), data=data, scale=4, out=tmp_path, steps=30, lr=2e-3,
                                        log_every=1, sample_every=15, checkpoint_every=15, **TINY_GLEAN))
    pixel = losses(tmp_path, "pixel")
    assert np.mean(pixel[-5:]) < 0.7 * np.mean(pixel[:5]), pixel
    model = GLEAN.from_pretrained(str(folder), scale=4)
    assert model.config.bank_id == "../../bank/bank" or model.config.bank_id.endswith("bank")
    assert model.config.in_size == 4 and model.config.degradation == "bicubic"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["glean"]) == {"psnr", "ssim", "lr_psnr", "grid_db"} and metrics["images"] == 4
    assert "## Evaluation" in (folder / "README.md").read_text()
    Image.open(tmp_path / "samples" / "step0000030.png").verify()


def test_bank_resume_is_exact(data, tmp_path):
    common = dict(data=data, steps=6, log_every=1, sample_every=100, checkpoint_every=3, r1_every=2, progress=False, **TINY_BANK)
    train_bank(BankTrainArgs(out=tmp_path / "straight", **common))
    train_bank(BankTrainArgs(out=tmp_path / "resumed", max_minutes=0, **common))  # stops after one step
    train_bank(BankTrainArgs(out=tmp_path / "resumed", resume=True, **common))
    assert log_rows(tmp_path / "straight") == log_rows(tmp_path / "resumed")
    a, b = (load_file(tmp_path / r / "bank" / "model.safetensors") for r in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_glean_resume_is_exact(bank_run, data, tmp_path):
    common = dict(bank=str(bank_run / "bank"), data=data, scale=2, steps=6, log_every=1, sample_every=100, checkpoint_every=100, **TINY_GLEAN)
    train_glean(GLEANTrainArgs(out=tmp_path / "straight", **common))
    train_glean(GLEANTrainArgs(out=tmp_path / "resumed", max_minutes=0, **common))
    train_glean(GLEANTrainArgs(out=tmp_path / "resumed", resume=True, **common))
    assert log_rows(tmp_path / "straight") == log_rows(tmp_path / "resumed")
    a, b = (load_file(tmp_path / r / "model" / "model.safetensors") for r in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_earlier_run_is_never_overwritten(bank_run, data):
    with pytest.raises(GleanError, match="already holds a training run"):
        train_bank(BankTrainArgs(data=data, out=bank_run, steps=1, progress=False, **TINY_BANK))


def test_cli_train_realworld_and_bankless(bank_run, data, tmp_path, capsys):
    args = ["--bank", str(bank_run / "bank"), "--data", str(data), "--scale", "4", "--steps", "2", "--rrdb-channels", "8",
            "--num-rrdbs", "1", "--rrdb-growth", "8", "--decoder-channels", "8", "--batch-size", "2", "--no-progress"]
    assert main(["train", *args, "--out", str(tmp_path / "rw"), "--degradation", "realworld"]) == 0
    assert GLEAN.from_pretrained(str(tmp_path / "rw" / "model")).config.degradation == "realworld"
    assert main(["train", *args, "--out", str(tmp_path / "nb"), "--no-bank", "--gan-weight", "0"]) == 0
    assert GLEAN.from_pretrained(str(tmp_path / "nb" / "model")).config.use_bank is False
    assert "model:" in capsys.readouterr().out
    assert main(["train", *args, "--out", str(tmp_path / "bd"), "--bank-dropout", "1"]) == 2  # a share below 1
    assert "--bank-dropout 1.0: give a share of the batch from 0 up to" in capsys.readouterr().err
    assert not (tmp_path / "bd").exists()


def test_trained_folders_push_to_the_hub_and_load_back(hub_server, bank_run, data, tmp_path):
    folder = train_glean(GLEANTrainArgs(bank=str(bank_run / "bank"), data=data, scale=4, out=tmp_path, steps=2, **TINY_GLEAN))
    with pytest.raises(GleanError, match="--bank-repo"):
        from glean_hub.publish import push

        push(folder, "glean-hub/test-8x")
    assert main(["push", str(folder), "glean-hub/test-8x", "--bank-repo", "glean-hub/test-bank"]) == 0
    remote = GLEAN.from_pretrained("glean-hub/test-8x")
    assert remote.config.bank_id == "glean-hub/test-bank" and len(remote.config.bank_revision) == 40
    local = GLEAN.from_pretrained(str(folder))
    lr = torch.rand(1, 3, 4, 4) * 2 - 1
    with torch.no_grad():
        assert torch.equal(remote(lr), local(lr))
    card = hub_server.file_bytes("glean-hub/test-8x", "README.md").decode()
    assert "library_name: glean-hub" in card and "| GLEAN |" in card


def test_crop_policies_and_grayscale(tmp_path):
    img = Image.new("RGB", (178, 218))
    assert square_crop(img, "center").size == (178, 178)
    assert square_crop(img, "face").size == (150, 150)
    assert square_crop(Image.new("RGB", (40, 20)), "pad").size == (40, 40)
    wide, tall = Image.new("L", (30, 20)), Image.new("L", (20, 30))
    wide.putpixel((0, 0), 1), wide.putpixel((29, 19), 2), tall.putpixel((0, 0), 1), tall.putpixel((19, 29), 2)
    for img in (wide, tall):  # the two ends of the long side, at the centre crop's scale
        start, end = square_crop(img, "start"), square_crop(img, "end")
        assert start.size == end.size == (20, 20)
        assert start.getpixel((0, 0)) == 1 and end.getpixel((19, 19)) == 2
    wide = Image.new("L", (30, 20))  # centre square: x 5..24; zoom squares: 16 px inside it
    for x, y, v in ((5, 0, 1), (24, 0, 2), (5, 19, 3), (24, 19, 4), (7, 2, 5)):
        wide.putpixel((x, y), v)
    corners = {"zoom-tl": (0, 0, 1), "zoom-tr": (15, 0, 2), "zoom-bl": (0, 15, 3), "zoom-br": (15, 15, 4), "zoom-c": (0, 0, 5)}
    for policy, (x, y, v) in corners.items():
        crop = square_crop(wide, policy)
        assert crop.size == (16, 16) and crop.getpixel((x, y)) == v, policy
    with pytest.raises(ValueError, match="zoom-tl"):
        square_crop(wide, "zoom-middle")
    assert all(map(is_zoom_crop, corners)) and not any(map(is_zoom_crop, ("zoom-middle", "center", "face", "zoom5-c", "zoomx-c")))
    half = square_crop(wide, "zoom50-br")  # zoomNN: NN% of the centre square's side
    assert half.size == (10, 10) and half.getpixel((9, 9)) == 4
    synthetic_images(tmp_path / "gray", 3, mode="L")
    packed = PackedImages.from_files(split_files(tmp_path / "gray")[0] or [], 8, "center", progress=False)
    assert packed.hr.shape[1:] == (3, 8, 8) and packed.grayscale_fraction == 1.0


def test_batches_depend_only_on_the_step_and_cover_every_epoch():
    a = [batch_indices(s, 4, 10, seed=3) for s in range(5)]
    assert all(np.array_equal(x, batch_indices(s, 4, 10, seed=3)) for s, x in enumerate(a))
    assert sorted(np.concatenate(a)[:10]) == list(range(10))
    ranks = [batch_indices(7, 4, 10, seed=3, rank=r, world=2) for r in range(2)]
    assert len(set(ranks[0]) & set(ranks[1])) == 0 or len(set(np.concatenate(ranks))) < 8  # shards of one global batch


def test_packed_folder_keeps_its_crop_policy(tmp_path):
    from glean_hub.train.data import crop_policies, pack_dataset

    src = tmp_path / "src"
    synthetic_images(src / "train", 3, size=(178, 218))
    synthetic_images(src / "val", 1, size=(178, 218))
    assert pack_dataset(src, tmp_path / "packed", 16, "face") == 4
    assert crop_policies(tmp_path / "packed", None, "faces") == ("face", "center")  # no second crop
    assert crop_policies(src, None, "faces") == ("face", "face")
    with pytest.raises(GleanError, match="holds 'face' crops"):
        crop_policies(tmp_path / "packed", "pad", "faces")
    assert Image.open(tmp_path / "packed" / "train" / "000.jpg").size == (16, 16)


def test_training_with_the_recipe_flags(bank_run, data, tmp_path):
    args = ["--bank", str(bank_run / "bank"), "--data", str(data), "--scale", "4", "--steps", "3", "--rrdb-channels", "8",
            "--num-rrdbs", "1", "--rrdb-growth", "8", "--decoder-channels", "8", "--batch-size", "2", "--no-progress",
            "--decoder-width", "12", "--bicubic-skip", "--pixel-loss", "l1", "--gan-weight", "0", "--perceptual-weight", "0",
            "--extra-crops", "pad", "--mixed-precision", "bf16", "--dense-rank", "4", "--decoder-activation",
            "--mse-from", "2", "--bank-dropout", "0.5", "--log-every", "1", "--out", str(tmp_path / "r")]
    assert main(["train", *args]) == 0
    model = GLEAN.from_pretrained(str(tmp_path / "r" / "model"))
    c = model.config
    assert c.decoder_width == 12 and c.bicubic_skip and c.dense_rank == 4 and c.decoder_activation
    training = json.loads((tmp_path / "r" / "training.json").read_text())
    assert training["args"]["pixel_loss"] == "l1" and training["args"]["extra_crops"] == "pad"
    assert "pixel l1 1.0 (MSE from step 2)" in (tmp_path / "r" / "model" / "README.md").read_text()
    rows = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert rows[2]["pixel"] < 0.5 * min(rows[0]["pixel"], rows[1]["pixel"])  # MSE from step 2: squares of errors ~0.1
    # the command a model card prints (train_command) repeats the run: its flags parse back to the same arguments
    flags = train_command(training["args"])
    assert "--out" not in flags and "--log-every" not in flags and "--decoder-activation" in flags
    again = args_dict(_to_dataclass(GLEANTrainArgs, build_parser().parse_args(["train", *flags, "--out", "elsewhere"])))
    assert {k: v for k, v in again.items() if k not in RUN_CONTROL} == {
        k: v for k, v in training["args"].items() if k not in RUN_CONTROL}


def test_init_from_starts_the_encoder_and_decoder_from_another_model(bank_run, data, tmp_path):
    common = dict(bank=str(bank_run / "bank"), data=data, scale=4, log_every=1, checkpoint_every=100, **TINY_GLEAN)
    donor = train_glean(GLEANTrainArgs(out=tmp_path / "donor", steps=3, lr=2e-3, **common))
    start = train_glean(GLEANTrainArgs(out=tmp_path / "tuned", steps=1, lr=0.0, init_from=str(donor), **common))
    scratch = train_glean(GLEANTrainArgs(out=tmp_path / "scratch", steps=1, lr=0.0, **common))
    a, b, c = (load_file(f / "model.safetensors") for f in (donor, start, scratch))
    trainable = [k for k in a if not k.startswith("generator.")]
    assert trainable and all(torch.equal(a[k], b[k]) for k in a)  # lr 0: exactly the donor's weights, bank included
    assert not all(torch.equal(a[k], c[k]) for k in trainable)  # (from scratch they differ)
    twin = train_glean(GLEANTrainArgs(out=tmp_path / "twin", steps=1, lr=0.0, init_from=str(donor), no_bank=True, **common))
    assert all(torch.equal(a[k], v) for k, v in load_file(twin / "model.safetensors").items())  # the bank-less twin too
    with pytest.raises(ValueError, match="--init-from .* differ from this run's"):
        train_glean(GLEANTrainArgs(out=tmp_path / "x2", steps=1, init_from=str(donor), **{**common, "scale": 2}))
    assert not (tmp_path / "x2" / "cache").exists()  # it failed before packing the training data


def test_soup_averages_finished_runs_from_one_start(bank_run, data, tmp_path, capsys):
    common = dict(bank=str(bank_run / "bank"), data=data, scale=4, steps=2, lr=2e-3, log_every=1, checkpoint_every=100, **TINY_GLEAN)
    a = train_glean(GLEANTrainArgs(out=tmp_path / "a", **common))
    b = train_glean(GLEANTrainArgs(out=tmp_path / "b", pixel_loss="l1", **common))  # the same start (seed 0), another loss
    out = tmp_path / "deeper" / "soup"  # not beside the runs: the bank reference must be rewritten
    assert main(["soup", str(a.parent), str(b.parent), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"model: {out / 'model'} (4 validation images: ")
    wa, wb, ws = (load_file(f / "model.safetensors") for f in (a, b, out / "model"))
    assert ws.keys() == wa.keys() and any(not torch.equal(wa[k], wb[k]) for k in wa)
    for k in wa:
        torch.testing.assert_close(ws[k], (wa[k] + wb[k]) / 2, rtol=0, atol=1e-7)
    souped = GLEAN.from_pretrained(str(out / "model"))  # the bank is found and its sha256 checked
    metrics = json.loads((out / "metrics.json").read_text())
    val = PackedImages.from_files(split_files(data)[1], 16, "center", tmp_path / "cache", progress=False)
    from glean_hub.eval import evaluate

    assert metrics["glean"]["psnr"] == pytest.approx(evaluate(souped, val.hr, val.lr(4))["glean"]["psnr"], abs=1e-6)
    training = json.loads((out / "training.json").read_text())
    runs = [json.loads((r.parent / "training.json").read_text()) for r in (a, b)]
    assert [s["run"] for s in training["soup"]] == [str(a.parent), str(b.parent)]
    assert [s["args"]["pixel_loss"] for s in training["soup"]] == ["mse", "l1"] and training["step"] == 2
    assert training["minutes"] == pytest.approx(runs[0]["minutes"] + runs[1]["minutes"], abs=0.011)

    from glean_hub.train.soup import soup

    other_start = train_glean(GLEANTrainArgs(out=tmp_path / "c", **{**common, "seed": 1}))
    with pytest.raises(GleanError, match="start from different weights .*--seed 0; scratch, --seed 1"):
        soup([a.parent, other_start.parent], tmp_path / "x")
    unfinished = train_glean(GLEANTrainArgs(out=tmp_path / "d", max_minutes=0, **{**common, "steps": 3}))
    with pytest.raises(GleanError, match=r"unfinished \(1 of 3 steps\): resume it first"):
        soup([a.parent, unfinished.parent], tmp_path / "x")
    wider = train_glean(GLEANTrainArgs(out=tmp_path / "e", **{**common, "decoder_channels": 12}))
    with pytest.raises(GleanError, match="not the architecture .* differs in decoder_channels"):
        soup([a.parent, wider.parent], tmp_path / "x")
    with pytest.raises(GleanError, match="two or more runs, got 1"):
        soup([a.parent], tmp_path / "x")
    with pytest.raises(GleanError, match="already holds a run or a soup: choose another --out"):
        soup([a.parent, b.parent], out)
    with pytest.raises(GleanError, match="already holds a run or a soup"):
        soup([a.parent, b.parent], b.parent)  # never over a run
    with pytest.raises(GleanError, match="no such data folder .*: pass --data"):
        soup([a.parent, b.parent], tmp_path / "x", data=tmp_path / "missing")
    assert not (tmp_path / "x").exists()  # nothing written by a soup that was refused
