#!/usr/bin/env bash
# Reproduce the bundled models: one latent bank per category, then GLEAN models per scale on it.
#
#   bash scripts/train_bundled.sh PROFILE CATEGORY [DATA_ROOT] [RUNS]
#
# PROFILE  cpu64  : the stopgap models trained on 2 CPU cores (64x64 output, 8x and 16x)
#          cpu64-psnr : the bundled 64 px GLEAN models on the bundled banks (glean_hub/weights/bank-*-64): by
#                   default exactly the bundled models (each model card prints its run's command): bicubic skip,
#                   64-wide decoder, L1, batch 32, bf16 autocast, and per model the steps (GLEAN_STEPS), more
#                   training crops (EXTRA_CROPS), the faces options (a LeakyReLU after each pixel shuffle,
#                   DECODER_ACT=1; a rank-256 dense layer at the input size, DENSE_RANK=256; MSE for the last 30% of
#                   the steps, MSE_FROM=step, none: L1 only) and a start (INIT_FROM; {S}: the scale; REV:FOLDER: the
#                   folder as it was at git commit REV), and the share of each batch the GLEAN model (not its twin)
#                   trains bank-less (BANK_DROPOUT). Towers start from the bundled cats model of their scale;
#                   towers 16x is a soup of three runs (SOUP).
#          SOUP     : ';'-separated flag sets, one run each (appended to the recipe: the last flag wins); the GLEAN
#                   model and its bank-less twin are then `glean-hub soup`s of those runs (the mean of their
#                   weights), and the plain CNN trains as many steps as all runs together. Empty: one run.
#                   The env variables override the defaults for every scale (SCALES picks the scales).
#          gpu128 : the target models (128x128 output, 8x and 16x, 32x for faces), one or more GPUs
# DATA_ROOT defaults to ../shared/data (folders faces/ cats/ cars/ bedrooms/ towers/ with train/ and val/).
# RUNS defaults to runs/. Every run is resumable: rerun the same command to continue a run that stopped
# (--max-minutes or a crash); a finished run is skipped. Seeds are fixed (0), so reruns repeat exactly.
# Multi-GPU: set LAUNCH="accelerate launch --multi_gpu --num_processes 8".
set -euo pipefail
PROFILE=${1:?profile: cpu64 or gpu128}
CATEGORY=${2:?category: faces, cats, cars, bedrooms or towers}
DATA=${3:-../shared/data}/$CATEGORY
RUNS=${4:-runs}
LAUNCH=${LAUNCH:-python -m}
MINUTES=${MINUTES:-600}   # wall-clock cap per call; rerun to continue
BASELINES=${BASELINES:-1} # 0: skip the bank-less baselines (only needed for the model cards' comparison); only: just them
                          # (cpu64-psnr: the same network without the bank, and scripts/plain_cnn.py's plain CNN)

case $PROFILE in
  cpu64)
    RES=64; SCALES="8 16"
    BANK="--channel-max 64 --channel-multiplier 0.0625 --style-channels 128 --num-mlps 4 --batch-size 16 --steps ${BANK_STEPS:-6000}"
    GLEAN="--rrdb-channels 32 --num-rrdbs 3 --rrdb-growth 16 --decoder-channels 32 --batch-size 8  --lr 2e-4 --steps ${GLEAN_STEPS:-3000}"
    ;;
  cpu64-psnr)
    RES=64; SCALES=${SCALES:-"8 16"}; BANK_DIR=${BANK_DIR:-glean_hub/weights/bank-$CATEGORY-64}
    ;;
  gpu128)
    RES=128; SCALES="8 16"; [ "$CATEGORY" = faces ] && SCALES="8 16 32"
    BANK="--channel-max 256 --channel-multiplier 0.5 --style-channels 256 --num-mlps 8 --batch-size 32 --steps ${BANK_STEPS:-40000} --mixed-precision bf16"
    GLEAN="--rrdb-channels 64 --num-rrdbs 8 --rrdb-growth 32 --decoder-channels 64 --batch-size 16 --lr 1e-4 --steps ${GLEAN_STEPS:-30000} --mixed-precision bf16"
    ;;
  *) echo "unknown profile $PROFILE" >&2; exit 2 ;;
esac

