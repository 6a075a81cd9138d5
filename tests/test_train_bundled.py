"""scripts/train_bundled.sh builds the commands of the bundled models (run with LAUNCH=echo: nothing trains)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import load_script

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_bundled.sh"


# the script's settings: a caller's own (e.g. GLEAN_STEPS in the shell that runs the tests) must not reach it
SETTINGS = ("SCALES", "GLEAN_STEPS", "EXTRA_CROPS", "DENSE_RANK", "DECODER_ACT", "MSE_FROM", "INIT_FROM", "SOUP",
            "BANK_DROPOUT", "BASELINES", "MINUTES", "LAUNCH", "BANK_DIR", "BANK_STEPS")
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in SETTINGS}


def commands(category: str, tmp_path: Path, **env) -> list[str]:
    run = subprocess.run(["bash", str(SCRIPT), "cpu64-psnr", category, str(tmp_path / "data"), str(tmp_path / "runs")],
                         env={**CLEAN_ENV, "LAUNCH": "echo", "BASELINES": "0", **env}, capture_output=True, text=True,
                         timeout=60, cwd=SCRIPT.parent.parent)
    assert run.returncode == 0, run.stderr
    return [line for line in run.stdout.splitlines() if line.startswith(("glean_hub.cli train", "glean_hub.cli soup"))]


@pytest.mark.parametrize("category", ["faces", "cats", "cars", "bedrooms", "towers"])
def test_every_category_gets_its_training_commands(category, tmp_path):
    lines = commands(category, tmp_path, GLEAN_STEPS="1000", SOUP="")  # one run per model (towers 16x: see below)
    assert [f"--scale {s} " in line for line, s in zip(lines, (8, 16))] == [True, True]
    faces = category == "faces"  # the dense layer measured better for faces only, the activation for faces and towers
    zoom = "zoom-c,zoom-tl,zoom-tr,zoom-bl,zoom-br"
    for line, s in zip(lines, (8, 16)):
        assert "--steps 1000 " in line
        assert ("--dense-rank 256" in line, "--decoder-activation" in line) == (faces, faces or category == "towers")
        assert ("--mse-from 700" in line) == (category in ("faces", "towers"))  # the MSE tail: faces and towers
        crops = {"faces": "center", "bedrooms": zoom if s == 8 else None,  # bedrooms 16x predates the zoom crops
                 "towers": zoom + ",zoom65-c,zoom65-tl,zoom65-tr,zoom65-bl,zoom65-br" if s == 8 else zoom}.get(category)
        assert (f"--extra-crops {crops} " in line if crops else "--extra-crops" not in line), line
        # towers start from the cats model of their scale (16x: the one bundled at commit e0c55cb), bedrooms 8x from
        # the cats 8x model
        start = "glean_hub/weights/glean-cats-8x-64" if s == 8 else f"{tmp_path}/runs/init-e0c55cb/glean-cats-16x-64"
        starts = category == "towers" or (category, s) == ("bedrooms", 8)
        assert (f"--init-from {start} " in line) == starts and ("--init-from" in line) == starts, line
        # towers 8x trains a quarter of each batch without the bank (it overfits through the bank otherwise)
        assert ("--bank-dropout 0.25" in line) == ("--bank-dropout" in line) == ((category, s) == ("towers", 8)), line


def test_defaults_are_the_steps_of_the_bundled_models(tmp_path):
    steps = {c: [line.split("--steps ")[1].split()[0] for line in commands(c, tmp_path, SOUP="")]
             for c in ("faces", "cats", "cars", "bedrooms", "towers")}
    assert steps == {"faces": ["8000", "2000"], "cats": ["3000", "3000"], "cars": ["3000", "3000"],
                     "bedrooms": ["1000", "500"], "towers": ["4500", "3000"]}
    lines = commands("towers", tmp_path, BASELINES="1", SCALES="8")  # one run and its twin, without the bank dropout
    assert len(lines) == 2 and "--steps 4500 " in lines[-1] and "--bank-dropout" not in lines[-1], lines
    plain = subprocess.run(["bash", str(SCRIPT), "cpu64-psnr", "towers", str(tmp_path / "data"), str(tmp_path / "runs")],
                           env={**CLEAN_ENV, "LAUNCH": "echo", "SCALES": "16"}, capture_output=True, text=True,
                           timeout=60, cwd=SCRIPT.parent.parent).stdout.splitlines()[-1]
    assert plain.startswith("python scripts/plain_cnn.py --category towers --scale 16 --steps 9000 "), plain  # 3 runs


@pytest.mark.skipif(subprocess.run(["git", "cat-file", "-e", "e0c55cb"], cwd=SCRIPT.parent, capture_output=True).returncode != 0,
                    reason="a shallow clone: commit e0c55cb is not here")
def test_a_start_pinned_to_a_commit_is_extracted_from_git(tmp_path):
    runs = tmp_path / "runs"
    subprocess.run(["bash", str(SCRIPT), "cpu64-psnr", "towers", str(tmp_path / "data"), str(runs)],
                   env={**CLEAN_ENV, "LAUNCH": "true", "BASELINES": "0", "SCALES": "16", "SOUP": ""}, check=True,
                   timeout=60, cwd=SCRIPT.parent.parent, capture_output=True)  # LAUNCH=true: trains nothing
    start = runs / "init-e0c55cb" / "glean-cats-16x-64"
    for name in ("config.json", "model.safetensors"):
        old = subprocess.run(["git", "show", f"e0c55cb:glean_hub/weights/glean-cats-16x-64/{name}"], cwd=SCRIPT.parent,
                             capture_output=True, check=True).stdout
        assert (start / name).read_bytes() == old


def test_towers_models_are_soups_of_three_runs(tmp_path):
    lines = commands("towers", tmp_path, GLEAN_STEPS="1000", SCALES="16")
    runs, last = lines[:3], lines[3]
    assert all(line.startswith("glean_hub.cli train") for line in runs), lines
    # each run: the recipe, then its own flags (argparse: the last flag wins), in a folder of its own
    assert runs[1].split(" --out ")[0].endswith(f"--mse-from 700 --init-from {tmp_path}/runs/init-e0c55cb/glean-cats-16x-64 --mse-from 300")
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


CARDS = SCRIPT.parent.parent / "model_cards"


@pytest.mark.parametrize("card", sorted(p.name for p in CARDS.glob("glean-*-64.md")))
def test_the_defaults_repeat_the_command_each_card_prints(card, tmp_path):
    """The bundled models are what the script trains: its default command for each model is the card's (the run's)."""
    from glean_hub.cli import _to_dataclass, build_parser
    from glean_hub.train.common import args_dict
    from glean_hub.train.glean import GLEANTrainArgs

    printed = re.search(r"Exact command[^`]*`(glean-hub train [^`]*)`", (CARDS / card).read_text())
    if printed is None:  # faces 16x, bedrooms 16x: packaged before cards printed the command; towers 16x: a soup
        pytest.skip(f"{card} does not print its command")
    category, scale = re.fullmatch(r"glean-(\w+)-(\d+)x-64\.md", card).groups()
    line = commands(category, tmp_path, SCALES=scale)[0]  # a soup: its first run, the one the card prints
    args = args_dict(_to_dataclass(GLEANTrainArgs, build_parser().parse_args(line.split()[1:])))
    assert load_script("package_bundled").card_command(args, category) == printed[1]
