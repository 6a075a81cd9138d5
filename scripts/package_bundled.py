"""Package trained runs as the bundled models: fp16 safetensors in glean_hub/weights/, measured model cards.

    python scripts/package_bundled.py --runs runs --data ../shared/data [--categories faces cats ...]

For each category it expects the runs of scripts/train_bundled.sh: bank-<c>-<R>/, glean-<c>-<S>x-<R>/ and
baseline-<c>-<S>x-<R>/ (the bank-less baseline, optional), and plain-<c>-<S>x-<R>/ (scripts/plain_cnn.py, the
plain-CNN yardstick, optional; R without the tag's suffix). It
1. writes the bank once (fp16) as glean_hub/weights/bank-<c>-<R>/ and each GLEAN model (fp16, referencing the
   bank by its Hub repo id and the sha256 of the fp16 file) as glean_hub/weights/glean-<c>-<S>x-<R>/;
2. reloads every packaged model through GLEAN.from_pretrained (as users do) and measures it on the whole
   validation split: PSNR/SSIM of GLEAN, MATLAB bicubic and the bank-less baseline, and LR consistency;
3. writes the model card (README.md in the folder and a copy in model_cards/) with those numbers, the training
   facts from training.json, and the best and worst validation cases by PSNR (numbers and file names only: the
   validation images' licences do not allow copying them into the repo);
4. saves a grid of bank samples (generated images, no dataset pixels) next to the cards;
5. merges the numbers into glean_hub/weights/metrics.json (installed with the package: `glean-hub models`, the
   demo and the registry read their verdicts from it) and rewrites the README's models table from it.

New GLEAN models replace the bundled ones only where they beat them on the validation PSNR (weights grow the
repo's history); banks are packaged only with --banks.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glean_hub import GLEAN, StyleGAN2Generator  # noqa: E402
from glean_hub.cards import CardFacts, bank_card, glean_card  # noqa: E402
from glean_hub.eval import evaluate  # noqa: E402
from glean_hub.registry import BANKS, METRICS_FILE, MODELS, NO_BANK, PLAIN_CNN, WEIGHTS_DIR, measured  # noqa: E402
from glean_hub.train.common import save_grid  # noqa: E402
from glean_hub.train.data import CROP_POLICY, PackedImages, is_zoom_crop, split_files  # noqa: E402
from glean_hub.train.glean import train_command  # noqa: E402
from glean_hub.train.soup import differences  # noqa: E402

DATA_TERMS = {
    "faces": ("celeba", "CelebA (img_align_celeba subset, ~200 identities); CelebA terms: non-commercial research only"),
    "cats": ("asirra", "Kaggle Dogs vs. Cats (Asirra) cat photos; research use only"),
    "cars": ("stanford-cars", "Stanford Cars (cars_train 00001-04300); non-commercial research only"),
    "bedrooms": ("houses-dataset", "Houses Dataset bedroom photos (Ahmed & Moustafa 2016); no licence stated, cite the paper; research use"),
    "towers": ("arcdataset", "arcDataset church and cathedral facades (Xu et al. 2014, Wikimedia images), grayscale; research use"),
}
LIMITATIONS = {
    "faces": "Trained on about 200 identities (CelebA aligned crops): expect identity drift and a narrow range of faces. "
    "Works on aligned, frontal faces filling the frame; use `align_faces=True` for other photos.",
    "cats": "Whole-body cats in clutter with the aspect squashed by the source: the bank is weak, and cat faces are not aligned.",
    "cars": "Varied framing; training crops are centre squares, so car fronts and backs are often cut.",
    "bedrooms": "Only 400 training images: the bank barely models bedrooms; treat outputs as a sharpened bicubic.",
    "towers": "Trained on GRAYSCALE facades: the network super-resolves the luma (Y); a colour input keeps the colour "
              "(Cb, Cr) of its MATLAB-bicubic upscale, so colour detail is bicubic's and gray stays gray.",
}

# issue 13, item 6: why there is no 128 px faces set yet (BENCHMARKS.md, "128 px faces")
FACES_128 = ("The 128 px faces set (8x 16->128, 16x 8->128, 32x 4->128; `scripts/train_bundled.sh gpu128 faces`) needs a "
             "GPU: its 30,000 steps x 16 images (480,000 images) at about 1 image/s on 2 CPU cores would take about 130 hours. ")


def metrics_row(m: dict) -> dict:
    return {"PSNR": m["psnr"], "SSIM": m["ssim"], "LR-PSNR": m["lr_psnr"], "grid_dB": m["grid_db"]}


def budget_of(run: Path) -> tuple[int, str | None, int] | None:
    """(steps of each run, the model it started from or None, runs averaged: 1, or a soup's count) of a finished run
    (its training.json), None if there is no such run."""
    path = run / "training.json"
    if not path.is_file():
        return None
    training = json.loads(path.read_text())
    return training["step"], training.get("args", {}).get("init_from"), len(training.get("soup", [None]))


def same_budget(run: Path, steps: int, init_from: str | None = None, runs: int = 1) -> bool:
    """True if `run` exists and trained as many steps from the same start (`--init-from`), as one run or as a soup
    of as many runs (`glean-hub soup`), as the GLEAN model it is compared with (else said, and skipped)."""
    other = budget_of(run)
    if other is not None and other != (steps, init_from, runs):
        print(f"not compared: {run.name} trained {describe_budget(*other)}, the GLEAN model {describe_budget(steps, init_from, runs)}")
    return other == (steps, init_from, runs)


def describe_budget(steps: int, init_from: str | None, runs: int) -> str:
    return (f"{runs} runs of " if runs > 1 else "") + f"{steps} steps from {init_from or 'scratch'}"


def plain_metrics(runs: Path, category: str, scale: int, res: int, steps: int) -> dict | None:
    """The plain-CNN yardstick's validation numbers (scripts/plain_cnn.py wrote them on the same split), if it was
    run with the GLEAN model's steps (a soup's: all its runs' steps)."""
    run = runs / f"plain-{category}-{scale}x-{res}"
    return metrics_row(json.loads((run / "metrics.json").read_text())["plain"]) if same_budget(run, steps) else None


def as_repo_id(folder: str) -> str:
    """The Hub repo id of a bundled model or bank folder (by its name: glean_hub/weights/<name>, or a copy), else
    the folder."""
    return next((e.repo_id for e in (*MODELS, *BANKS) if e.bundled == Path(folder).name), folder)


def started_from(init_from: str) -> str:
    """The model a run was initialised from (`--init-from`), by repo id where it is a bundled one, with the commit
    where it is the one of an earlier commit (a folder init-<commit>/ of scripts/train_bundled.sh's INIT_FROM=REV:FOLDER)."""
    pinned = re.fullmatch(r"init-([0-9a-f]{7,40})", Path(init_from).parent.name)
    return f"`{as_repo_id(init_from)}`" + (f" as bundled at glean-hub commit {pinned[1]}" if pinned else "")


def card_command(a: dict, category: str) -> str:
    """The `glean-hub train` command of a run (its training.json args) as a card prints it: bundled banks and models
    by repo id, the data as DATA/<category>."""
    a = {**a, "bank": as_repo_id(a["bank"]), "data": f"DATA/{category}"}
    if a.get("init_from"):
        a["init_from"] = as_repo_id(a["init_from"])
    return "glean-hub train " + shlex.join(train_command(a))


def package_bank(category: str, runs: Path, data_root: Path, cards_dir: Path) -> None:
    """Step 1 and 4: the bank run as the bundled bank (fp16), its card and a grid of its samples."""
    bank_entry = next(b for b in BANKS if b.category == category)
    res = bank_entry.out_size
    bank_run = runs / f"bank-{category}-{res}"
    dataset, terms = DATA_TERMS[category]
    bank_training = json.loads((bank_run / "training.json").read_text())
    bank = StyleGAN2Generator.from_pretrained(str(bank_run / "bank"))
    bank_dir = WEIGHTS_DIR / bank_entry.bundled
    shutil.rmtree(bank_dir, ignore_errors=True)
    sha = bank.save_pretrained(bank_dir, dtype=torch.float16)
    facts = CardFacts(
        license="other", license_name="research-only-data", datasets=[dataset],
        data=f"{terms}. {len(split_files(data_root / category)[0])} training images, `{CROP_POLICY[category]}` square crops "
        f"resized to {res}x{res} (Lanczos), random left-right flips, DiffAugment (colour, translation, cutout).",
        training=f"{bank_training['step']} steps x {bank_training['args']['batch_size']} images, "
        f"{bank_training['minutes']} minutes of training time, seed {bank_training['args']['seed']}; "
        "see scripts/train_bundled.sh for the exact command.",
        limitations=LIMITATIONS[category],
    )
    grid = cards_dir / f"bank-{category}-{res}-samples.png"
    with torch.no_grad():
        torch.manual_seed(0)
        z = torch.randn(16, bank.config.style_channels)
        packed = StyleGAN2Generator.from_pretrained(str(bank_dir))  # the fp16 weights, computed in float32
        save_grid([packed(z[i::4], noise="stored") for i in range(4)], grid)
    facts.samples = [f"{grid.name}"]
    card = bank_card(bank.config, sha, facts)
    (bank_dir / "README.md").write_text(card.replace(f"![sample]({grid.name})", "(samples: model_cards/" + grid.name + ")"))
    (cards_dir / f"{bank_entry.bundled}.md").write_text(card)


EXAMPLES = ROOT / "glean_hub" / "demo_examples"  # public-domain / CC0 photos (see LICENSES.md there): no dataset pixels


def example_grid(models: list, size: int, path: Path) -> None:
    """Columns: LR (nearest) | bicubic | each model through GLEANPipeline | ground truth; one row per demo example
    (its centre square, MATLAB-bicubic to the model's output size, is the ground truth the pipeline downscales)."""
    import numpy as np
    from PIL import Image

    from glean_hub import GLEANPipeline
    from glean_hub.imresize import imresize_uint8
    from glean_hub.train.data import square_crop

    def as_tensor(a):  # uint8 [h, w, 3] -> [1, 3, h, w] in [-1, 1]
        return torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].float() / 127.5 - 1

    pipes = [GLEANPipeline(m, device="cpu", dtype=torch.float32) for m in models]
    rows = []
    for name in ("astronaut_face.png", "chelsea.png", "astronaut.png"):
        with Image.open(EXAMPLES / name) as img:
            hr = imresize_uint8(np.asarray(square_crop(img.convert("RGB"), "center")), size=(size, size))
        outs = [p(hr) for p in pipes]
        side = models[0].config.in_size  # the colour LR (a grayscale bank's network sees its luma only)
        lr = imresize_uint8(hr, size=(side, side))
        row = [lr, imresize_uint8(lr, size=(size, size))] + [np.asarray(o.images[0].convert("RGB")) for o in outs] + [hr]
        rows.append([as_tensor(a) for a in row])
    save_grid([torch.cat(col) for col in zip(*rows)], path)


