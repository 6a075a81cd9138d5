"""Training throughput on this machine: images/s of a bank step and of a GLEAN step at the bundled (64 px) widths.

    python bench/train_throughput.py [--data ../shared/data/faces] [--steps 40] [--repeats 3] [--json out.json]

Runs the real training commands (`glean-hub train-bank`, `glean-hub train`) for a few steps in a temporary
folder and reads their logged images/s (the first logged interval, which includes warm-up, is dropped).
Rows: the recipes before and after issue 13 (the cpu64 and cpu64-psnr profiles of scripts/train_bundled.sh):

- bank step, fp32 vs bf16 autocast (batch 16);
- GLEAN step of the cpu64 profile: fp32, batch 8, pixel MSE + discriminator feature matching + GAN (a D step too);
- GLEAN step of the cpu64-psnr profile: bf16 autocast, batch 32, L1 only, 64-wide decoder, bicubic skip;
- GLEAN step at the widths of the 128 px target (gpu128 profile, random bank), to size CPU training at 128 px.

Each configuration is run `--repeats` times; min, median and max over the repeats are reported, and a
spread over 20 % of the median is flagged (the machine was busy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "glean_hub" / "weights" / "bank-faces-64"
BANK_WIDTHS = "--resolution 64 --channel-max 64 --channel-multiplier 0.0625 --style-channels 128 --num-mlps 4 --batch-size 16"
ENCODER = "--rrdb-channels 32 --num-rrdbs 3 --rrdb-growth 16 --decoder-channels 32 --scale 8"
CONFIGS = {
    "bank step fp32 (batch 16)": f"train-bank {BANK_WIDTHS} --mixed-precision no",
    "bank step bf16 (batch 16)": f"train-bank {BANK_WIDTHS} --mixed-precision bf16",
    "GLEAN step cpu64: fp32, batch 8, MSE + feature matching + GAN": f"train --bank {BANK} {ENCODER} --batch-size 8",
    "GLEAN step cpu64-psnr: bf16, batch 32, L1, decoder 64, bicubic skip": (
        f"train --bank {BANK} {ENCODER} --batch-size 32 --decoder-width 64 --bicubic-skip --pixel-loss l1 "
        "--perceptual-weight 0 --gan-weight 0 --mixed-precision bf16"
    ),
}


TARGET_128 = "GLEAN step at the 128 px target widths (gpu128 profile, 8x), bf16, batch 8"  # random 128 px bank


def target128_bank(folder: Path) -> Path:
    """A random-weight bank with the widths of the gpu128 profile (speed only: what it generates does not matter)."""
    from glean_hub import StyleGAN2Generator
    from glean_hub.config import BankConfig

    bank = StyleGAN2Generator(BankConfig(out_size=128, style_channels=256, num_mlps=8, channel_multiplier=0.5, channel_max=256))
    bank.save_pretrained(folder)
    return folder


def run_once(command: str, data: Path, steps: int, cache: Path, threads: int = 2) -> float:
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "glean_hub.cli", *command.split(), "--data", str(data), "--steps", str(steps),
                "--log-every", "10", "--out", out, "--no-progress"]
        if command.startswith("train "):
            args += ["--cache-dir", str(cache), "--val-images", "8", "--sample-every", "100000", "--checkpoint-every", "100000"]
        else:
            args += ["--category", "faces"]
        subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        rows = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines() if line]
        rates = [r["img_per_s"] for r in rows if r["step"] >= 20 and r.get("img_per_s")]
        return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "faces")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2, help="OMP threads per training process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT", help="run only the rows whose name contains TEXT")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        bank128 = target128_bank(Path(cache) / "bank128")
        configs = {**CONFIGS, TARGET_128: f"train --bank {bank128} --rrdb-channels 64 --num-rrdbs 8 --rrdb-growth 32 "
                   "--decoder-channels 64 --scale 8 --batch-size 8 --gan-weight 0 --perceptual-weight 0 --mixed-precision bf16"}
        for name, command in configs.items():
            if args.only and not any(t in name for t in args.only):
                continue
            rates = sorted(run_once(command, args.data, args.steps, Path(cache), args.threads) for _ in range(args.repeats))
            med = statistics.median(rates)
            results[name] = {"min": rates[0], "median": med, "max": rates[-1], "noisy": (rates[-1] - rates[0]) > 0.2 * med}
            print(f"| {name} | {rates[0]:.1f} | {med:.1f} | {rates[-1]:.1f} |{' noisy' if results[name]['noisy'] else ''}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