run() {  # run OUT ARGS...: start, resume, or skip a finished run
  local out=$1; shift
  if [ -f "$out/training.json" ] && python - "$out" <<'PY'
import json, sys; t = json.load(open(sys.argv[1] + "/training.json")); sys.exit(0 if t["step"] >= t["args"]["steps"] else 1)
PY
  then echo "done: $out"; return; fi
  local resume=""; [ -f "$out/checkpoint.pt" ] && resume="--resume"
  $LAUNCH glean_hub.cli "$@" --out "$out" --seed 0 --max-minutes "$MINUTES" $resume
}

if [ -z "${BANK_DIR:-}" ]; then
  run "$RUNS/bank-$CATEGORY-$RES" train-bank --data "$DATA" --category "$CATEGORY" --resolution $RES $BANK
  BANK_DIR=$RUNS/bank-$CATEGORY-$RES/bank
fi
TAG=$RES; [ "$PROFILE" = cpu64-psnr ] && TAG=$RES-psnr
psnr_recipe() {  # psnr_recipe S: STEPS, CROPS, GLEAN (the flags), DROP, INIT_S and SOUP_S of the bundled S x model of CATEGORY
  local s=$1 steps=3000 crops="" on=0 rank="" mse=none init="" soup="" drop=""
  local zoom=zoom-c,zoom-tl,zoom-tr,zoom-bl,zoom-br zoom65=zoom65-c,zoom65-tl,zoom65-tr,zoom65-bl,zoom65-br
  case $CATEGORY-$s in
    # faces: their photos' centre squares too (a second framing), and the three options measured for them (8x +0.28
    # dB, 16x +0.12): the activation, the dense layer, the MSE tail; then steps (8x +2.09 dB at 1,500, +2.52 at 8,000)
    faces-8) steps=8000 crops=center on=1 rank=256 ;;
    faces-16) steps=2000 crops=center on=1 rank=256 ;;
    # bedrooms (400 photos): five 0.8x squares inside the centre square (8x: +0.35 -> +0.52 dB at 1,500 steps);
    # 8x: a start from the bundled cats 8x model, 1,000 steps (+0.52 -> +0.70 dB; it overfits the 400 photos
    # later: +0.55 at 2,400 of 3,000 steps); the bundled bedrooms 16x predates both and its 500 steps
    bedrooms-8) steps=1000 crops=$zoom init=glean_hub/weights/glean-cats-8x-64 ;;
    bedrooms-16) steps=500 ;;
    # towers (1,066 photos): zoom crops, the MSE tail (8x +0.04 dB), the activation (16x +0.276 -> +0.295 dB), not
    # the dense layer (the three together: 8x -0.2 dB); a start from the bundled cats model of the scale (8x +0.35 ->
    # +0.45 dB). 8x: 0.8x and 0.65x squares (+0.455 -> +0.468 dB, seeds 0 and 1 agree; from the 3,000-step cats 8x
    # +0.484, the bundled one; 0.5x squares too +0.486, the soup of the two +0.491). 16x: a soup of three runs
    # that differ in the MSE tail (last 30% or 70%) and the crops: they overfit a little and the soup regularises
    # (runs +0.295, +0.290, +0.292 dB over bicubic, soup +0.306; at 8x a soup does not pay: +0.465); they started
    # from the cats 16x model as bundled at commit e0c55cb (500 steps), which a later cats model replaced.
    # Towers 8x then overfits through the bank (trained on the same photos: 6,000 steps +0.469 dB, its bank-less
    # twin +0.491); with a quarter of each batch bank-less (--bank-dropout 0.25) 3,000 steps +0.494, 4,500 +0.500
    # (seed 1: +0.496).
    towers-8) steps=4500 crops=$zoom,$zoom65 on=1 init=glean_hub/weights/glean-cats-8x-64 drop=0.25 ;;
    towers-16) crops=$zoom on=1 init=e0c55cb:glean_hub/weights/glean-cats-16x-64 ;;
  esac
  STEPS=${GLEAN_STEPS:-$steps}
  case $CATEGORY in faces|towers) mse=$((STEPS * 7 / 10)) ;; esac
  crops=${EXTRA_CROPS-$crops}; rank=${DENSE_RANK-$rank}; mse=${MSE_FROM:-$mse}
  [ "$CATEGORY-$s" = towers-16 ] && soup=";--mse-from $((STEPS * 3 / 10));--extra-crops $crops,$zoom65"
  INIT_S=${INIT_FROM-$init}; SOUP_S=${SOUP-$soup}
  drop=${BANK_DROPOUT-$drop}; DROP=""; [ -n "$drop" ] && DROP="--bank-dropout $drop"  # GLEAN only, not the twin
  CROPS=""; [ -n "$crops" ] && CROPS="--extra-crops $crops"
  local extra=$CROPS
  [ -n "$rank" ] && extra="$extra --dense-rank $rank"  # a global, position-aware layer at the input size
  [ "${DECODER_ACT:-$on}" = 1 ] && extra="$extra --decoder-activation"  # a nonlinear decoder
  [ "$mse" != none ] && extra="$extra --mse-from $mse"  # L1 first, then MSE (the mean: what PSNR rewards)
  GLEAN="--rrdb-channels 32 --num-rrdbs 3 --rrdb-growth 16 --decoder-channels 32 --decoder-width 64 --bicubic-skip
         --pixel-loss l1 --perceptual-weight 0 --gan-weight 0 --batch-size 32 --lr 3e-4 --mixed-precision bf16
         --steps $STEPS --cache-dir $RUNS/cache $extra"
}
start_model() {  # start_model FOLDER or REV:FOLDER: the folder to --init-from (REV:FOLDER: extracted from git at REV)
  case $1 in
    *:*) local rev=${1%%:*} dir; dir=$RUNS/init-$rev/$(basename "${1#*:}")
      if [ ! -f "$dir/config.json" ] && [ "$LAUNCH" != echo ]; then
        git cat-file -e "$1" 2>/dev/null || { echo "the start $1 needs a git clone that has commit $rev (git fetch --unshallow)" >&2; exit 1; }
        mkdir -p "$dir" && git archive "$1" | tar -x -C "$dir"
      fi
      echo "$dir" ;;
    *) echo "$1" ;;
  esac
}
PLAIN=python; [ "$LAUNCH" = echo ] && PLAIN="echo python"  # LAUNCH=echo: print the commands, train nothing
soup() {  # soup OUT ARGS...: one run per SOUP entry (OUT-soup1, ...), then their soup in OUT; without SOUP one run
  local out=$1 parts=() i=0; shift
  [ ${#SOUP_RUNS[@]} -eq 0 ] && { run "$out" "$@"; return; }
  for flags in "${SOUP_RUNS[@]}"; do
    i=$((i + 1)); parts+=("$out-soup$i")
    run "$out-soup$i" "$@" $flags  # $flags unquoted: several flags
  done
  local py="python -m"; [ "$LAUNCH" = echo ] && py=echo  # a soup is one process (LAUNCH may be a multi-GPU launcher)
  if [ -f "$out/training.json" ]; then echo "done: $out"; else $py glean_hub.cli soup "${parts[@]}" --out "$out"; fi
}
for S in $SCALES; do
  if [ "$PROFILE" = cpu64-psnr ]; then psnr_recipe $S; else INIT_S=${INIT_FROM:-} SOUP_S=${SOUP:-}; fi
  IFS=';' read -ra SOUP_RUNS <<< "${SOUP_S:-}"
  INIT=""; [ -n "${INIT_S:-}" ] && INIT="--init-from $(start_model "${INIT_S//\{S\}/$S}")"  # {S}: this scale
  [ "$BASELINES" = only ] || soup "$RUNS/glean-$CATEGORY-${S}x-$TAG" train --bank "$BANK_DIR" --data "$DATA" --scale $S $GLEAN $INIT ${DROP:-}
  if [ "$BASELINES" != 0 ]; then  # the same start, losses and steps, zeros instead of bank features
    soup "$RUNS/baseline-$CATEGORY-${S}x-$TAG" train --bank "$BANK_DIR" --data "$DATA" --scale $S $GLEAN $INIT --no-bank
    if [ "$PROFILE" = cpu64-psnr ] && [ ! -f "$RUNS/plain-$CATEGORY-${S}x-$RES/metrics.json" ]; then  # as many images
      $PLAIN scripts/plain_cnn.py --category "$CATEGORY" --scale $S --steps $((STEPS * (${#SOUP_RUNS[@]} > 0 ? ${#SOUP_RUNS[@]} : 1))) \
        --data "$(dirname "$DATA")" ${CROPS:-} --cache-dir "$RUNS/cache" --out "$RUNS/plain-$CATEGORY-${S}x-$RES"
    fi
  fi
done
