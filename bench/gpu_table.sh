#!/usr/bin/env bash
# The GPU table of issue 18 in one command (about 9 minutes on an H100/H200; each step has its own timeout and
# writes its own JSON, so a step that fails or runs out of time leaves the others):
#   bash bench/gpu_table.sh [OUTDIR]        (default OUTDIR: $OUT if set, else bench/gpu)
# -> OUTDIR/gpu-*.json (glean-hub bench JSON) and OUTDIR/gpu-summary.json + gpu-summary.md (bench/gpu_summary.py:
#    best img/s per setting, speedup at batch 8, TFLOP/s and its share of the GPU's dense bf16 peak, PSNR).
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-bench/gpu}}
mkdir -p "$OUTDIR"
GH=${GH:-.venv/bin/glean-hub}; [ -x "$GH" ] || GH=glean-hub
PY=${PY:-.venv/bin/python}; [ -x "$PY" ] || PY=python
step() { local t=$1 name=$2; shift 2; echo "== $name (timeout ${t}s)" >&2
  timeout "$t" "$GH" bench --device cuda --json "$OUTDIR/gpu-$name.json" "$@" > "$OUTDIR/gpu-$name.txt" 2> "$OUTDIR/gpu-$name.log" \
    || echo "   $name: exit $?" >&2; tail -n 25 "$OUTDIR/gpu-$name.txt" >&2; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv > "$OUTDIR/nvidia-smi.csv" 2>&1 || true
# 1. the target: FFHQ 16x at batch 8, reference fp32 vs fast fp32/bf16/fp16, eager and torch.compile (reduce-overhead)
step 200 ffhq16x-compile-b8 --config ffhq_16x --dtype fp32,bf16,fp16 --compile --batch-size 8 --repeats 10
# 2. eager batch sweep of both models (saturation, peak memory)
step 150 eager-sweep --config ffhq_16x --config cat_8x --dtype fp32,bf16,fp16 --batch-size 1,4,8,16,32 --repeats 10
# 3. compiled bf16 at large batch (share of the bf16 roofline), with a profile of the top kernels
step 120 ffhq16x-compile-large --config ffhq_16x --dtype bf16 --compile --batch-size 32 --repeats 10 --profile
# 4. cat 8x compiled
step 90 cat8x-compile --config cat_8x --dtype bf16,fp16 --compile --batch-size 8,32 --repeats 10
"$PY" bench/gpu_summary.py "$OUTDIR" || echo "summary failed" >&2
