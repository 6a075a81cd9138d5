"""scripts/train_bundled.sh builds the commands of the bundled models (run with LAUNCH=echo: nothing trains)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_bundled.sh"


def commands(category: str, tmp_path: Path, **env) -> list[str]:
    run = subprocess.run(["bash", str(SCRIPT), "cpu64-psnr", category, str(tmp_path / "data"), str(tmp_path / "runs")],
                         env={**os.environ, "LAUNCH": "echo", "BASELINES": "0", **env}, capture_output=True, text=True,
                         timeout=60, cwd=SCRIPT.parent.parent)
    assert run.returncode == 0, run.stderr
    return [line for line in run.stdout.splitlines() if line.startswith(("glean_hub.cli train", "glean_hub.cli soup"))]


@pytest.mark.parametrize("category", ["faces", "cats", "cars", "bedrooms", "towers"])
def test_every_category_gets_its_training_commands(category, tmp_path):
    lines = commands(category, tmp_path, GLEAN_STEPS="1000", SOUP="")  # one run per model (towers: see below)
    assert [f"--scale {s} " in line for line, s in zip(lines, (8, 16))] == [True, True]
    faces = category == "faces"  # the dense layer measured better for faces only, the activation for faces and towers
    for line, s in zip(lines, (8, 16)):
        assert ("--dense-rank 256" in line, "--decoder-activation" in line) == (faces, faces or category == "towers")
        assert ("--mse-from 700" in line) == (category in ("faces", "towers"))  # the MSE tail: faces and towers
        zoom = "zoom-c,zoom-tl,zoom-tr,zoom-bl,zoom-br"
        crops = {"faces": "center", "bedrooms": zoom, "towers": zoom}.get(category)
        assert (f"--extra-crops {crops} " in line if crops else "--extra-crops" not in line), line
        start = f"--init-from glean_hub/weights/glean-cats-{s}x-64 "  # towers start from the cats model of their scale
        assert (start in line) == (category == "towers") and ("--init-from" in line) == (category == "towers"), line


def test_towers_models_are_soups_of_three_runs(tmp_path):
    lines = commands("towers", tmp_path, GLEAN_STEPS="1000", SCALES="16")
    runs, last = lines[:3], lines[3]
    assert all(line.startswith("glean_hub.cli train") for line in runs), lines
    # each run: the recipe, then its own flags (argparse: the last flag wins), in a folder of its own
    assert runs[1].split(" --out ")[0].endswith("--mse-from 700 --init-from glean_hub/weights/glean-cats-16x-64 --mse-from 300")
    assert runs[2].split(" --out ")[0].endswith(",zoom65-bl,zoom65-br") and "--extra-crops zoom-c,zoom-tl,zoom-tr,zoom-bl,zoom-br,zoom65-c," in runs[2]
    folders = [f"{tmp_path}/runs/glean-towers-16x-64-psnr-soup{i}" for i in (1, 2, 3)]
    assert [line.split(" --out ")[1].split()[0] for line in runs] == folders
    assert last == f"glean_hub.cli soup {' '.join(folders)} --out {tmp_path}/runs/glean-towers-16x-64-psnr"
    (line,) = commands("towers", tmp_path, SCALES="16", SOUP="")  # one run, no soup
    assert " --out " + f"{tmp_path}/runs/glean-towers-16x-64-psnr " in line
    lines = commands("faces", tmp_path, SCALES="8", SOUP="--seed 1;--seed 2")  # any category can be a soup
    assert len(lines) == 3 and lines[2].startswith("glean_hub.cli soup ")


def test_environment_overrides_the_recipe_defaults(tmp_path):
    (line,) = commands("towers", tmp_path, SCALES="8", DENSE_RANK="64", DECODER_ACT="1", MSE_FROM="5", SOUP="")
    assert "--dense-rank 64" in line and "--decoder-activation" in line and "--mse-from 5" in line
    (line,) = commands("faces", tmp_path, SCALES="16", DENSE_RANK="", DECODER_ACT="0", MSE_FROM="none")
    assert "--dense-rank" not in line and "--decoder-activation" not in line and "--mse-from" not in line
    (line,) = commands("towers", tmp_path, SCALES="8", EXTRA_CROPS="zoom-c,zoom-tl", SOUP="")
    assert "--extra-crops zoom-c,zoom-tl " in line
    (line,) = commands("bedrooms", tmp_path, SCALES="16", EXTRA_CROPS="")  # how the bundled bedrooms 16x was trained
    assert "--extra-crops" not in line
    (line,) = commands("towers", tmp_path, SCALES="16", INIT_FROM="", SOUP="")  # from scratch
    assert "--init-from" not in line
    (line,) = commands("cars", tmp_path, SCALES="8", INIT_FROM="runs/glean-cats-{S}x/model")
    assert "--init-from runs/glean-cats-8x/model " in line
