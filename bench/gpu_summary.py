"""Summarise bench/gpu_table.sh's JSON files: python bench/gpu_summary.py OUTDIR -> OUTDIR/gpu-summary.{json,md}.

Per (model, setting): best img/s and its batch, speedup over the reference at batch 8, TFLOP/s at the best batch
and its share of the GPU's dense bf16 tensor-core peak (table below, by GPU name; `--peak-tflops` overrides),
peak memory, max |diff| and PSNR against the reference, and any note ("noisy", "compile failed", ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0,
                    "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.2}


def peak_for(gpu: str) -> float | None:
    for key, value in BF16_PEAK_TFLOPS.items():  # most specific names first
        if key in gpu:
            return value
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("outdir")
    ap.add_argument("--peak-tflops", type=float, help="dense bf16 peak of this GPU (default: from its name)")
    args = ap.parse_args(argv)
    out = Path(args.outdir)
    rows, env = [], {}
    for f in sorted(out.glob("gpu-*.json")):
        if f.name == "gpu-summary.json":
            continue
        data = json.loads(f.read_text())
        env = env or data.get("environment", {})
        rows += [{**r, "file": f.name} for r in data["rows"]]
    gpu = env.get("gpu", "unknown GPU")
    peak = args.peak_tflops or peak_for(gpu)
    summary = []
    for model, setting in dict.fromkeys((r["model"], r["setting"]) for r in rows):
        mine = [r for r in rows if (r["model"], r["setting"]) == (model, setting) and r["images_per_s"]]
        if not mine:
            continue
        best = max(mine, key=lambda r: r["images_per_s"])
        b8 = [r for r in mine if r["batch_size"] == 8 and r["speedup"]]
        summary.append({
            "model": model, "setting": setting, "best_images_per_s": best["images_per_s"], "best_batch_size": best["batch_size"],
            "speedup_at_batch_8": max((r["speedup"] for r in b8), default=None), "tflops_at_best": best["tflops"],
            "share_of_bf16_peak": best["tflops"] / peak if peak else None, "peak_mem_mib_at_best": best["peak_mem_mib"],
            "max_abs_diff": best["max_abs_diff"], "psnr_db": best["psnr_db"], "note": best["note"], "file": best["file"]})
    (out / "gpu-summary.json").write_text(json.dumps({"environment": env, "bf16_peak_tflops": peak, "rows": summary}, indent=1))
    lines = [f"{env.get('date', '?')}, {gpu}, torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}; "
             f"dense bf16 peak {peak or '?'} TFLOP/s", "",
             "| model | setting | best img/s (batch) | speedup at batch 8 | TFLOP/s | % of bf16 peak | peak MiB | max\\|diff\\| | PSNR dB | note |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in summary:
        def f(v, spec):
            return "-" if v is None else format(v, spec)
        lines.append(f"| {s['model']} | {s['setting']} | {s['best_images_per_s']:.3g} ({s['best_batch_size']}) | "
                     f"{f(s['speedup_at_batch_8'], '.2f')}x | {f(s['tflops_at_best'], '.3g')} | "
                     f"{f(s['share_of_bf16_peak'] and 100 * s['share_of_bf16_peak'], '.1f')} | {f(s['peak_mem_mib_at_best'], '.0f')} | "
                     f"{f(s['max_abs_diff'], '.1e')} | {f(s['psnr_db'], '.1f')} | {s['note']} |")
    (out / "gpu-summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
