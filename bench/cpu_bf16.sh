#!/usr/bin/env bash
# CPU bf16 against float32 (issue 18): the official architectures (random weights) and the bundled models,
# settings interleaved per round (bench/cpu_bf16.py).
#   bash bench/cpu_bf16.sh [official|bundled|all]    -> bench/cpu-bf16-*.json (rerun after the bundled models change)
# Background training jobs (`glean_hub.cli train`, e.g. from scripts/train_bundled.sh) are paused with SIGSTOP for
# each command (at most PAUSE_S seconds, default 170) and always resumed (trap), so the timings see idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PAUSE_S=${PAUSE_S:-170}
WHAT=${1:-all}
paused=()
resume() { for p in "${paused[@]:-}"; do [ -n "$p" ] && kill -CONT "$p" 2>/dev/null || true; done; paused=(); }
trap resume EXIT
trap 'resume; exit 130' INT TERM
quiet() {  # run "$@" with the training jobs stopped, for at most PAUSE_S seconds (PAUSE_S=0: no pause, 600 s)
  if [ "$PAUSE_S" = 0 ]; then timeout 600 "$@" || echo "exit $?: $*" >&2; return 0; fi
  paused=($(pgrep -f "glean_hub.cli train" || true))
  for p in "${paused[@]:-}"; do [ -n "$p" ] && kill -STOP "$p" 2>/dev/null || true; done
  echo "paused: ${paused[*]:-none}" >&2
  local rc=0
  timeout "$PAUSE_S" "$@" || rc=$?
  resume
  [ "$rc" = 0 ] || echo "exit $rc: $*" >&2
  sleep 2
}
THREADS=${THREADS:-1}  # 1: no OpenMP oversubscription collapse when other jobs share the cores
run() { quiet "$PY" bench/cpu_bf16.py --threads "$THREADS" "$@"; }
if [ "$WHAT" = official ] || [ "$WHAT" = all ]; then
  run --config cat_8x --rounds 4 --autocast --json bench/cpu-bf16-cat8x.json
  run --config cat_16x --rounds 4 --json bench/cpu-bf16-cat16x.json
  PAUSE_S=0 run --config ffhq_16x --rounds 3 --json bench/cpu-bf16-ffhq16x.json
fi
if [ "$WHAT" = bundled ] || [ "$WHAT" = all ]; then
  run --config bundled --batch-size 1 --rounds 15 --json bench/cpu-bf16-bundled-b1.json
  run --config bundled --batch-size 8 --rounds 9 --json bench/cpu-bf16-bundled-b8.json
fi