def package_category(category: str, runs: Path, data_root: Path, cards_dir: Path, tag: str, hardware: str,
                     force: bool = False) -> list[dict]:
    """Steps 2, 3, 4 for the GLEAN models of `category` (runs glean-<c>-<S>x-<tag>): packaged only where the new
    model beats the bundled one on the validation PSNR (or with `force`)."""
    bank_entry = next(b for b in BANKS if b.category == category)
    res = bank_entry.out_size
    bank_dir = WEIGHTS_DIR / bank_entry.bundled
    sha = hashlib.sha256((bank_dir / "model.safetensors").read_bytes()).hexdigest()
    dataset, terms = DATA_TERMS[category]
    bank_json = runs / f"bank-{category}-{res}" / "training.json"
    bank_training = json.loads(bank_json.read_text()) if bank_json.is_file() else None
    train_files, val_files = split_files(data_root / category)
    old_metrics = measured()
    rows = []
    for entry in [m for m in MODELS if m.category == category]:
        run = runs / f"glean-{category}-{entry.scale}x-{tag}"
        if not (run / "model").is_dir():
            print(f"skip {entry.repo_id}: no run {run}")
            continue
        model = GLEAN.from_pretrained(str(run / "model"))
        model.config = model.config.replace(bank_id=bank_entry.repo_id, bank_revision=None, bank_sha256=sha)
        staged = runs / "packaged" / entry.bundled  # measured here first; copied over the bundled folder if better
        shutil.rmtree(staged, ignore_errors=True)
        model.save_pretrained(staged, dtype=torch.float16)
        packaged = GLEAN.from_pretrained(str(staged))  # the way users load it: bundled bank, sha checked
        val = PackedImages.from_files(val_files, res, packaged.config.crop_policy, cache_dir=runs / "cache", progress=False)
        lr = val.lr(entry.scale)
        m = evaluate(packaged, val.hr, lr)
        metrics = {"GLEAN": metrics_row(m["glean"]), "bicubic": metrics_row(m["bicubic"])}
        training = json.loads((run / "training.json").read_text())
        a, steps, soup = training["args"], training["step"], training.get("soup", [])
        baseline_run = runs / f"baseline-{category}-{entry.scale}x-{tag}"
        if same_budget(baseline_run, steps, a.get("init_from"), max(1, len(soup))):
            b = evaluate(GLEAN.from_pretrained(str(baseline_run / "model")), val.hr, lr)
            metrics[NO_BANK] = metrics_row(b["glean"])
        plain = plain_metrics(runs, category, entry.scale, res, steps * max(1, len(soup)))
        if plain:
            metrics[PLAIN_CNN] = plain
        framings = {}  # the validation images framed as in the extra training crops (faces: centre squares of the photos)
        for policy in filter(None, a.get("extra_crops", "").split(",")):
            if is_zoom_crop(policy):  # more training images, not a framing users send
                continue
            other = PackedImages.from_files(val_files, res, policy, cache_dir=runs / "cache", progress=False)
            f = evaluate(packaged, other.hr, other.lr(entry.scale))
            framings[policy] = {"GLEAN": f["glean"]["psnr"], "bicubic": f["bicubic"]["psnr"]}
        if framings:
            metrics["framings"] = framings
        old = old_metrics.get(entry.repo_id)
        if old and not force and metrics["GLEAN"]["PSNR"] <= old["GLEAN"]["PSNR"]:
            print(f"keep {entry.repo_id}: new {metrics['GLEAN']['PSNR']:.2f} dB <= bundled {old['GLEAN']['PSNR']:.2f} dB")
            kept = evaluate(GLEAN.from_pretrained(str(WEIGHTS_DIR / entry.bundled)), val.hr, lr)  # re-measured, same data
            # the kept model's own comparisons stay: they were measured at its budget, this run's may differ
            rows.append({**old, "GLEAN": metrics_row(kept["glean"]), "bicubic": metrics_row(kept["bicubic"])})
            continue
        out_dir = WEIGHTS_DIR / entry.bundled
        grid = cards_dir / f"{entry.bundled}-samples.png"
        same_weights = (out_dir / "model.safetensors").is_file() and filecmp.cmp(
            staged / "model.safetensors", out_dir / "model.safetensors", shallow=False)
        if same_weights and grid.is_file():  # --force on the bundled run itself: new card, same weights and grid
            replaces_a_model = True  # the grid still compares these weights with the model they replaced
        else:
            previous = [GLEAN.from_pretrained(str(out_dir))] if (out_dir / "config.json").is_file() else []
            replaces_a_model = bool(previous)
            example_grid(previous + [packaged], res, grid)
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.copytree(staged, out_dir)

        order = sorted(range(len(val)), key=lambda i: m["per_image_psnr"][i])
        cases = lambda idx: ", ".join(f"{val.names[i]} {m['per_image_psnr'][i]:.1f} dB" for i in idx)  # noqa: E731, B023
        worst, best = order[:3], order[-3:][::-1]
        gain = metrics["GLEAN"]["PSNR"] - metrics["bicubic"]["PSNR"]
        verdict = (f" GLEAN is {gain:.2f} dB above bicubic on PSNR" if gain > 0 else
                   f" GLEAN is {-gain:.2f} dB BELOW bicubic on PSNR: this model is undertrained, and bicubic is the better estimate")
        if NO_BANK in metrics:
            vs = metrics["GLEAN"]["PSNR"] - metrics[NO_BANK]["PSNR"]
            without = "trained without it" + (" (a soup of as many runs, same recipes)" if soup else "")
            verdict += (f"; the bank adds {vs:+.2f} dB over the same encoder-decoder {without}" if vs > 0 else
                        f"; the bank is NOT earning its place: the same encoder-decoder {without} is {-vs:.2f} dB better")
        else:
            verdict += "; no bank-less baseline was trained with this model's budget"
        if PLAIN_CNN in metrics:
            vs = metrics["GLEAN"]["PSNR"] - metrics[PLAIN_CNN]["PSNR"]
            plain_cnn = "a plain CNN without a bank (4 residual blocks and a dense layer, scripts/plain_cnn.py) trained on as many images" + (
                " (from scratch)" if a.get("init_from") else "")
            verdict += (f"; it is {vs:.2f} dB above {plain_cnn}" if vs > 0 else
                        f"; {plain_cnn} is {-vs:.2f} dB better: at this budget the bank is NOT earning its place")
        else:
            verdict += "; no plain CNN was trained with this model's budget"
        for policy, f in framings.items():
            verdict += (f"; on the validation images framed as `{policy}` crops: {f['GLEAN']:.2f} dB vs bicubic {f['bicubic']:.2f} dB "
                        f"({f['GLEAN'] - f['bicubic']:+.2f} dB)")
        verdict += (f". Periodic (pixel-shuffle grid) energy: {metrics['GLEAN']['grid_dB']:+.1f} dB over the ground truth's "
                    f"(bicubic {metrics['bicubic']['grid_dB']:+.1f} dB; a visible grid is several dB)")
        recipe = (f"losses: pixel {a.get('pixel_loss', 'mse').upper()} {a['pixel_weight']}"
                  + (f" (MSE from step {a['mse_from']})" if a.get("mse_from") is not None else "") + f", perceptual {a['perceptual_weight']}, "
                  f"GAN {a['gan_weight']}; batch {a['batch_size']}, Adam lr {a['lr']} with cosine decay, mixed precision "
                  f"{a['mixed_precision']}" + ("; the network learns the residual over the MATLAB-bicubic upscale" if a.get("bicubic_skip") else "")
                  + (f"; extra training crops (`--extra-crops`): {a['extra_crops']}" if a.get("extra_crops") else "")
                  + (f"; {a['bank_dropout']:.0%} of each batch trained with zeros for the bank features (`--bank-dropout`)"
                     if a.get("bank_dropout") else "")
                  + (f"; encoder, fusion convs and decoder started from {started_from(a['init_from'])} (`--init-from`)"
                     + (", as did the bank-less baseline's" if NO_BANK in metrics else "") if a.get("init_from") else "")
                  + (f"; a model soup (`glean-hub soup`): the mean of the weights of {len(soup)} runs from that start which differ in "
                     + "; ".join(f"`{k}`: " + " / ".join(map(str, v)) for k, v in differences([r["args"] for r in soup]).items())
                     + " (the flags above are the first run's)" if soup else ""))
        bank_text = f"bank: {bank_training['step']} steps, {bank_training['minutes']} minutes" if bank_training else "bank: the bundled one"
        glean_facts = CardFacts(
            license="other", license_name="research-only-data", datasets=[dataset],
            data=f"{terms}. {len(train_files)} training images, `{packaged.config.crop_policy}` square "
            f"crops resized to {res}x{res} (Lanczos); LR made from the uint8 HR with MATLAB-exact bicubic imresize.",
            training=(f"{len(soup)} runs x " if soup else "") + f"{training['step']} steps x {a['batch_size']} images, "
            f"{training['minutes']} minutes{' in all' if soup else ''} on {hardware}; "
            f"{bank_text}. {recipe}. Exact command" + (" of the first run" if soup else "") + f" (DATA: the folder of the "
            f"category folders): `{card_command(a, category)}`" + (f", then `glean-hub soup RUN1 ... RUN{len(soup)} --out OUT`"
            if soup else "") + "; every model of the category: scripts/train_bundled.sh.",
            metrics={k: v for k, v in metrics.items() if k != "framings"},
            samples=[grid.name],
            limitations=LIMITATIONS[category]
            + f"{verdict}. Validation ({len(val)} images): best PSNR {cases(best)}; worst {cases(worst)}. "
            "These are small models trained on a CPU as a stopgap (64x64 output): they prove the pipeline, not GLEAN's quality. "
            + (FACES_128 if category == "faces" else "")
            + f"The sample grid ({grid.name}: LR, bicubic, " + ("the previous bundled model, " if replaces_a_model else "")
            + "this model, ground truth) uses the demo's public-domain examples (any category), so no dataset pixels are in the repo.",
        )
        card = glean_card(packaged.config, glean_facts, repo_id=entry.repo_id)
        (out_dir / "README.md").write_text(card.replace(f"![sample]({grid.name})", "(samples: model_cards/" + grid.name + ")"))
        (cards_dir / f"{entry.bundled}.md").write_text(card)
        rows.append({"model": entry.repo_id, **{k: v for k, v in metrics.items()}})
        print(entry.repo_id, json.dumps(metrics))
    return rows


