"""CPU bf16 against float32 (issue 18), with the settings' calls interleaved.

    python bench/cpu_bf16.py --config cat_8x --rounds 5 --json bench/cpu-bf16-cat8x.json
    python bench/cpu_bf16.py --config bundled --batch-size 4 --rounds 9 --json bench/cpu-bf16-bundled.json

On a machine shared with other jobs, timing one setting after another lets a burst of load land
on one of them (issue 18: a "27x slower" fast path that was a noisy sample). Here every round
calls each setting once, in a rotating order, so load hits all settings alike; the speed ratio is
taken per round (reference time / setting time) and summarised by its median, next to the ratio
of the fastest calls. Settings: `reference fp32` (GLEAN.forward), `fast fp32` and `fast bf16`
(glean_hub.fast.optimize), and with --autocast `reference autocast-bf16` (GLEAN.forward under
torch.autocast("cpu", bfloat16)). PSNR and max |diff| against the reference fp32 output, peak-to-peak 2.
bench/cpu_bf16.sh runs the whole table with background training jobs paused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from glean_hub import bench
from glean_hub.fast import optimize
from glean_hub.glean import GLEAN
from glean_hub.pipeline import cpu_has_native_bf16


def settings(model: GLEAN, autocast: bool) -> dict:
    out = {"reference fp32": model, "fast fp32": optimize(model, dtype=torch.float32),
           "fast bf16": optimize(model, dtype=torch.bfloat16)}
    if autocast:
        def ref_autocast(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(x)
        out["reference autocast-bf16"] = ref_autocast
    return out


def measure(name: str, model: GLEAN, batch: int, rounds: int, autocast: bool, log) -> list[dict]:
    c = model.config
    x = torch.rand(batch, c.bank.img_channels, c.in_size, c.in_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fns = settings(model, autocast)
    outs, first = {}, {}
    with torch.no_grad():
        for s, fn in fns.items():  # first call: output for the accuracy, not timed
            t0 = time.perf_counter()
            outs[s] = fn(x).float()
            first[s] = time.perf_counter() - t0
        times = {s: [] for s in fns}
        order = list(fns)
        for r in range(rounds):
            log(f"{name}: round {r + 1}/{rounds}")
            for s in order[r % len(order):] + order[: r % len(order)]:
                t0 = time.perf_counter()
                fns[s](x)
                times[s].append(time.perf_counter() - t0)
    ref = outs["reference fp32"]
    rows = []
    for s in fns:
        st = bench.TimingStats.of(times[s])
        ratios = [a / b for a, b in zip(times["reference fp32"], times[s])]
        rows.append({
            "model": name, "setting": s, "batch_size": batch, "gflop_per_image": None,
            "ms_per_image_median": st.median / batch * 1e3, "ms_per_image_min": st.min / batch * 1e3,
            "ms_per_image_max": st.max / batch * 1e3, "spread_pct": st.spread_pct, "outliers": st.outliers,
            "note": st.flag(), "first_call_s": first[s],
            "speedup_median_of_rounds": statistics.median(ratios), "speedup_min": min(times["reference fp32"]) / st.min,
            "speedup_rounds": ratios, "times_s": times[s],
            "max_abs_diff": (outs[s] - ref).abs().max().item(), "psnr_db": bench.psnr(outs[s], ref),
        })
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", required=True, help="cat_8x, cat_16x, ffhq_16x, ffhq_8x_realworld, bundled, folder")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--autocast", action="store_true", help="also time the reference under torch.autocast bf16")
    ap.add_argument("--json", help="write the rows and the environment here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = lambda m: print(m, file=sys.stderr, flush=True)
    rows = []
    for spec in args.config:
        for name, source in bench.resolve_sources(spec):
            model = (bench.random_model(source, "cpu") if not isinstance(source, str)
                     else GLEAN.from_pretrained(source, torch_dtype=torch.float32)).eval()
            gflop = bench.count_flops(model.config) / 1e9
            for r in measure(name, model, args.batch_size, args.rounds, args.autocast, log):
                r["gflop_per_image"] = gflop
                rows.append(r)
    env = {**bench.environment("cpu"), "native_bf16": cpu_has_native_bf16(), "interleaved_rounds": args.rounds}
    print(f"{env['date']}  torch {env['torch']}  {env['cpu']}  threads {env['threads']}  native bf16: {env['native_bf16']}")
    print("| model | setting | batch | ms/img median | min | spread | speedup (median of rounds) | by fastest | max|diff| | PSNR dB | note |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['setting']} | {r['batch_size']} | {r['ms_per_image_median']:.4g} | {r['ms_per_image_min']:.4g} | "
              f"{r['spread_pct']:.0f}% | {r['speedup_median_of_rounds']:.2f}x | {r['speedup_min']:.2f}x | {r['max_abs_diff']:.2e} | "
              f"{r['psnr_db']:.1f} | {r['note']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "rows": [{k: (None if v == float("inf") else v) for k, v in r.items()} for r in rows]},
                      f, indent=1)
        print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
