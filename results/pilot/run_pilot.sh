#!/usr/bin/env bash
# The proxy pilot ("How long is long enough?"): the same 10 RegNetX and 10 AnyNetX_E models,
# each trained with 2 seeds (replicates 0 and 1) at budgets of 1k, 2k, 3k, 15k and 30k images
# (one epoch each: a 30x span; 60k runs last, where time allows), every run scored on all 10,000
# Fashion-MNIST test images. One process, one thread.
# It resumes: re-run it after an interruption and finished lines are kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
N=${PILOT_N:-10}
run() {  # run TRAIN_IMAGES EPOCHS REPLICATE
    "$PY" -m regnet_tutorial.sweep run --spaces regnetx,anynetx_e --n "$N" --seed 0 \
        --train-images "$1" --epochs "$2" --val-images 10000 --batch-size 128 --channels-last \
        --replicate "$3" --log-every 120 --out "results/pilot/pilot_${1}x${2}.jsonl"
}
for budget in "1000 1" "2000 1" "3000 1" "15000 1" "30000 1" "60000 1"; do
    for replicate in 0 1; do
        run $budget "$replicate"
    done
done