def models_table(rows: list[dict]) -> str:
    """Markdown table of the bundled models' validation numbers (rows of glean_hub/weights/metrics.json)."""
    lines = [
        "| model | in -> out | GLEAN PSNR / SSIM | bicubic PSNR / SSIM | GLEAN - bicubic | GLEAN - no bank | GLEAN - plain CNN | grid |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        entry = next(m for m in MODELS if m.repo_id == r["model"])
        g, b = r["GLEAN"], r["bicubic"]
        vs, vs_plain = (f"{g['PSNR'] - r[k]['PSNR']:+.2f} dB" if k in r else "-" for k in (NO_BANK, PLAIN_CNN))
        grid = f"{g['grid_dB']:+.1f} dB" if "grid_dB" in g else "-"
        lines.append(
            f"| [{entry.category} {entry.scale}x](model_cards/{entry.bundled}.md) | {entry.in_size} -> {entry.out_size} "
            f"| {g['PSNR']:.2f} / {g['SSIM']:.3f} | {b['PSNR']:.2f} / {b['SSIM']:.3f} "
            f"| {g['PSNR'] - b['PSNR']:+.2f} dB | {vs} | {vs_plain} | {grid} |"
        )
    return "\n".join(lines)


def write_readme_table(rows: list[dict], readme: Path = ROOT / "README.md") -> None:
    """Replace the text between the README's models-table markers."""
    start, end = "<!-- models-table:start -->", "<!-- models-table:end -->"
    text = readme.read_text()
    head, rest = text.split(start)
    _, tail = rest.split(end)
    readme.write_text(f"{head}{start}\n{models_table(rows)}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--categories", nargs="+", default=[b.category for b in BANKS])
    parser.add_argument("--tag", default="64", help="run folders glean-<c>-<S>x-<TAG> (cpu64-psnr runs: 64-psnr)")
    parser.add_argument("--banks", action="store_true", help="also package the bank runs bank-<c>-<R> (default: keep the bundled banks)")
    parser.add_argument("--hardware", default="a 2-core CPU", help="what the card says the models were trained on")
    parser.add_argument("--force", action="store_true", help="package models even where they do not beat the bundled ones "
                        "(on the bundled models' own runs: rewrites their cards and metrics, keeps weights and grids)")
    args = parser.parse_args()
    cards_dir = ROOT / "model_cards"
    cards_dir.mkdir(exist_ok=True)
    rows = []
    for category in args.categories:
        if args.banks:
            package_bank(category, args.runs, args.data, cards_dir)
        rows += package_category(category, args.runs, args.data, cards_dir, args.tag, args.hardware, args.force)
    merged = measured()  # numbers of every bundled model, merged across invocations, installed with the package
    merged.update({r["model"]: r for r in rows})
    order = {m.repo_id: i for i, m in enumerate(MODELS)}
    merged_rows = sorted(merged.values(), key=lambda r: order[r["model"]])
    METRICS_FILE.write_text(json.dumps(merged_rows, indent=2) + "\n")
    write_readme_table(merged_rows)


if __name__ == "__main__":
    main()
