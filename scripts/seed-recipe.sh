#!/usr/bin/env bash
# The seed study's full recipe for both models and two seeds, one after the other on a quiet machine.
# Writes runs/<model>-s<seed>.{log,json,fclf} and prints one summary line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product fclf-train
mkdir -p runs
threads=${THREADS:-2}
for model in ${MODELS:-cnn mlp}; do
  for seed in ${SEEDS:-1 2}; do
    name=$model-s$seed
    start=$(date +%s.%N)
    .build/release/fclf-train --model "$model" --seed "$seed" --threads "$threads" \
      --out "runs/$name.fclf" --metrics "runs/$name.json" > "runs/$name.log"
    end=$(date +%s.%N)
    acc=$(grep -m1 '^test accuracy' "runs/$name.log")
    train=$(grep -m1 '^training:' "runs/$name.log")
    printf '%s  %s  %s  wall %.1f s\n' "$name" "$acc" "$train" "$(echo "$end - $start" | bc)"
  done
done
