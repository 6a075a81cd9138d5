"""`glean-hub eval` and glean_hub.compare on tiny random models: the metrics.json schema, deterministic tables with a
seed, the ground-truth rules, the grid, and one-line errors for bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_model
from PIL import Image

from glean_hub.cli import main
from glean_hub.compare import (
    bicubic_method,
    compare,
    load_ground_truth,
    load_lpips,
    markdown_table,
    parse_methods,
)
from glean_hub.errors import ConfigError

KEYS = {"psnr", "ssim", "lr_psnr", "grid", "seconds_per_image"}


def smooth(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    chans = [0.5 + 0.35 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xx + rng.uniform(1, 3) * yy)) for _ in range(3)]
    return np.round(np.stack(chans, -1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    tiny_model(category="faces").save_pretrained(root / "model")  # 8 -> 32
    tiny_model(seed=1, category="faces", use_bank=False).save_pretrained(root / "nobank")
    (root / "gt").mkdir()
    for i, (w, h) in enumerate([(32, 32), (48, 40), (100, 60)]):
        Image.fromarray(smooth(w, h, i)).save(root / "gt" / f"im{i}.png")
    return root


def strip_seconds(metrics: dict) -> dict:
    out = json.loads(json.dumps(metrics))
    for row in out["methods"].values():
        row.pop("seconds_per_image")
    return out


def test_ground_truth_rules(setup):
    files = sorted((setup / "gt").iterdir())
    hr, names, problems = load_ground_truth(files, 32)
    assert hr.shape == (3, 3, 32, 32) and hr.dtype == np.uint8 and names == ["im0.png", "im1.png", "im2.png"] and not problems
    assert np.array_equal(hr[0], np.asarray(Image.open(files[0])).transpose(2, 0, 1))  # already 32x32: as it is
    from glean_hub.imresize import imresize_uint8

    centre = np.asarray(Image.open(files[2]))[:, 20:80]  # 100x60: the centred 60x60 square, MATLAB bicubic to 32
    assert np.array_equal(hr[2], imresize_uint8(np.ascontiguousarray(centre), size=(32, 32)).transpose(2, 0, 1))
    (setup / "broken.png").write_bytes(b"not an image")
    _, _, problems = load_ground_truth([setup / "broken.png"], 32)
    assert len(problems) == 1 and problems[0][0].endswith("broken.png")


def test_compare_schema_and_bicubic_sanity(setup):
    hr, names, _ = load_ground_truth(sorted((setup / "gt").iterdir()), 32)
    metrics, outputs, lr = compare(hr, 8, {"bicubic": bicubic_method(32)}, names)
    row = metrics["methods"]["bicubic"]
    assert set(row) == KEYS and lr.shape == (3, 3, 8, 8) and outputs["bicubic"].shape == hr.shape
    assert row["psnr"] > 20 and row["lr_psnr"] > 25 and 0 < row["ssim"] <= 1
    assert [im["name"] for im in metrics["images"]] == names and set(metrics["images"][0]["bicubic"]) == {"psnr", "ssim", "lr_psnr"}
    table = markdown_table(metrics)
    assert table.splitlines()[0].startswith("| method | PSNR (dB) | SSIM | LR-PSNR (dB) | grid (dB) |") and "| bicubic |" in table


def test_eval_cli_all_methods_deterministic(setup, tmp_path, capsys):
    argv = ["eval", str(setup / "gt"), "--model", str(setup / "model"), "--no-bank-model", str(setup / "nobank"),
            "--invert-steps", "4", "--invert-noise", "--seed", "1", "--grid-rows", "2"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert list(a["methods"]) == ["bicubic", "glean", "no-bank", "invert"]
    assert all(KEYS <= set(r) for r in a["methods"].values()) and len(a["images"]) == 3
    assert strip_seconds(a) == strip_seconds(b)  # everything but the timings is the same with the same seed
    assert a["settings"]["invert"]["steps"] == 4 and a["settings"]["invert"]["optimize_noise"] is True
    table = (tmp_path / "a" / "metrics.md").read_text()
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == ["bicubic", "glean", "no-bank", "invert"]
    grid = Image.open(tmp_path / "a" / "grid.png")
    assert grid.height > 2 * 32 and grid.width >= 6 * 32  # 2 rows; LR, 4 methods, ground truth
    assert "metrics.json" in capsys.readouterr().out


def test_eval_cli_several_models_and_limit(setup, tmp_path, capsys):
    rc = main(["eval", str(setup / "gt"), "--model", str(setup / "model"), "--model", str(setup / "nobank"),
               "--methods", "glean,bicubic", "--limit", "2", "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert list(m["methods"]) == [f"glean:{setup / 'model'}", f"glean:{setup / 'nobank'}", "bicubic"] and len(m["images"]) == 2


@pytest.mark.parametrize("extra, message", [
    (["--methods", "bicubic,pulse"], "unknown: pulse"),
    (["--methods", "glean,glean"], "names a method twice"),
    (["--methods", "bicubic,no-bank"], "needs the bank-less baseline model"),
    (["--invert-lr", "-1"], "lr must be a finite number > 0"),
    (["--model", "NOBANK", "--category", "faces", "--scale", "4"], "--category with several --model"),
    (["--model", "BIG"], "compared models must share their sizes"),
])
def test_eval_cli_bad_arguments_are_one_line(setup, tmp_path, capsys, extra, message):
    big = tmp_path / "big"
    if "BIG" in extra:
        tiny_model(in_size=4, out_size=32).save_pretrained(big)
    extra = [str(setup / "nobank") if a == "NOBANK" else str(big) if a == "BIG" else a for a in extra]
    rc = main(["eval", str(setup / "gt"), "--model", str(setup / "model"), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_eval_cli_needs_a_model(setup, tmp_path, capsys):
    assert main(["eval", str(setup / "gt"), "--out", str(tmp_path)]) == 2
    assert "say which model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", str(setup / "gt"), "--model", str(setup / "model")])  # --out is required


def test_parse_methods_and_lpips_note():
    assert parse_methods(" bicubic , invert") == ["bicubic", "invert"]
    with pytest.raises(ConfigError):
        parse_methods(",")
    fn, note = load_lpips()
    assert (fn is None) == (note is not None) and (note is None or note.startswith("LPIPS skipped:"))
